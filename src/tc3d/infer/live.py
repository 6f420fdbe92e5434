"""Online recognition of a source whose frames arrive one at a time from its caller: the web
page's camera, sent over a WebSocket as JPEG images (``tc3d serve``, ``WS /api/live``).

It is ``tc3d stream``'s path (:mod:`tc3d.infer.stream`): the same clip geometry
(``_stream_spec``), the same clip every ``stride`` frames from a ring of the newest frames,
built by the one clip builder (:func:`tc3d.video.clips.clips_from_frames`) from frames scaled
by the one frame converter (:func:`tc3d.video.decode.frame_rgb`), and the same decision
(``_decide``: each clip's scores computed once, the last S fused by the model's fusion) with
the same decision line. What differs is who reads the frames: here the caller pushes them, and
decides when to run the model, so that a slow model makes it skip clips instead of queueing.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from tc3d.infer.engine import Engine, EngineError
from tc3d.infer.stream import StreamConfig, _decide, _stream_spec
from tc3d.video.clips import ClipSpec, clips_from_frames
from tc3d.video.decode import frame_rgb


class ClipRing:
    """The last ``span`` frames of a source and, every ``stride`` frames (shifted by ``phase``),
    the clip of k frames ``offset`` apart that ends at the newest one: what ``tc3d stream``'s
    readers keep for each source."""

    def __init__(self, spec: ClipSpec, stride: int, phase: int = 0):
        self.spec, self.stride, self.phase = spec, stride, phase
        span = spec.sampling.span
        self.picks = np.arange(0, span, spec.sampling.offset)[None]  # (1, k): ring positions
        self.ring: deque = deque(maxlen=span)

    def add(self, rgb: np.ndarray, i: int) -> torch.Tensor | None:
        """Keep frame ``i`` (RGB at the short side); the clip due at it, ``(3, k, crop, crop)``."""
        self.ring.append(rgb)
        if (i + 1 + self.phase) % self.stride or len(self.ring) < self.ring.maxlen:
            return None
        return clips_from_frames(np.stack(self.ring), self.picks, self.spec)[0, 0]


@dataclass
class LiveJob:
    """A due clip: what ``_decide`` reads of a stream's job."""

    frame: int  # index of the clip's last frame
    t: float  # seconds from the first frame to that one
    available: float  # perf_counter when that frame arrived
    clip: torch.Tensor  # (3, k, crop, crop), normalised


@dataclass
class LiveState:
    """What ``_decide`` keeps of a source: the last S clip scores, the smoothed probabilities."""

    name: str
    frames: int = 0
    decisions: int = 0
    dropped: int = 0
    scores: deque = field(default_factory=deque)  # last S clip scores (K,)
    smoothed: torch.Tensor | None = None
    label: str = ""


class LiveStream:
    """One live source whose frames its caller pushes one at a time (the page's camera over a
    WebSocket): the ring and clip every ``stride`` frames of ``tc3d stream``'s readers, and its
    decision (:func:`_decide`: the last S clip scores fused), one clip through the model each.

    ``push`` is cheap (scale the frame, maybe build a clip) and never runs the model; ``decide``
    runs it on one clip. A caller that cannot keep up keeps only the newest due clip and counts
    the frames of the ones it skipped with :meth:`skipped`, as ``run_stream`` does for live
    sources. Nothing is kept beyond the ring of one clip's frames and the last S scores.
    """

    def __init__(self, engine: Engine, loaded, cfg: StreamConfig | None = None, name="live"):
        if len(engine.backbones) > 1:
            raise EngineError("stream needs a model with shared weights (one clip, one pass)")
        self.engine, self.classes = engine, loaded.classes
        self.cfg = cfg or StreamConfig()
        if self.cfg.stride < 1:
            raise ValueError("stride must be at least 1")
        self.spec = _stream_spec(loaded.clip, self.cfg)
        self.state = LiveState(name)
        self._ring = ClipRing(self.spec, self.cfg.stride)
        self._reformatter = VideoReformatter()
        self._start: float | None = None

    @property
    def short_side(self) -> int:
        return self.spec.short_side

    def push(self, frame: av.VideoFrame | np.ndarray) -> LiveJob | None:
        """Add the next frame (a video frame, or ``(H, W, 3)`` uint8 RGB); the clip due at it."""
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        if isinstance(frame, np.ndarray):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        i = self.state.frames
        self.state.frames += 1
        clip = self._ring.add(frame_rgb(frame, self.spec.short_side, self._reformatter), i)
        return None if clip is None else LiveJob(i, now - self._start, now, clip)

    def skipped(self, job: LiveJob) -> None:
        """``job`` will not be decided (a newer clip came first): count its frames as dropped."""
        self.state.dropped += self.cfg.stride

    def decide(self, job: LiveJob) -> dict:
        """The decision line of ``job``: ``t, frame, label, prob, latency_ms`` (and smoothed),
        ``latency_ms`` from the arrival of the clip's last frame."""
        score = self.engine.clip_scores(job.clip[None])[0]
        line, _ = _decide(self.engine, self.classes, self.state, job, score, self.cfg.smoothing)
        return line

"""Online recognition of a source whose frames arrive one at a time from its caller: the web
page's camera, sent over a WebSocket as JPEG images (``tc3d serve``, ``WS /api/live``).

It is ``tc3d stream``'s path (:mod:`tc3d.infer.stream`), not a copy: the same ring of frames and
clip every ``stride`` frames (``_ClipRing``, through the one clip builder), the same decision
(``_decide``: each clip's scores computed once, the last S fused by the model's fusion) and the
same decision line. What differs is who reads the frames: here the caller pushes them, and
decides when to run the model, so that a slow model makes it skip clips instead of queueing.
"""

from __future__ import annotations

import time

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from tc3d.infer.engine import Engine, EngineError
from tc3d.infer.stream import (
    StreamConfig,
    _ClipRing,
    _decide,
    _Job,
    _SourceState,
    _stream_spec,
)
from tc3d.video.decode import frame_rgb


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
        self.state = _SourceState(name)
        self._ring = _ClipRing(self.spec, self.cfg.stride)
        self._reformatter = VideoReformatter()
        self._start: float | None = None

    @property
    def short_side(self) -> int:
        return self.spec.short_side

    def push(self, frame: av.VideoFrame | np.ndarray) -> _Job | None:
        """Add the next frame (a video frame, or ``(H, W, 3)`` uint8 RGB); the clip due at it."""
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        if isinstance(frame, np.ndarray):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        i = self.state.frames
        self.state.frames += 1
        clip = self._ring.add(frame_rgb(frame, self.spec.short_side, self._reformatter), i)
        return None if clip is None else _Job(0, i, now - self._start, now, clip)

    def skipped(self, job: _Job) -> None:
        """``job`` will not be decided (a newer clip came first): count its frames as dropped."""
        self.state.dropped += self.cfg.stride

    def decide(self, job: _Job) -> dict:
        """The decision line of ``job``: ``t, frame, label, prob, latency_ms`` (and smoothed),
        ``latency_ms`` from the arrival of the clip's last frame."""
        score = self.engine.clip_scores(job.clip[None])[0]
        line, _ = _decide(self.engine, self.classes, self.state, job, score, self.cfg.smoothing)
        return line

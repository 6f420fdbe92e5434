"""``tc3d stream``: online action recognition on files, URLs and cameras (the paper's future work).

Each source has a reader thread that decodes frames as they come (a file paced at its frame
rate with ``realtime``, as fast as the model takes them otherwise; a URL or camera live), at
the model's short side, and keeps the most recent ones in a ring buffer. Every ``stride``
frames the newest clip (k frames, ``offset`` apart, ending at the current frame) is built from
the ring by the clip builder every other command uses (:mod:`tc3d.video.clips`: centre crop,
normalisation) and handed to the model.
T-C3D's temporal encoding then runs over a rolling window: each clip's class scores are
computed **once** and the last S of them are fused, exactly as the S segments of a video are
at test time, so a decision costs one clip, not S. One model serves all sources; clips due at
the same time go through it as one batch.

Paced and live sources are **staggered**: source i of n decides at frames whose number is
shifted by ``i * stride // n``, so the model meets one source's clip at a time instead of all n
at the same instant (measured on 2 cores, 4 paced sources, full-width int8: one clip takes
38 ms, four together 127 ms; p95 latency in phase was 215 ms). Each source still gets a
decision every ``stride`` frames. Files read as fast as possible stay in phase and are batched.

Live sources never wait for the model: when a source's next clip is due before its previous
one was taken, the previous decision is skipped and its ``stride`` frames are counted in
``dropped_frames``. A reader that falls behind a paced file skips frames and counts them too.
``latency_ms`` runs from the moment the clip's last frame was available (its presentation time
for a paced file, its decode time for a live source) to the decision.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from tc3d.infer.engine import Engine, EngineError
from tc3d.video.clips import ClipSpec, clips_from_frames
from tc3d.video.decode import VideoReadError, frame_rgb

log = logging.getLogger(__name__)


@dataclass
class StreamConfig:
    window: int | None = None  # frames per clip (default: the model's k)
    stride: int = 4  # frames between decisions
    realtime: bool = False  # pace files at their frame rate
    out: str | None = None  # write the first source with labels overlaid
    smoothing: float = 0.5  # EMA factor of the smoothed probabilities
    max_seconds: float | None = None


@dataclass
class _Job:
    source: int
    frame: int  # index of the clip's last frame
    t: float  # its time in the stream (seconds)
    available: float  # perf_counter when that frame was available
    clip: torch.Tensor  # (3, k, crop, crop), normalised


@dataclass
class _SourceState:
    name: str
    fps: float = 25.0
    frames: int = 0
    decisions: int = 0
    dropped: int = 0
    error: str | None = None
    done: bool = False
    scores: deque = field(default_factory=deque)  # last S clip scores (K,)
    smoothed: torch.Tensor | None = None
    label: str = ""


def open_source(uri: str) -> av.container.InputContainer:
    """A file, an http/rtsp URL or a camera device (``/dev/videoN``, v4l2)."""
    try:
        if uri.startswith("/dev/video"):
            return av.open(uri, format="v4l2")
        if uri.startswith("rtsp://"):
            return av.open(uri, options={"rtsp_transport": "tcp"}, timeout=10)
        if "://" in uri:
            return av.open(uri, timeout=10)
        if not Path(uri).exists():
            raise VideoReadError(uri, "file not found")
        return av.open(uri)
    except (av.error.FFmpegError, OSError) as e:
        raise VideoReadError(uri, f"cannot open: {getattr(e, 'strerror', None) or e}") from None


def _is_live(uri: str) -> bool:
    return "://" in uri or uri.startswith("/dev/")


class _Slots:
    """The newest due clip of each source, handed from readers to the model thread."""

    def __init__(self, n: int):
        self.jobs: list[_Job | None] = [None] * n
        self.cond = threading.Condition()


def _reader(
    index: int,
    uri: str,
    state: _SourceState,
    slots: _Slots,
    cfg: StreamConfig,
    spec: ClipSpec,
    stop: threading.Event,
    writer: _Overlay | None,
    phase: int = 0,
):
    """Decode one source, keep a ring buffer, hand a clip to the model every ``stride`` frames.

    ``phase`` shifts this source's decision frames (paced and live sources only, see above).
    """
    span = spec.sampling.span
    picks = np.arange(0, span, spec.sampling.offset)[None]  # (1, k): positions in the ring
    ring: deque = deque(maxlen=span)
    reformatter = VideoReformatter()
    live = _is_live(uri)
    paced = cfg.realtime and not live
    if not (paced or live):
        phase = 0
    try:
        container = open_source(uri)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 25
        state.fps = float(rate)
        start = time.perf_counter()
        i = -1
        for frame in container.decode(stream):
            if stop.is_set():
                break
            i += 1
            release = start + i / state.fps
            if paced:
                wait = release - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                elif -wait > cfg.stride / state.fps and i % cfg.stride:
                    # More than a decision period late: a camera would have lost this frame.
                    state.dropped += 1
                    state.frames += 1
                    continue
            available = release if paced else time.perf_counter()
            ring.append(frame_rgb(frame, spec.short_side, reformatter))
            state.frames += 1
            if writer is not None:
                writer.write(frame, state.label)
            if (i + 1 + phase) % cfg.stride or len(ring) < span:
                continue
            clip = clips_from_frames(np.stack(ring), picks, spec)[0, 0]  # (3, k, crop, crop)
            job = _Job(index, i, i / state.fps, available, clip)
            with slots.cond:
                if not (paced or live):
                    # A file read as fast as possible: wait for the model, never drop.
                    while slots.jobs[index] is not None and not stop.is_set():
                        slots.cond.wait(0.1)
                elif slots.jobs[index] is not None:
                    state.dropped += cfg.stride  # the model did not take the previous clip
                slots.jobs[index] = job
                slots.cond.notify_all()
        container.close()
    except VideoReadError as e:
        state.error = e.reason
    except (av.error.FFmpegError, OSError) as e:
        state.error = f"read error: {e}"
    finally:
        with slots.cond:
            state.done = True
            slots.cond.notify_all()


class _Overlay:
    """Writes a source's frames with the current label drawn on them (``--out``)."""

    def __init__(self, path: str, width: int, height: int, fps: float):
        from fractions import Fraction

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.part{self.path.suffix}")
        self.container = av.open(str(self.tmp), "w")
        self.stream = self.container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator())
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.bit_rate = 2_000_000

    def write(self, frame: av.VideoFrame, label: str) -> None:
        from PIL import ImageDraw

        img = frame.to_image()
        if label:
            draw = ImageDraw.Draw(img)
            draw.rectangle((0, 0, img.width, 16), fill=(0, 0, 0))
            draw.text((4, 2), label, fill=(255, 255, 0))
        out = av.VideoFrame.from_image(img)
        for packet in self.stream.encode(out):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.tmp.replace(self.path)


def _open_overlay(uri: str, path: str) -> _Overlay:
    c = open_source(uri)
    s = c.streams.video[0]
    w, h = s.codec_context.width, s.codec_context.height
    fps = float(s.average_rate or s.guessed_rate or 25)
    c.close()
    return _Overlay(path, w - w % 2, h - h % 2, fps)


def run_stream(
    engine: Engine,
    loaded,
    sources: Sequence[str],
    cfg: StreamConfig,
    emit: Callable[[dict], None] | None = None,
    console=None,
) -> dict:
    """Run until every source ends (or ``max_seconds``); returns ``{summary: {...}}``.

    ``emit`` receives one dict per decision (``t, frame, label, prob, latency_ms`` and the
    smoothed label; ``source`` when there are several).
    """
    if len(engine.backbones) > 1:
        raise EngineError("stream needs a model with shared weights (one clip, one pass)")
    if cfg.stride < 1:
        raise ValueError("--stride must be at least 1")
    k = cfg.window or loaded.clip.sampling.frames
    sampling = replace(loaded.clip.sampling, frames=k)
    spec = replace(loaded.clip, sampling=sampling, protocol="sclips", crops=1)
    states = [_SourceState(str(s)) for s in sources]
    slots = _Slots(len(sources))
    stop = threading.Event()
    writer = _open_overlay(sources[0], cfg.out) if cfg.out else None
    readers = [
        threading.Thread(
            target=_reader,
            args=(i, s, states[i], slots, cfg, spec, stop),
            kwargs={
                "writer": writer if i == 0 else None,
                "phase": i * cfg.stride // len(sources),
            },
            daemon=True,
            name=f"tc3d-stream-{i}",
        )
        for i, s in enumerate(sources)
    ]
    crop = spec.crop
    for n in sorted({1, len(sources)}):  # warm-up: the first pass of a batch size is slow
        engine.clip_scores(torch.zeros(n, 3, k, crop, crop))
    start = time.perf_counter()
    for t in readers:
        t.start()
    latencies: list[float] = []
    several = len(sources) > 1
    try:
        while True:
            with slots.cond:
                while not any(slots.jobs) and not all(s.done for s in states):
                    slots.cond.wait(0.05)
                    if cfg.max_seconds and time.perf_counter() - start > cfg.max_seconds:
                        stop.set()
                jobs = [j for j in slots.jobs if j is not None]
                slots.jobs = [None] * len(sources)
                slots.cond.notify_all()
            if not jobs:
                break  # every source has ended
            scores = engine.clip_scores(torch.stack([j.clip for j in jobs]))
            for job, score in zip(jobs, scores, strict=True):
                st = states[job.source]
                st.scores.append(score)
                while len(st.scores) > engine.cfg.segments:
                    st.scores.popleft()
                recent = torch.stack(list(st.scores))  # (≤S, K), oldest first
                probs = engine.fuse(recent[None])
                a = cfg.smoothing
                st.smoothed = probs if st.smoothed is None else a * st.smoothed + (1 - a) * probs
                best, smooth_best = int(probs.argmax()), int(st.smoothed.argmax())
                st.label = loaded.classes[smooth_best]
                st.decisions += 1
                latency = 1000 * (time.perf_counter() - job.available)
                latencies.append(latency)
                if emit:
                    line = {
                        "t": round(job.t, 3),
                        "frame": job.frame,
                        "label": loaded.classes[best],
                        "prob": float(probs[best]),
                        "latency_ms": round(latency, 2),
                        "smoothed_label": st.label,
                        "smoothed_prob": float(st.smoothed[smooth_best]),
                    }
                    if several:
                        line["source"] = st.name
                    emit(line)
    finally:
        stop.set()
        for t in readers:
            t.join()
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - start
    lat = np.array(latencies) if latencies else np.zeros(1)
    summary = {
        "decisions": len(latencies),
        "latency_ms_p50": float(np.percentile(lat, 50)),
        "latency_ms_p95": float(np.percentile(lat, 95)),
        "dropped_frames": sum(s.dropped for s in states),
        "frames": sum(s.frames for s in states),
        "seconds": seconds,
        "precision": engine.precision,
        "window": k,
        "stride": cfg.stride,
        "realtime": cfg.realtime,
        "sources": [
            {
                "source": s.name,
                "frames": s.frames,
                "decisions": s.decisions,
                "dropped_frames": s.dropped,
                "fps": s.fps,
                **({"error": s.error} if s.error else {}),
            }
            for s in states
        ],
    }
    if cfg.out:
        summary["out"] = cfg.out
    return {"summary": summary}

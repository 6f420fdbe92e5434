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
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from tc3d.infer.engine import Engine, EngineError
from tc3d.video.clips import ClipSpec, clips_from_frames
from tc3d.video.decode import OpenVideo, VideoReadError, frame_rgb, is_live, opened

log = logging.getLogger(__name__)

_is_live = is_live  # the name ``tc3d stream``'s command imports


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
    out: str | None = None  # the overlay file written (``--out``, first source)


class _Slots:
    """The newest due clip of each source, handed from readers to the model thread."""

    def __init__(self, n: int):
        self.jobs: list[_Job | None] = [None] * n
        self.cond = threading.Condition()


@dataclass
class _Reader:
    """One source's reader: what it decodes, how it is paced, where its clips go."""

    index: int
    source: str | OpenVideo
    state: _SourceState
    slots: _Slots
    cfg: StreamConfig
    spec: ClipSpec
    stop: threading.Event
    out: str | None = None  # --out, for the first source
    phase: int = 0  # shifts the decision frames (paced and live sources only, see above)

    @property
    def live(self) -> bool:
        return is_live(self.source)

    @property
    def paced(self) -> bool:
        return self.cfg.realtime and not self.live

    def run(self) -> None:
        """Open the source, decode it to the end (or ``stop``); errors end up in the state."""
        writer = None
        try:
            with opened(self.source, thread_type="AUTO") as video:
                self.state.fps = video.fps
                if self.out:
                    writer = _Overlay.of(video, self.out)
                    self.state.out = self.out
                self._decode(video, writer)
        except VideoReadError as e:
            self.state.error = e.reason
        except (av.error.FFmpegError, OSError) as e:
            self.state.error = f"read error: {e}"
        finally:
            if writer is not None:
                writer.close()
            with self.slots.cond:
                self.state.done = True
                self.slots.cond.notify_all()

    def _decode(self, video: OpenVideo, writer: _Overlay | None) -> None:
        """Keep a ring buffer of frames, hand a clip to the model every ``stride`` frames."""
        spec, state, stride = self.spec, self.state, self.cfg.stride
        span = spec.sampling.span
        picks = np.arange(0, span, spec.sampling.offset)[None]  # (1, k): positions in the ring
        ring: deque = deque(maxlen=span)
        reformatter = VideoReformatter()
        phase = self.phase if (self.paced or self.live) else 0
        start = time.perf_counter()
        for i, frame in enumerate(video.frames()):
            if self.stop.is_set():
                break
            release = start + i / state.fps
            if self.paced and self._late(release, i):
                continue
            available = release if self.paced else time.perf_counter()
            ring.append(frame_rgb(frame, spec.short_side, reformatter))
            state.frames += 1
            if writer is not None:
                writer.write(frame, state.label)
            if (i + 1 + phase) % stride or len(ring) < span:
                continue
            clip = clips_from_frames(np.stack(ring), picks, spec)[0, 0]  # (3, k, crop, crop)
            self._hand_over(_Job(self.index, i, i / state.fps, available, clip))

    def _late(self, release: float, i: int) -> bool:
        """Wait for frame ``i``'s time; True when it is dropped instead (more than a decision
        period late: a camera would have lost it)."""
        wait = release - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        elif -wait > self.cfg.stride / self.state.fps and i % self.cfg.stride:
            self.state.dropped += 1
            self.state.frames += 1
            return True
        return False

    def _hand_over(self, job: _Job) -> None:
        slots, index = self.slots, self.index
        with slots.cond:
            if not (self.paced or self.live):
                # A file read as fast as possible: wait for the model, never drop.
                while slots.jobs[index] is not None and not self.stop.is_set():
                    slots.cond.wait(0.1)
            elif slots.jobs[index] is not None:
                self.state.dropped += self.cfg.stride  # the model did not take the previous clip
            slots.jobs[index] = job
            slots.cond.notify_all()


class _Overlay:
    """Writes a source's frames with the current label drawn on them (``--out``)."""

    def __init__(self, path: str, width: int, height: int, fps: float):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.part{self.path.suffix}")
        self.container = av.open(str(self.tmp), "w")
        self.stream = self.container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator())
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.bit_rate = 2_000_000

    @classmethod
    def of(cls, video: OpenVideo, path: str) -> _Overlay:
        """An overlay the size (rounded down to even) and rate of ``video``."""
        w, h = video.size
        return cls(path, w - w % 2, h - h % 2, video.fps)

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


def _stream_spec(clip: ClipSpec, cfg: StreamConfig) -> ClipSpec:
    """The model's clip geometry with ``window`` frames, one centre crop per clip."""
    sampling = replace(clip.sampling, frames=cfg.window or clip.sampling.frames)
    return replace(clip, sampling=sampling, protocol="sclips", crops=1)


def _next_jobs(
    slots: _Slots, states: list[_SourceState], cfg: StreamConfig, start: float, stop
) -> list[_Job]:
    """The clips due now (waiting for one); empty once every source has ended."""
    with slots.cond:
        while not any(slots.jobs) and not all(s.done for s in states):
            slots.cond.wait(0.05)
            if cfg.max_seconds and time.perf_counter() - start > cfg.max_seconds:
                stop.set()
        jobs = [j for j in slots.jobs if j is not None]
        slots.jobs = [None] * len(states)
        slots.cond.notify_all()
    return jobs


def _decide(
    engine: Engine, classes: list[str], st: _SourceState, job: _Job, score, smoothing: float
) -> tuple[dict, float]:
    """Fuse the source's last S clip scores: the decision line, and its latency in ms."""
    st.scores.append(score)
    while len(st.scores) > engine.cfg.segments:
        st.scores.popleft()
    probs = engine.fuse(torch.stack(list(st.scores))[None])  # (≤S, K), oldest first
    a = smoothing
    st.smoothed = probs if st.smoothed is None else a * st.smoothed + (1 - a) * probs
    best, smooth_best = int(probs.argmax()), int(st.smoothed.argmax())
    st.label = classes[smooth_best]
    st.decisions += 1
    latency = 1000 * (time.perf_counter() - job.available)
    line = {
        "t": round(job.t, 3),
        "frame": job.frame,
        "label": classes[best],
        "prob": float(probs[best]),
        "latency_ms": round(latency, 2),
        "smoothed_label": st.label,
        "smoothed_prob": float(st.smoothed[smooth_best]),
    }
    return line, latency


def _summary(
    engine: Engine, cfg: StreamConfig, k: int, states, latencies: list[float], seconds: float
) -> dict:
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
    if states[0].out:
        summary["out"] = states[0].out
    return summary


def run_stream(
    engine: Engine,
    loaded,
    sources: Sequence[str | OpenVideo],
    cfg: StreamConfig,
    emit: Callable[[dict], None] | None = None,
    console=None,
) -> dict:
    """Run until every source ends (or ``max_seconds``); returns ``{summary: {...}}``.

    ``sources`` are paths, URLs, cameras or open videos (read from their start, left open).
    ``emit`` receives one dict per decision (``t, frame, label, prob, latency_ms`` and the
    smoothed label; ``source`` when there are several).
    """
    if len(engine.backbones) > 1:
        raise EngineError("stream needs a model with shared weights (one clip, one pass)")
    if cfg.stride < 1:
        raise ValueError("--stride must be at least 1")
    spec = _stream_spec(loaded.clip, cfg)
    n, k = len(sources), spec.sampling.frames
    states = [_SourceState(str(s)) for s in sources]
    slots, stop = _Slots(n), threading.Event()
    readers = [
        _Reader(
            i,
            s,
            states[i],
            slots,
            cfg,
            spec,
            stop,
            cfg.out if i == 0 else None,
            i * cfg.stride // n,
        )  # fmt: skip
        for i, s in enumerate(sources)
    ]
    threads = [threading.Thread(target=r.run, daemon=True, name=f"tc3d-stream-{r.index}")
               for r in readers]  # fmt: skip
    for size in sorted({1, n}):  # warm-up: the first pass of a batch size is slow
        engine.clip_scores(torch.zeros(size, 3, k, spec.crop, spec.crop))
    start = time.perf_counter()
    for t in threads:
        t.start()
    latencies: list[float] = []
    try:
        while jobs := _next_jobs(slots, states, cfg, start, stop):
            scores = engine.clip_scores(torch.stack([j.clip for j in jobs]))
            for job, score in zip(jobs, scores, strict=True):
                st = states[job.source]
                line, latency = _decide(engine, loaded.classes, st, job, score, cfg.smoothing)
                latencies.append(latency)
                if emit:
                    emit({**line, "source": st.name} if n > 1 else line)
    finally:
        stop.set()
        for t in threads:
            t.join()
    seconds = time.perf_counter() - start
    return {"summary": _summary(engine, cfg, k, states, latencies, seconds)}

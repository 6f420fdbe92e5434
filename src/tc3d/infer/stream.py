"""``tc3d stream``: online action recognition on files, URLs and cameras (the paper's future work).

Each source has a reader thread (:mod:`tc3d.infer.stream_reader`) that decodes frames as they
come (a file paced at its frame rate with ``realtime``, as fast as the model takes them
otherwise, again from the start with ``loop``; a URL or camera live, reopened when it goes
away), at the model's short side, and keeps the most recent ones in a ring buffer. Every ``stride``
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

A live source lost and back again is reported as ``{"reconnect": {source, frame, gap_s}}``
between the decisions and listed under the summary's ``reconnects``; one not back within
``reconnect`` seconds ends with an error (the line then carries it too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from tc3d.infer.engine import Engine, EngineError
from tc3d.infer.stream_reader import Gap, Job, Reader, ReaderConfig, Slots, SourceState
from tc3d.video.clips import ClipSpec
from tc3d.video.decode import OpenVideo, is_live

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
    loop: bool = False  # start a file again from its first frame when it ends
    reconnect: float = 30.0  # seconds a lost URL is retried before its source fails (0: never)


def _stream_spec(clip: ClipSpec, cfg: StreamConfig) -> ClipSpec:
    """The model's clip geometry with ``window`` frames, one centre crop per clip."""
    sampling = replace(clip.sampling, frames=cfg.window or clip.sampling.frames)
    return replace(clip, sampling=sampling, protocol="sclips", crops=1)


def _next_jobs(
    slots: Slots, states: list[SourceState], cfg: StreamConfig, start: float, stop
) -> tuple[list[Job], list[Gap]]:
    """The clips due now and the gaps to report (waiting for one); both empty once every
    source has ended."""

    def timed_out() -> bool:
        return bool(cfg.max_seconds) and time.perf_counter() - start > cfg.max_seconds

    with slots.cond:
        if timed_out():
            stop.set()  # the readers end; what is due still gets its decision
        while not (any(slots.jobs) or slots.gaps) and not all(s.done for s in states):
            slots.cond.wait(0.05)
            if timed_out():
                stop.set()
        jobs = [j for j in slots.jobs if j is not None]
        gaps, slots.gaps = slots.gaps, []
        slots.jobs = [None] * len(states)
        slots.cond.notify_all()
    return jobs, gaps


def _gap_line(gap: Gap, states: list[SourceState]) -> dict:
    """The ``{"reconnect": {...}}`` line of a gap (``error`` when the source was given up)."""
    line = {"source": states[gap.source].name, "frame": gap.frame, "gap_s": round(gap.seconds, 3)}
    return {"reconnect": {**line, **({"error": gap.error} if gap.error else {})}}


def _decide(
    engine: Engine, classes: list[str], st: SourceState, job: Job, score, smoothing: float
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
        "reconnects": [_gap_line(g, states)["reconnect"] for s in states for g in s.gaps],
        "sources": [
            {
                "source": s.name,
                "frames": s.frames,
                "decisions": s.decisions,
                "dropped_frames": s.dropped,
                "fps": s.fps,
                "loops": s.loops,
                "gap_s": round(sum(g.seconds for g in s.gaps), 3),
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
    smoothed label; ``source`` when there are several) and one ``{"reconnect": {...}}`` per
    gap of a live source.
    """
    if len(engine.backbones) > 1:
        raise EngineError("stream needs a model with shared weights (one clip, one pass)")
    if cfg.stride < 1:
        raise ValueError("--stride must be at least 1")
    spec = _stream_spec(loaded.clip, cfg)
    n, k = len(sources), spec.sampling.frames
    states = [SourceState(str(s)) for s in sources]
    slots, stop = Slots(n), threading.Event()
    rcfg = ReaderConfig(cfg.stride, cfg.realtime, cfg.loop, cfg.reconnect)
    out = [cfg.out] + [None] * (n - 1)
    readers = [
        Reader(i, s, states[i], slots, rcfg, spec, stop, out[i], phase=i * cfg.stride // n)
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
        while (due := _next_jobs(slots, states, cfg, start, stop)) != ([], []):
            jobs, gaps = due
            for gap in gaps:
                if emit:
                    emit(_gap_line(gap, states))
            if not jobs:
                continue
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

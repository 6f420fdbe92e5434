"""Which frames T-C3D reads: S segments × k frames, as indices (paper Section III-C, Eq. 4).

A video of N frames is cut into S equal segments of M = N/S frames, and one clip of k frames
is taken from each:

* strategy A, ``uniform``: frame i of the clip is ``rand(0, M/k) + i·M/k`` inside the segment,
  so one clip spans its whole segment with uneven gaps;
* strategy B, ``consecutive`` (the paper's better one): k frames ``o`` apart starting at
  ``rand(0, M - span)``, so one clip covers ``span = (k-1)·o + 1`` frames of continuous motion.

At test time the random offsets become the segment centres (``sclips``), or every
non-overlapping clip of the video is taken (``allclips``). Videos too short for a clip repeat
frames (a 1-frame video gives a clip of that frame k times). Functions return
``(clips, k)`` integer arrays so the reader decodes only those frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRATEGIES = ("consecutive", "uniform")
PROTOCOLS = ("sclips", "allclips")


@dataclass(frozen=True)
class SamplingConfig:
    segments: int = 3  # S
    frames: int = 8  # k
    strategy: str = "consecutive"
    offset: int = 2  # o: frame step inside a consecutive clip

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"sampling must be one of {STRATEGIES}, not {self.strategy!r}")
        if self.segments < 1 or self.frames < 1 or self.offset < 1:
            raise ValueError("segments, frames and offset must be at least 1")

    @property
    def span(self) -> int:
        """Frames a consecutive clip covers from its first to its last frame."""
        return (self.frames - 1) * self.offset + 1


def _segment_bounds(num_frames: int, segments: int) -> list[tuple[int, int]]:
    edges = np.floor(np.linspace(0, num_frames, segments + 1)).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _consecutive_clip(start: int, cfg: SamplingConfig, num_frames: int) -> np.ndarray:
    # Frames past the end wrap around: only videos shorter than one clip reach them.
    return (start + np.arange(cfg.frames) * cfg.offset) % num_frames


def _consecutive_start(a: int, b: int, cfg: SamplingConfig, num_frames: int, jitter: float | None):
    """First frame of a clip in segment [a, b): random (train) or centred (test)."""
    room = (b - a) - cfg.span
    if room >= 0:
        return a + (int(jitter * (room + 1)) if jitter is not None else room // 2)
    # The clip is longer than its segment: centre it there, keep it inside the video.
    return int(np.clip((a + b - cfg.span) // 2, 0, max(0, num_frames - cfg.span)))


def _uniform_clip(a: int, b: int, cfg: SamplingConfig, fractions: np.ndarray) -> np.ndarray:
    length = max(b - a, 1)
    step = length / cfg.frames
    idx = a + np.floor(np.arange(cfg.frames) * step + fractions * step).astype(int)
    return np.minimum(idx, a + length - 1)


def train_indices(num_frames: int, cfg: SamplingConfig, rng: np.random.Generator) -> np.ndarray:
    """One randomly placed clip per segment: ``(S, k)`` frame indices."""
    num_frames = max(1, num_frames)
    clips = []
    for a, b in _segment_bounds(num_frames, cfg.segments):
        if cfg.strategy == "uniform":
            clips.append(_uniform_clip(a, b, cfg, rng.random(cfg.frames)))
        else:
            start = _consecutive_start(a, b, cfg, num_frames, rng.random())
            clips.append(_consecutive_clip(start, cfg, num_frames))
    return np.stack(clips)


def eval_indices(num_frames: int, cfg: SamplingConfig, protocol: str = "sclips") -> np.ndarray:
    """Deterministic test clips ``(n, k)``, ordered in time.

    ``sclips``: the S segment-centre clips (n = S). ``allclips``: every non-overlapping clip
    (consecutive: back-to-back windows of ``span`` frames; uniform: every phase of the
    segment grid), or the S centre clips when fewer than S fit.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
    num_frames = max(1, num_frames)
    bounds = _segment_bounds(num_frames, cfg.segments)
    if protocol == "allclips":
        if cfg.strategy == "consecutive" and num_frames // cfg.span >= cfg.segments:
            starts = range(0, num_frames - cfg.span + 1, cfg.span)
            return np.stack([_consecutive_clip(s, cfg, num_frames) for s in starts])
        phases = min(b - a for a, b in bounds) // cfg.frames
        if cfg.strategy == "uniform" and phases > 1:
            # Phase r takes frame r of every sub-fragment: clips that share no frame.
            clips = []
            for a, b in bounds:
                step = (b - a) / cfg.frames
                base = a + np.floor(np.arange(cfg.frames) * step).astype(int)
                clips += [base + r for r in range(phases)]
            return np.stack(clips)
    if cfg.strategy == "uniform":
        return np.stack([_uniform_clip(a, b, cfg, np.full(cfg.frames, 0.5)) for a, b in bounds])
    return np.stack(
        [
            _consecutive_clip(_consecutive_start(a, b, cfg, num_frames, None), cfg, num_frames)
            for a, b in bounds
        ]
    )


def sliding_indices(starts: np.ndarray, cfg: SamplingConfig, num_frames: int) -> np.ndarray:
    """Consecutive clips ``(n, k)`` starting at ``starts`` (k frames ``offset`` apart), for
    scoring a video clip by clip; frames past the end repeat the last one."""
    starts = np.asarray(starts)
    return np.minimum(starts[:, None] + np.arange(cfg.frames) * cfg.offset, num_frames - 1)

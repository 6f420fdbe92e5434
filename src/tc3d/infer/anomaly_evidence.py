"""Anomaly scores that localise: persistent local change, judged against the video's own normal.

Surveillance video is full of motion that is normal: traffic and walkers cross the frame, trees
sway and lamps flicker all day, light drifts. What sets a fight, a fire, an abandoned bag or a
person on the ground apart is that something changes *in one place* and *stays* changed for
seconds, in a place where that is unusual *for this camera*. This module measures exactly that,
per cell of a 12 x 16 grid over the frame:

* ``motion``: the frame-to-frame difference, and ``change``: the difference to a slowly adapting
  background, both on gain-normalised grey frames (so exposure steps and drift cancel);
* persistence: the minimum over a window of 1, 2 and 3 seconds, so a car or a walker crossing a
  cell (a fraction of a second) leaves nothing while something that stays does;
* self-normalisation: each cell's persistent signal minus its median over the whole video, over
  its spread, so a tree that sways or a lamp that flickers all video long scores as normal.

A :class:`LocalScorer` weighs those cell features with weights learned from video-level labels
only (:mod:`tc3d.training.ranking`). A frame's score is its highest cell's, as a probability.

Measured on realistic nuisance video (docs/RESULTS.md): T-C3D's own clip features, frozen or
fine-tuned on 24 videos, rank normal videos as high as anomalous ones; this signal does not.
It needs no network: anomaly models trained with ``--objective ranking`` keep their T-C3D
weights (the ``--init`` model) beside the scorer, for the commands that classify.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tc3d.video.decode import OpenVideo, opened

GRID = (12, 16)  # cells (rows, columns) over the frame
WORK_SIZE = (60, 80)  # grey frames are pooled to this size first (acts as a blur)
WINDOWS = (1.0, 2.0, 3.0)  # persistence windows, seconds
BACKGROUNDS = (4.0, 20.0)  # how fast the two backgrounds adapt: time constants, seconds
BUSY_WEIGHT = 0.5  # how much a cell's raw busyness adds to its spread
FLOOR = 2.0  # added to a cell's spread: a cell that never moves is not made hypersensitive
SMOOTH = 0.6  # seconds: the frame score's moving average
CHUNK = 256  # frames decoded at once


@dataclass
class Evidence:
    """Per frame and cell ``(N, rows, cols)``, float32: ``motion`` (to the previous frame),
    ``change`` (to a background adapting in ~4 s) and ``still`` (to one adapting in ~20 s);
    ``fps`` turns the windows, given in seconds, into frames."""

    motion: np.ndarray
    change: np.ndarray
    still: np.ndarray
    fps: float = 25.0

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds * self.fps))

    def __len__(self) -> int:
        return len(self.motion)


def _grey(frames: np.ndarray) -> torch.Tensor:
    """uint8 RGB ``(n, H, W, 3)`` -> gain-normalised grey ``(n, 1, 60, 80)``."""
    x = torch.from_numpy(frames).float()
    g = (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114)[:, None]
    g = F.adaptive_avg_pool2d(g, WORK_SIZE)
    return g / g.mean((1, 2, 3), keepdim=True).clamp_min(1.0) * 128.0


def read_evidence(video: str | Path | OpenVideo) -> Evidence:
    """Decode every frame once (small) and measure motion and change per cell."""
    signals: tuple[list, list, list] = ([], [], [])
    prev = backgrounds = None
    with opened(video) as v:
        n, fps = v.info.num_frames, v.info.fps or 25.0
        rates = [1.0 / (seconds * fps) for seconds in BACKGROUNDS]
        for first in range(0, max(n, 1), CHUNK):
            grey = _grey(v.read(range(first, min(n, first + CHUNK)), short_side=120))
            if prev is None:  # the median of the first frames: no passer-by left as a ghost
                prev = grey[0]
                backgrounds = [grey.median(0).values for _ in BACKGROUNDS]
            for g in grey:
                signals[0].append((g - prev).abs())
                slow = zip(rates, backgrounds, signals[1:], strict=True)
                for rate, background, out in slow:
                    out.append((g - background).abs())
                    background += rate * (g - background)
                prev = g
    pool = lambda xs: F.adaptive_avg_pool2d(torch.stack(xs), GRID)[:, 0].numpy()  # noqa: E731
    return Evidence(*map(pool, signals), fps=fps)


def _smooth(x: np.ndarray) -> np.ndarray:
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(x, 3, axis=0)


def _persist(x: np.ndarray, window: int) -> np.ndarray:
    """What lasts ``window`` frames of a smoothed signal: a running minimum then maximum (an
    opening), so a brief blip vanishes and a lasting change keeps its full span."""
    from scipy.ndimage import grey_opening

    return grey_opening(x, size=(window, 1, 1), mode="nearest")


def _self_normalise(lasting: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """A cell's lasting signal against its own normal: minus its median over the video, over
    its spread. The spread adds how far the cell's busiest tenth lies above its median in the
    raw signal, so a cell that traffic crosses often (a road) needs more than a car lingering
    to stand out, while a quiet cell (a pavement corner) stays sensitive."""
    median = np.median(lasting, 0, keepdims=True)
    spread = np.median(np.abs(lasting - median), 0, keepdims=True)
    busy = np.quantile(raw, 0.9, axis=0, keepdims=True) - np.median(raw, 0, keepdims=True)
    return (lasting - median) / (spread + BUSY_WEIGHT * busy + FLOOR)


def cell_features(evidence: Evidence, windows: Sequence[float] = WINDOWS) -> np.ndarray:
    """``(N, cells, F)`` features: persistent motion and change per window, self-normalised."""
    smoothed = [_smooth(x) for x in (evidence.motion, evidence.change, evidence.still)]
    feats = [_self_normalise(_persist(x, evidence.frames(w)), x) for w in windows for x in smoothed]
    n = len(evidence)
    return np.stack(feats, -1).reshape(n, -1, len(feats)).astype(np.float32)


@dataclass
class LocalScorer:
    """Learned weights over :func:`cell_features`; stored in a model file as plain lists."""

    weights: list[float]
    bias: float
    mean: list[float]  # feature standardisation (of the training frames)
    std: list[float]
    windows: list[float] = field(default_factory=lambda: list(WINDOWS))  # seconds

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LocalScorer:
        return cls(**d)

    def logits(self, features: np.ndarray) -> torch.Tensor:
        """``(N, cells, F)`` -> ``(N,)`` frame logits: the highest cell's."""
        x = (torch.from_numpy(features) - torch.tensor(self.mean)) / torch.tensor(self.std)
        return (x @ torch.tensor(self.weights) + self.bias).amax(1)

    def frame_scores(self, evidence: Evidence) -> np.ndarray:
        """One score in [0, 1] per frame."""
        return self.scores(cell_features(evidence, self.windows), evidence.fps)

    def scores(self, features: np.ndarray, fps: float) -> np.ndarray:
        """One score in [0, 1] per frame, from :func:`cell_features` of a video at ``fps``."""
        from scipy.ndimage import uniform_filter1d

        logits = self.logits(features).numpy()
        smooth = max(1, round(SMOOTH * fps))
        return 1.0 / (1.0 + np.exp(-uniform_filter1d(logits, smooth, mode="nearest")))

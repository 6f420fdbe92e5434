"""Anomaly scores that localise: persistent local change, judged against the video's own normal.

Surveillance video is full of motion that is normal: traffic and walkers cross the frame, trees
sway and lamps flicker all day, light drifts. What sets a fight, a fire, an abandoned bag or a
person on the ground apart is that something changes *in one place* and *stays* changed for
seconds, in a place where that is unusual *for this camera*. This module measures exactly that,
per cell of a 24 x 32 grid over the frame:

* ``motion``: the frame-to-frame difference, and ``change``: the difference to a slowly adapting
  background, both on gain-normalised grey frames (so exposure steps and drift cancel);
* persistence: the minimum over a window of 1, 2 and 3 seconds, so a car or a walker crossing a
  cell (a fraction of a second) leaves nothing while something that stays does;
* self-normalisation: each cell's persistent signal minus its median over the whole video, over
  its spread, so a tree that sways or a lamp that flickers all video long scores as normal;
* contrast to the cells around it: what a cell shows beyond the typical cell a few cells to its
  left and right at the same moment, so a crowd that fills a stretch of pavement for seconds
  (lasting change along the path people walk) scores lower than something in one place.

A :class:`LocalScorer` weighs those cell features with weights learned from video-level labels
only (:mod:`tc3d.training.ranking`). A frame's score is its highest cell's, as a probability.

Measured on realistic nuisance video (docs/RESULTS.md): T-C3D's own clip features, frozen or
fine-tuned on 24 videos, rank normal videos as high as anomalous ones; this signal does not.
It needs no network: anomaly models trained with ``--objective ranking`` keep their T-C3D
weights (the ``--init`` model) beside the scorer, for the commands that classify.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tc3d.video.decode import OpenVideo, opened

GRID = (24, 32)  # cells (rows, columns) over the frame: a bag is a few cells, not a tenth of one
RING = 4  # contrast: a cell against the cells RING and RING + 1 columns away (1/8 of the width)
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


def read_evidence(video: str | Path | OpenVideo, grid: Sequence[int] = GRID) -> Evidence:
    """Decode every frame once (small) and measure motion and change per cell of ``grid``."""
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
    pool = lambda xs: F.adaptive_avg_pool2d(torch.stack(xs), tuple(grid))[:, 0].numpy()  # noqa: E731
    return Evidence(*map(pool, signals), fps=fps)


def _smooth(x: np.ndarray) -> np.ndarray:
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(x, 3, axis=0)


def _persist(x: np.ndarray, window: int) -> np.ndarray:
    """What lasts ``window`` frames of a smoothed signal: a running minimum then maximum (an
    opening), so a brief blip vanishes and a lasting change keeps its full span. Before the
    first frame and after the last the signal counts as absent: a passer-by cut by the start
    or end of the video must last the whole window too, not half of it."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    odd = window | 1  # centred windows, so the opening keeps a lasting change where it was
    eroded = minimum_filter1d(x, odd, axis=0, mode="constant", cval=0.0)
    return maximum_filter1d(eroded, odd, axis=0, mode="constant", cval=0.0)


def _self_normalise(lasting: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """A cell's lasting signal against its own normal: minus its median over the video, over
    its spread. The spread adds how far the cell's busiest tenth lies above its median in the
    raw signal, so a cell that traffic crosses often (a road) needs more than a car lingering
    to stand out, while a quiet cell (a pavement corner) stays sensitive."""
    median = np.median(lasting, 0, keepdims=True)
    spread = np.median(np.abs(lasting - median), 0, keepdims=True)
    busy = np.quantile(raw, 0.9, axis=0, keepdims=True) - np.median(raw, 0, keepdims=True)
    return (lasting - median) / (spread + BUSY_WEIGHT * busy + FLOOR)


def _contrast(x: np.ndarray, ring: int) -> np.ndarray:
    """``(N, rows, cols)``: each cell minus the median of the cells ``ring`` and ``ring + 1``
    columns to either side in its row (at the same frame; never less than zero). People and
    cars move along a street, so a crowd that lingers lights up a stretch of the row, while an
    incident is confined to one place."""
    cols = x.shape[2]
    padded = np.pad(x, ((0, 0), (0, 0), (ring + 1, ring + 1)), mode="edge")
    shifts = (-ring - 1, -ring, ring, ring + 1)
    around = np.stack([padded[:, :, ring + 1 + s : ring + 1 + s + cols] for s in shifts])
    return x - np.maximum(np.median(around, 0), 0.0)


def feature_maps(
    evidence: Evidence, windows: Sequence[float] = WINDOWS, ring: int = RING
) -> Iterator[np.ndarray]:
    """The features one at a time, ``(N, rows, cols)`` each: for each window, persistent motion,
    change and still change, self-normalised, each followed (``ring`` > 0) by its contrast to
    the cells around. One at a time, so scoring an hour of video holds one map, not all."""
    smoothed = [_smooth(x) for x in (evidence.motion, evidence.change, evidence.still)]
    for seconds in windows:
        for x in smoothed:
            lasting = _self_normalise(_persist(x, evidence.frames(seconds)), x)
            yield lasting
            if ring > 0:
                yield _contrast(lasting, ring)


def cell_features(
    evidence: Evidence, windows: Sequence[float] = WINDOWS, ring: int = RING
) -> np.ndarray:
    """``(N, cells, F)``: every map of :func:`feature_maps`, stacked (what training fits)."""
    maps = list(feature_maps(evidence, windows, ring))
    return np.stack(maps, -1).reshape(len(evidence), -1, len(maps)).astype(np.float32)


def _probabilities(logits: np.ndarray, fps: float) -> np.ndarray:
    """Frame logits, smoothed over SMOOTH seconds, as probabilities."""
    from scipy.ndimage import uniform_filter1d

    smooth = max(1, round(SMOOTH * fps))
    return 1.0 / (1.0 + np.exp(-uniform_filter1d(logits, smooth, mode="nearest")))


@dataclass
class LocalScorer:
    """Learned weights over :func:`cell_features`; stored in a model file as plain lists."""

    weights: list[float]
    bias: float
    mean: list[float]  # feature standardisation (of the training frames)
    std: list[float]
    windows: list[float] = field(default_factory=lambda: list(WINDOWS))  # seconds
    grid: list[int] = field(default_factory=lambda: list(GRID))
    ring: int = RING  # 0: no contrast features

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LocalScorer:
        """A scorer stored before ``grid`` and ``ring`` were kept was trained on 12 x 16 cells
        without contrast features: it is read so."""
        return cls(**({"grid": [12, 16], "ring": 0} | d))

    def read(self, video: str | Path | OpenVideo) -> Evidence:
        """The evidence this scorer weighs, from a video."""
        return read_evidence(video, self.grid)

    def cell_logits(self, evidence: Evidence) -> np.ndarray:
        """``(N, rows, cols)``: each cell's logit, summing the weighted maps one at a time."""
        total = np.full(evidence.motion.shape, self.bias, np.float32)
        maps = feature_maps(evidence, self.windows, self.ring)
        for x, w, m, s in zip(maps, self.weights, self.mean, self.std, strict=True):
            total += (w / s) * (x - m)
        return total

    def frame_scores(self, evidence: Evidence) -> np.ndarray:
        """One score in [0, 1] per frame: its highest cell's."""
        return self.frame_scores_of(self.cell_logits(evidence), evidence.fps)

    def frame_scores_of(self, cell_logits: np.ndarray, fps: float) -> np.ndarray:
        """:meth:`frame_scores` from :meth:`cell_logits` already computed."""
        return _probabilities(cell_logits.reshape(len(cell_logits), -1).max(1), fps)

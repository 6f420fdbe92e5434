"""The one clip builder: frame indices -> decoded, cropped, normalised clips for the model.

Everything that feeds the model builds its clips here: training and ``test`` (through
:class:`~tc3d.datasets.dataset.VideoDataset` and the inference engine), ``predict``, ``tag``,
``features``, int8 calibration, ``bench`` (its conventional baseline too), ``stream``, ``cam``
and ``anomaly``. So a clip means the same to all of them: frames scaled so their short side is
``short_side`` (C3D's "resize to 128"), one crop box for the whole video (a random one in
training, the centre or ten crops at test time, :mod:`tc3d.video.transforms`), resized to
``crop`` and normalised, laid out ``(n, 3, k, crop, crop)``.

:func:`clips_from_frames` is the transform itself, for frames already decoded (a stream's ring
buffer, the baseline's every-frame decode); :func:`read_clips` decodes only the frames asked
for and hands them to it; :func:`load_clips` also picks the indices (strategy A or B for
training, the test protocol otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tc3d.video.decode import OpenVideo, opened, read_frames, shrink_frames
from tc3d.video.sampling import SamplingConfig, eval_indices, train_indices
from tc3d.video.transforms import (
    CropBox,
    centre_crop_box,
    crop_and_normalise,
    random_crop_box,
    ten_crop_boxes,
)


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to turn a video into model input."""

    sampling: SamplingConfig
    crop: int = 112
    protocol: str = "sclips"  # test protocol
    crops: int = 1  # test crops: 1 (centre) or 10
    flip: bool = True  # random horizontal flips in training (and mirrored test crops)

    @property
    def short_side(self) -> int:
        """Frames are decoded at this short side: 128 for a 112 crop, as C3D and Res3D do."""
        return round(self.crop * 128 / 112)

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """One clip's tensor shape ``(3, k, crop, crop)``."""
        return (3, self.sampling.frames, self.crop, self.crop)

    def to_dict(self) -> dict:
        """What a model file stores (``clip``): the geometry the model was trained with. The
        test protocol and crop count are choices of each run, not of the model."""
        s = self.sampling
        return {
            "segments": s.segments,
            "frames": s.frames,
            "strategy": s.strategy,
            "offset": s.offset,
            "crop": self.crop,
            "flip": self.flip,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ClipSpec:
        sampling = SamplingConfig(d["segments"], d["frames"], d["strategy"], d["offset"])
        return cls(sampling=sampling, crop=d["crop"], flip=d.get("flip", True))


def crop_boxes(
    height: int, width: int, spec: ClipSpec, rng: np.random.Generator | None = None
) -> list[CropBox]:
    """One random box for a training sample (``rng`` given), else the test crops."""
    if rng is not None:
        return [random_crop_box(height, width, rng, flip=spec.flip)]
    if spec.crops == 10:
        return ten_crop_boxes(height, width, flip=spec.flip)
    return [centre_crop_box(height, width)]


def clips_from_frames(
    frames: np.ndarray,
    indices: np.ndarray,
    spec: ClipSpec,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """Decoded frames -> model input: the one transform path.

    ``frames`` ``(F, H, W, 3)`` uint8 RGB holds every frame ``indices`` ``(n, k)`` points
    into. Frames larger than ``spec.short_side`` are scaled down first (only the ones used).
    Returns ``(n, 3, k, crop, crop)`` for a training sample (``rng`` given: one random box,
    drawn after any draws the caller made) or ``(crops, n, 3, k, crop, crop)`` for test.
    """
    n, k = indices.shape
    flat = indices.reshape(-1)
    picked = frames if np.array_equal(flat, np.arange(len(frames))) else frames[flat]
    picked = shrink_frames(picked, spec.short_side)  # (n·k, H, W, 3)
    c = spec.crop
    # per box: (n·k, H, W, 3) -> (3, n·k, c, c) -> (n, 3, k, c, c)
    views = [
        crop_and_normalise(picked, box, c).view(3, n, k, c, c).transpose(0, 1)
        for box in crop_boxes(*picked.shape[1:3], spec, rng)
    ]
    return views[0] if rng is not None else torch.stack(views)


def read_clips(
    video: str | Path | OpenVideo,
    indices: np.ndarray,
    spec: ClipSpec,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """Decode only the frames at ``indices`` ``(n, k)`` and build their clips (shapes as
    :func:`clips_from_frames`). Raises :class:`~tc3d.video.decode.VideoReadError`."""
    n, k = indices.shape
    frames = read_frames(video, indices.reshape(-1), spec.short_side)  # (n·k, H, W, 3)
    return clips_from_frames(frames, np.arange(n * k).reshape(n, k), spec, rng)


def load_clips(
    video: str | Path | OpenVideo,
    num_frames: int | None,
    spec: ClipSpec,
    rng: np.random.Generator | None,
):
    """Decode and transform one video (a path, opened once here, or an open video).
    ``rng`` given: training sample; None: test sample.

    Returns ``(clips, frames)``: ``(S, 3, k, H, W)`` for training or ``(crops, n, 3, k, H, W)``
    for test, and the video's frame count.
    """
    with opened(video) as v:
        if num_frames is None:
            num_frames = v.info.num_frames
        if rng is not None:
            indices = train_indices(num_frames, spec.sampling, rng)
        else:
            indices = eval_indices(num_frames, spec.sampling, spec.protocol)
        return read_clips(v, indices, spec, rng), num_frames

"""Spatial transforms, applied identically to every frame of every clip of one video.

Training uses the paper's augmentation (Section V-B): a random crop whose width and height are
each picked from {1, 0.875, 0.75} × the short side (aspect jitter of at most one scale step),
at a random position, resized to ``crop`` (112), and a random horizontal flip. The same box and
flip serve all S clips: the segments of one video must stay comparable for fusion. Test time
takes the 0.875 box at the centre (the classic "resize to 128, crop 112"), or ten crops (four
corners and centre, each also mirrored). Normalisation uses the Kinetics statistics of
torchvision's video models, so published r3d_18 weights see the inputs they were trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.43216, 0.394666, 0.37645)
STD = (0.22803, 0.22145, 0.216989)
SCALES = (1.0, 0.875, 0.75)
TEST_SCALE = 0.875


@dataclass(frozen=True)
class CropBox:
    x: int
    y: int
    w: int
    h: int
    flip: bool = False


def random_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    scales=SCALES,
    max_distort: int = 1,
    flip: bool = True,
) -> CropBox:
    """Multi-scale crop with aspect jitter (TSN-style), random position, random flip.

    ``flip=False`` for data whose classes a mirror would swap (left vs right, clockwise vs
    counter-clockwise): flipping would turn one class into the other.
    """
    base = min(height, width)
    sizes = [max(1, int(base * s)) for s in scales]
    pairs = [
        (w, h)
        for i, w in enumerate(sizes)
        for j, h in enumerate(sizes)
        if abs(i - j) <= max_distort
    ]
    w, h = pairs[rng.integers(len(pairs))]
    x = int(rng.integers(0, width - w + 1))
    y = int(rng.integers(0, height - h + 1))
    return CropBox(x, y, w, h, flip=flip and bool(rng.random() < 0.5))


def centre_crop_box(height: int, width: int, scale: float = TEST_SCALE) -> CropBox:
    size = max(1, int(min(height, width) * scale))
    return CropBox((width - size) // 2, (height - size) // 2, size, size)


def ten_crop_boxes(height: int, width: int, scale: float = TEST_SCALE, flip: bool = True):
    """Four corners and the centre, each plain and mirrored (the paper's multi-crop test).

    Without mirroring (a model trained without flips), the five positions are taken at two
    scales instead, ``scale`` and the full short side.
    """
    boxes = []
    for variant in (False, True):
        size = max(1, int(min(height, width) * (scale if flip or not variant else 1.0)))
        corners = [
            (0, 0),
            (width - size, 0),
            (0, height - size),
            (width - size, height - size),
            ((width - size) // 2, (height - size) // 2),
        ]
        boxes += [CropBox(x, y, size, size, flip and variant) for x, y in corners]
    return boxes


def crop_and_normalise(frames: np.ndarray, box: CropBox, size: int) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 RGB frames -> ``(3, T, size, size)`` normalised float clip."""
    patch = torch.from_numpy(
        np.ascontiguousarray(frames[:, box.y : box.y + box.h, box.x : box.x + box.w])
    )
    x = patch.permute(0, 3, 1, 2)  # (T, 3, h, w), channels-last in memory: the fast uint8 path
    if (box.h, box.w) != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    x = x.float().div_(255.0)
    if box.flip:
        x = x.flip(-1)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.permute(1, 0, 2, 3).contiguous()  # (3, T, size, size)

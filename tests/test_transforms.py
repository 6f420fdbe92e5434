"""Clip-consistent multi-scale crops, flips, normalisation and the 10-crop test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tc3d.video.transforms import (
    MEAN,
    STD,
    centre_crop_box,
    crop_and_normalise,
    random_crop_box,
    ten_crop_boxes,
)


def test_random_boxes_use_the_paper_scales_with_bounded_aspect_jitter():
    rng = np.random.default_rng(0)
    sizes = {240, 210, 180}
    seen = set()
    for _ in range(500):
        box = random_crop_box(240, 320, rng)
        assert box.w in sizes and box.h in sizes
        assert abs(sorted(sizes).index(box.w) - sorted(sizes).index(box.h)) <= 1
        assert 0 <= box.x <= 320 - box.w and 0 <= box.y <= 240 - box.h
        seen.add((box.w, box.h, box.flip))
    assert len(seen) == 14  # 7 size pairs × flip


def test_one_box_crops_every_frame_alike():
    frames = np.zeros((16, 60, 80, 3), np.uint8)
    frames[:, 10:20, 30:40] = 255  # the same white square in every frame
    box = random_crop_box(60, 80, np.random.default_rng(3))
    clip = crop_and_normalise(frames, box, 32)
    assert clip.shape == (3, 16, 32, 32)
    assert torch.allclose(clip[:, :1].expand_as(clip), clip)


def test_flip_mirrors_horizontally():
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    frames[:, :, :8] = 255  # bright left edge
    plain = centre_crop_box(32, 32, scale=1.0)
    flipped = type(plain)(plain.x, plain.y, plain.w, plain.h, flip=True)
    a, b = crop_and_normalise(frames, plain, 32), crop_and_normalise(frames, flipped, 32)
    assert a[0, 0, 16, 0] > a[0, 0, 16, -1] and b[0, 0, 16, -1] > b[0, 0, 16, 0]
    assert torch.allclose(a.flip(-1), b)


def test_normalisation_uses_kinetics_statistics():
    frames = np.full((1, 20, 20, 3), 128, np.uint8)
    clip = crop_and_normalise(frames, centre_crop_box(20, 20, 1.0), 20)
    for c in range(3):
        assert clip[c].mean().item() == pytest.approx((128 / 255 - MEAN[c]) / STD[c], abs=1e-5)


def test_centre_and_ten_crops():
    box = centre_crop_box(240, 320)
    assert (box.w, box.h, box.x, box.y) == (210, 210, 55, 15)  # "resize to 128, crop 112"
    boxes = ten_crop_boxes(240, 320)
    assert len(boxes) == 10 and len(set(boxes)) == 10
    assert sum(b.flip for b in boxes) == 5
    assert all(0 <= b.x <= 320 - b.w and 0 <= b.y <= 240 - b.h for b in boxes)

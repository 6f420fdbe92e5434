"""The procedural pretraining stream: deterministic per seed, the shapes the model takes, each
motion family moving as its name says, and motion and look drawn independently."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tc3d.synthetic import procedural as P

CFG = P.ProceduralConfig(frames=8, size=64)


def test_same_seed_same_clip_other_seed_other_clip():
    a = P.render(P.recipe(3, 17, CFG), CFG)
    b = P.render(P.recipe(3, 17, CFG), CFG)
    c = P.render(P.recipe(4, 17, CFG), CFG)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_batches_have_the_model_layout_and_every_label():
    stream = P.ProceduralBatches(batch_size=6, seed=0, cfg=P.ProceduralConfig(frames=4, size=32))
    batch = stream[2]
    assert batch["video"].shape == (6, 1, 3, 4, 32, 32)  # (B, S=1, 3, T, H, W)
    assert torch.isfinite(batch["video"]).all()
    assert torch.equal(batch["video"], stream[2]["video"])  # batch i is always the same
    labels = [P.recipe(0, i).label for i in range(3000)]
    assert set(labels) == set(range(len(P.MOTIONS) * len(P.CHANGES)))
    assert len(P.class_names()) == 49 and P.class_names()[P.label_of("circular", "none")] == (
        "circular"
    )


def _displacement(motion: str, seed: int) -> np.ndarray:
    return P.trajectory(motion, 8, np.random.default_rng(seed))


@pytest.mark.parametrize("seed", range(5))
def test_motion_families_move_as_named(seed):
    still = _displacement("still", seed)
    assert np.abs(still).max() < 1.0
    linear = np.diff(_displacement("linear", seed), axis=0)
    assert np.allclose(linear, linear[0]) and np.linalg.norm(linear[0]) >= 0.8
    accel = np.linalg.norm(np.diff(_displacement("accelerating", seed), axis=0), axis=1)
    assert np.ptp(accel) > 1.0  # speed changes along the way
    ballistic = np.diff(_displacement("ballistic", seed), axis=0)
    assert np.allclose(np.diff(ballistic[:, 1]), np.diff(ballistic[:, 1])[0])  # constant g
    assert np.diff(ballistic[:, 1])[0] > 0 and np.allclose(ballistic[:, 0], ballistic[0, 0])
    circle = _displacement("circular", seed)
    # three points fix the circle; every other point lies on it
    (x1, y1), (x2, y2), (x3, y3) = circle[0], circle[1], circle[2]
    a = np.array([[x2 - x1, y2 - y1], [x3 - x1, y3 - y1]])
    b = 0.5 * np.array([x2**2 - x1**2 + y2**2 - y1**2, x3**2 - x1**2 + y3**2 - y1**2])
    centre = np.linalg.solve(a, b)
    radii = np.linalg.norm(circle - centre, axis=1)
    assert np.allclose(radii, radii[0], rtol=1e-6)
    osc = _displacement("oscillating", seed)
    direction = osc[np.argmax(np.linalg.norm(osc, axis=1))]
    cross = osc[:, 0] * direction[1] - osc[:, 1] * direction[0]
    assert np.allclose(cross, 0, atol=1e-6)  # back and forth on one line


def test_changes_act_on_their_own_track():
    for change in P.CHANGES:
        tracks = P.change_tracks(change, 8, np.random.default_rng(0))
        varies = {k for k, v in tracks.items() if np.ptp(v) > 1e-9}
        expected = {
            "none": set(),
            "scaling": {"scale"},
            "rotating": {"angle"},
            "deforming": {"stretch"},
            "appearing": {"alpha"},
            "splitting": {"split"},
            "recolouring": {"blend"},
        }[change]
        assert varies == expected, change


def test_motion_and_look_vary_independently():
    r = P.recipe(0, 5, CFG)
    other_look = replace(r, look_seed=r.look_seed + 1)
    a, b = P.render(r, CFG), P.render(other_look, CFG)
    assert not torch.equal(a, b)  # a new look ...
    assert r.label == other_look.label and np.array_equal(r.path, other_look.path)  # same motion
    # the look generator never sees the class: over many clips, shapes are spread evenly over
    # every motion family
    shapes = np.zeros((len(P.MOTIONS), len(P.SHAPES)))
    for i in range(1400):
        rec = P.recipe(1, i, CFG)
        shape = np.random.default_rng(rec.look_seed).integers(len(P.SHAPES))
        shapes[P.MOTIONS.index(rec.motion), shape] += 1
    expected = shapes.sum(1, keepdims=True) * shapes.sum(0, keepdims=True) / shapes.sum()
    chi2 = float(((shapes - expected) ** 2 / expected).sum())
    assert chi2 < 70  # 36 degrees of freedom: p > 0.001 for independent draws


def test_the_object_is_where_its_path_says():
    """Rendered on a flat background with no noise, the object's mass centre follows the path
    (a check that the affine warp puts sprites where the recipe asks)."""
    for i in range(40):
        r = P.recipe(9, i, CFG)
        if r.change != "none" or r.camera.any():
            continue
        look = P.make_look(r.look_seed, CFG)
        frames = P._warp(look.sprite, r.path, np.full((8, 2), r.size), r.angle, CFG.size)
        alpha = frames[:, 3]  # (T, H, W)
        ys, xs = torch.meshgrid(torch.arange(64.0) + 0.5, torch.arange(64.0) + 0.5, indexing="ij")
        mass = alpha.sum((1, 2))
        inside = mass > 0.5 * mass.max()
        cx = (alpha * xs).sum((1, 2)) / mass
        cy = (alpha * ys).sum((1, 2)) / mass
        fully = torch.tensor(
            [r.size < x < 64 - r.size and r.size < y < 64 - r.size for x, y in r.path]
        )
        keep = inside & fully
        if keep.any():
            assert torch.allclose(cx[keep], torch.tensor(r.path[:, 0]).float()[keep], atol=2.5)
            assert torch.allclose(cy[keep], torch.tensor(r.path[:, 1]).float()[keep], atol=2.5)

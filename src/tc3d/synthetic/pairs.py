"""Synthetic same/different action pairs of classes the benchmark never shows (ASLAN-style).

ASLAN (the paper's Table VII) asks whether two videos show the same action, for actions the
feature extractor was not trained on. This module renders eight new actions, none of them in
the 16-class benchmark of :mod:`tc3d.synthetic.synth`: new motions (orbiting, zig-zag bouncing,
falling, rocking, cartwheeling, shaking, pendulum swinging, diagonal drifting) on the same
kind of cluttered scenes. Every shape serves two actions, so a "different" pair may show the
same object doing two things: appearance alone cannot answer. Colour, size, speed, phase and
scene vary per video. It writes the videos in ``ROOT/<Action>/`` and ``pairs.txt`` in the
pairs format of ``tc3d similarity``: ``video_a video_b same fold`` with paths relative to ROOT,
folds 1-10, half of each fold "same".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tc3d.io import atomic_write_text
from tc3d.synthetic import sprites
from tc3d.synthetic.pool import render_all

if TYPE_CHECKING:
    from tc3d.progress import Progress

H, W, FPS, GOP = 240, 320, 25, 12
BIT_RATE = 400_000
ACTIONS = {  # name: (shape, what it does); none of these motions is in the benchmark
    "Orbit": ("ball", "circles round a fixed centre"),
    "ZigZag": ("ball", "bounces diagonally off the frame edges"),
    "Drop": ("triangle", "falls from the top under gravity, again and again"),
    "Shake": ("triangle", "shakes left-right fast in place"),
    "Rock": ("flag", "rocks back and forth about its pole"),
    "Pendulum": ("flag", "swings along an arc below a pivot"),
    "Cartwheel": ("athlete", "turns cartwheels across the frame"),
    "Drift": ("athlete", "drifts slowly along a diagonal"),
}


@dataclass(frozen=True)
class PairVideoSpec:
    action: str
    clip: int  # 1-based
    seed: int
    frames: int

    @property
    def rel(self) -> str:
        return f"{self.action}/{self.action}_{self.clip:03d}.avi"


def _motion(action: str, n: int, rng: np.random.Generator):
    """x, y, angle per frame."""
    t = np.arange(n, dtype=np.float64)
    s = rng.uniform(0.8, 1.25)
    cx, cy = W / 2 + rng.uniform(-30, 30), H / 2 + rng.uniform(-20, 20)
    zero = np.zeros(n)
    if action == "Orbit":
        r, w = rng.uniform(45, 70), rng.choice([-1, 1]) * 2 * np.pi / rng.uniform(40, 70) * s
        ph = rng.uniform(0, 2 * np.pi)
        return cx + r * np.cos(w * t + ph), cy + r * np.sin(w * t + ph), zero
    if action == "ZigZag":
        vx, vy = rng.uniform(4, 6) * s, rng.uniform(3, 5) * s
        x0, y0 = rng.uniform(0, 200), rng.uniform(0, 120)
        return 60 + np.abs((x0 + vx * t) % 400 - 200), 60 + np.abs((y0 + vy * t) % 240 - 120), zero
    if action == "Drop":
        period = rng.uniform(28, 40) / s
        f = (t + rng.uniform(0, period)) % period / period
        return cx + zero, 40 + 160 * f**2, zero
    if action == "Rock":
        amp, period = rng.uniform(30, 45), rng.uniform(24, 36) / s
        return cx + zero, cy + zero, amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 6))
    if action == "Cartwheel":
        d = rng.choice([-1, 1])
        loop = (rng.uniform(0, 360) + d * rng.uniform(2.5, 4) * s * t) % 360
        x = W / 2 - 90 + np.where(loop < 180, loop, 360 - loop)
        return x, cy + 10 + zero, rng.uniform(0, 360) + d * rng.uniform(9, 14) * s * t
    if action == "Shake":
        amp, period = rng.uniform(12, 20), rng.uniform(3, 5)
        return cx + amp * np.sin(2 * np.pi * t / period), cy + zero, zero
    if action == "Pendulum":
        length, amp = rng.uniform(70, 100), math.radians(rng.uniform(35, 55))
        th = amp * np.sin(2 * np.pi * t / (rng.uniform(40, 60) / s) + rng.uniform(0, 6))
        return cx + length * np.sin(th), cy - 60 + length * np.cos(th), np.degrees(-th)
    if action == "Drift":
        d = rng.choice([-1, 1])
        x = (rng.uniform(0, W) + d * 1.2 * s * t) % W
        return x, (rng.uniform(0, H) + 0.9 * s * t) % (H - 60) + 30, zero
    raise ValueError(f"unknown action {action!r}")


def render_pair_video(spec: PairVideoSpec) -> Iterator[np.ndarray]:
    """yuv420p frames ``(H * 3 // 2, W)`` uint8 of one video."""
    rng = sprites.keyed_rng(spec.seed, spec.action, spec.clip)
    bg_y, bg_c = sprites.background(
        sprites.keyed_rng(spec.seed, "pairs-scene", int(rng.integers(1 << 30))), H, W
    )
    shape = ACTIONS[spec.action][0]
    radius = rng.uniform(40, 48) if shape == "athlete" else rng.uniform(26, 38)
    sprite = sprites.Sprite(shape, radius, sprites.sprite_colour(rng))
    xs, ys, angles = _motion(spec.action, spec.frames, rng)
    noise, at = sprites.noise_bank(rng, (2, 5), H, W, spec.frames)
    for t in range(spec.frames):
        frame = np.empty((H * 3 // 2, W), np.uint8)
        y = frame[:H]
        np.add(bg_y, noise[at[t, 0] : at[t, 0] + H, at[t, 1] : at[t, 1] + W], out=y)
        c = bg_c.copy()
        sprites.blend(y, c, sprite.layer(angles[t]), xs[t], ys[t])
        sprites.put_chroma(frame, c)
        yield frame


def write_pair_video(spec: PairVideoSpec, path: str | Path) -> int:
    sprites.encode_yuv420(render_pair_video(spec), path, (W, H), FPS, GOP, BIT_RATE, "avi")
    return spec.frames


def make_pairs(
    specs: list[PairVideoSpec], seed: int, pairs_per_fold: int = 30, folds: int = 10
) -> list[tuple[str, str, int, int]]:
    """Balanced (a, b, same, fold) pairs; a pair never repeats."""
    rng = sprites.keyed_rng(seed, "pairs")
    by_action: dict[str, list[str]] = {}
    for s in specs:
        by_action.setdefault(s.action, []).append(s.rel)
    actions = sorted(by_action)
    same_possible = sum(len(v) * (len(v) - 1) // 2 for v in by_action.values())
    if same_possible < folds * ((pairs_per_fold + 1) // 2):
        raise ValueError(
            f"{same_possible} distinct 'same' pairs exist; {folds} folds of {pairs_per_fold} "
            "pairs need more videos per class"
        )
    seen: set[tuple[str, str]] = set()
    out = []
    for fold in range(1, folds + 1):
        for k in range(pairs_per_fold):
            same = int(k % 2 == 0)
            while True:
                if same:
                    act = actions[rng.integers(len(actions))]
                    a, b = rng.choice(by_action[act], 2, replace=False)
                else:
                    x, y = rng.choice(len(actions), 2, replace=False)
                    a = rng.choice(by_action[actions[x]])
                    b = rng.choice(by_action[actions[y]])
                key = tuple(sorted((str(a), str(b))))
                if key not in seen:
                    seen.add(key)
                    out.append((str(a), str(b), same, fold))
                    break
    return out


@dataclass
class PairsSummary:
    root: Path
    videos: int
    classes: list[str]
    pairs: int
    pairs_file: Path


def make_pairs_dataset(
    out: str | Path,
    per_class: int = 10,
    seed: int = 0,
    workers: int = 2,
    progress: Progress | None = None,
    pairs_per_fold: int = 30,
    frames: tuple[int, int] = (48, 121),
) -> PairsSummary:
    """Render ``per_class`` videos of each new action and write ``pairs.txt``; an interrupted
    run resumes, a run with other settings renders every video again
    (:mod:`tc3d.synthetic.pool`). ``pairs_per_fold`` shapes ``pairs.txt`` only."""
    if per_class < 2:
        raise ValueError(f"per_class must be at least 2 (a 'same' pair needs two), got {per_class}")
    root = Path(out).resolve()
    specs = [
        PairVideoSpec(a, c, seed, int(sprites.keyed_rng(seed, a, c, "len").integers(*frames)))
        for a in ACTIONS
        for c in range(1, per_class + 1)
    ]
    for a in ACTIONS:
        (root / a).mkdir(parents=True, exist_ok=True)
    settings = {"kind": "pairs", "seed": seed, "per_class": per_class, "frames": frames}
    jobs = [(s, root / s.rel) for s in specs]
    render_all(write_pair_video, jobs, root, settings, workers, progress)
    pairs = make_pairs(specs, seed, pairs_per_fold)
    lines = "".join(f"{a} {b} {same} {fold}\n" for a, b, same, fold in pairs)
    atomic_write_text(lines, root / "pairs.txt")
    return PairsSummary(root, len(specs), list(ACTIONS), len(pairs), root / "pairs.txt")

"""How the main object of a procedural clip moves and changes: the two factors of its class.

``MOTIONS`` are paths of its position, ``CHANGES`` what happens to the object itself; each is a
function of one random generator, so :func:`tc3d.synthetic.procedural.recipe` can draw them
independently of the clip's look (:mod:`tc3d.synthetic.procedural_looks`).
"""

from __future__ import annotations

import math

import numpy as np

MOTIONS = ("still", "linear", "accelerating", "ballistic", "circular", "oscillating", "wandering")
CHANGES = ("none", "scaling", "rotating", "deforming", "appearing", "splitting", "recolouring")


def trajectory(motion: str, frames: int, rng: np.random.Generator) -> np.ndarray:
    """``(T, 2)`` displacement from the start, in pixels of a 64-pixel canvas."""
    t = np.arange(frames, dtype=np.float64)[:, None]
    direction = _unit(rng.uniform(0, 2 * math.pi))
    if motion == "still":
        return rng.normal(0, 0.15, (frames, 2))
    if motion == "linear":
        return t * direction * rng.uniform(0.8, 4.0)
    if motion == "accelerating":  # speeding up or braking to a stop along a line
        accel = rng.uniform(0.35, 1.0)
        if rng.random() < 0.5:
            speed = rng.uniform(0.0, 0.5) + accel * t
        else:
            speed = np.maximum(accel * (frames - 1) - accel * t, 0.0)
        return np.cumsum(speed, axis=0) * direction - speed[:1] * direction
    if motion == "ballistic":  # thrown: constant horizontal speed, gravity pulls down
        v = np.array([rng.uniform(-3.0, 3.0), -rng.uniform(1.5, 4.0)])
        g = np.array([0.0, rng.uniform(0.5, 1.2)])
        return t * v + 0.5 * t**2 * g
    if motion == "circular":
        radius = rng.uniform(5.0, 16.0)
        omega = rng.uniform(0.3, 0.8) * rng.choice([-1, 1])
        phase = rng.uniform(0, 2 * math.pi)
        angles = phase + omega * t[:, 0]
        circle = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return circle - circle[:1]
    if motion == "oscillating":
        amplitude = rng.uniform(3.0, 10.0)
        omega = rng.uniform(0.7, 1.6)
        phase = rng.uniform(0, 2 * math.pi)
        return amplitude * (np.sin(omega * t + phase) - math.sin(phase)) * direction
    if motion == "wandering":  # a random walk, a little smoothed
        steps = rng.normal(0, rng.uniform(1.2, 2.5), (frames, 2))
        steps[0] = 0
        return np.cumsum(steps, axis=0)
    raise ValueError(f"unknown motion {motion!r}")


def _ramp(frames: int, rng: np.random.Generator, reverse: bool) -> np.ndarray:
    """0 -> 1 over a random window inside the clip (1 -> 0 when reversed)."""
    length = int(rng.integers(1, max(2, frames // 2) + 1))
    start = int(rng.integers(1, max(2, frames - length) + 1))
    r = np.clip((np.arange(frames) - start + 1) / length, 0.0, 1.0)
    return 1.0 - r if reverse else r


def change_tracks(change: str, frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-frame ``scale, angle, stretch, alpha, split, blend`` for one kind of change."""
    t = np.arange(frames, dtype=np.float64)
    ones, zeros = np.ones(frames), np.zeros(frames)
    tracks = {"scale": ones, "angle": zeros + rng.uniform(0, 2 * math.pi), "stretch": ones}
    tracks |= {"alpha": ones, "split": zeros, "blend": zeros}
    if change == "scaling":
        factor = rng.uniform(1.6, 2.6) ** rng.choice([-1, 1])
        tracks["scale"] = factor ** (t / (frames - 1))
    elif change == "rotating":
        tracks["angle"] = tracks["angle"] + t * rng.uniform(0.2, 0.6) * rng.choice([-1, 1])
    elif change == "deforming":
        amount = rng.uniform(0.3, 0.55)
        tracks["stretch"] = np.exp(amount * np.sin(rng.uniform(0.8, 1.6) * t + rng.uniform(0, 6)))
    elif change == "appearing":
        tracks["alpha"] = _ramp(frames, rng, reverse=rng.random() < 0.5)
    elif change == "splitting":
        gap = _ramp(frames, rng, reverse=rng.random() < 0.5)
        tracks["split"] = gap * rng.uniform(10.0, 20.0)
    elif change == "recolouring":
        tracks["blend"] = _ramp(frames, rng, reverse=False)
    elif change != "none":
        raise ValueError(f"unknown change {change!r}")
    return tracks


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])

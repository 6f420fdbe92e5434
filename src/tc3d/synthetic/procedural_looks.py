"""What a procedural clip looks like: shapes, textures, photographs, background, distractors.

Drawn from the clip's ``look_seed`` alone, so the look carries nothing about the class
(:mod:`tc3d.synthetic.procedural_tracks` draws that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from tc3d.synthetic.procedural_tracks import trajectory

if TYPE_CHECKING:
    from tc3d.synthetic.procedural import ProceduralConfig

SHAPES = ("ellipse", "rectangle", "polygon", "star", "blob", "ring", "cross")
TEXTURES = ("solid", "gradient", "stripes", "checker", "noise", "photo")

SPRITE = 48  # texture resolution of a sprite
BACKGROUND = 96  # texture resolution of the background (larger than the canvas: room to pan)


@lru_cache(maxsize=1)
def photographs() -> tuple[torch.Tensor, ...]:
    """Natural photographs that ship inside installed packages, ``(3, H, W)`` in [0, 1].

    scikit-learn's ``china.jpg`` and ``flower.jpg`` (CC BY 2.0, see its images/README.txt) and
    matplotlib's ``grace_hopper.jpg`` (public domain). Missing ones are left out.
    """
    from PIL import Image

    found = []
    for module, name in (
        ("sklearn.datasets", "images/china.jpg"),
        ("sklearn.datasets", "images/flower.jpg"),
        ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ):
        try:
            package = __import__(module, fromlist=["__file__"])
        except ImportError:
            continue
        path = Path(package.__file__).parent / name
        if path.is_file():
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.thumbnail((256, 256))
                array = np.asarray(im, dtype=np.float32) / 255.0
            found.append(torch.from_numpy(array).permute(2, 0, 1).contiguous())
    return tuple(found)


def _colour(rng: np.random.Generator) -> torch.Tensor:
    return torch.tensor(rng.uniform(0, 1, 3), dtype=torch.float32).view(3, 1, 1)


def texture(kind: str, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A ``(3, size, size)`` texture in [0, 1]."""
    a, b = _colour(rng), _colour(rng)
    if kind == "photo" and photographs():
        photo = photographs()[int(rng.integers(len(photographs())))]
        h, w = photo.shape[1:]
        side = int(rng.integers(min(h, w) // 6, min(h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        patch = photo[None, :, y : y + side, x : x + side]
        return F.interpolate(patch, size=(size, size), mode="bilinear", antialias=True)[0]
    if kind == "noise":
        coarse = torch.from_numpy(rng.uniform(0, 1, (1, 3, *(rng.integers(3, 12, 2))))).float()
        return F.interpolate(coarse, size=(size, size), mode="bicubic")[0].clamp(0, 1)
    if kind == "solid" or kind == "photo":
        return a.expand(3, size, size).clone()
    coords = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    theta = rng.uniform(0, math.pi)
    u = x * math.cos(theta) + y * math.sin(theta)
    if kind == "gradient":
        w = (u + 1) / 2
    elif kind == "stripes":
        w = (torch.sin(u * rng.uniform(4, 16)) > 0).float()
    elif kind == "checker":
        v = -x * math.sin(theta) + y * math.cos(theta)
        f = rng.uniform(3, 10)
        w = ((torch.floor(u * f) + torch.floor(v * f)) % 2).float()
    else:
        raise ValueError(f"unknown texture {kind!r}")
    return a * (1 - w) + b * w


def shape_mask(kind: str, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A soft-edged ``(1, size, size)`` alpha mask filling most of the square."""
    coords = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    r, phi = torch.hypot(x, y), torch.atan2(y, x)
    aspect = rng.uniform(0.45, 1.0)
    if kind == "ellipse":
        d = torch.hypot(x, y / aspect) - 0.9
    elif kind == "rectangle":
        d = torch.maximum(x.abs() - 0.9, y.abs() - 0.9 * aspect)
    elif kind == "polygon":
        n = int(rng.integers(3, 7))
        sector = 2 * math.pi / n
        d = r * torch.cos((phi % sector) - sector / 2) - 0.9 * math.cos(sector / 2)
    elif kind == "star":
        n = int(rng.integers(4, 8))
        d = r - 0.9 * (0.6 + 0.4 * torch.cos(n * phi))
    elif kind == "blob":
        radius = torch.full_like(phi, 0.7)
        for k in range(1, 4):
            radius = radius + rng.uniform(0, 0.12) * torch.cos(k * phi + rng.uniform(0, 6))
        d = r - radius
    elif kind == "ring":
        d = (r - 0.65).abs() - rng.uniform(0.12, 0.3)
    elif kind == "cross":
        arm = rng.uniform(0.2, 0.4)
        d = torch.minimum(
            torch.maximum(x.abs() - 0.9, y.abs() - arm), torch.maximum(x.abs() - arm, y.abs() - 0.9)
        )
    else:
        raise ValueError(f"unknown shape {kind!r}")
    return (0.5 - d * size / 4).clamp(0, 1)[None]


@dataclass
class Look:
    sprite: torch.Tensor  # (4, SPRITE, SPRITE): RGB + alpha
    recolour: torch.Tensor  # (3, SPRITE, SPRITE): the texture a colour change turns into
    background: torch.Tensor  # (3, BACKGROUND, BACKGROUND)
    distractors: list[tuple[torch.Tensor, np.ndarray, float]]  # (sprite, (T, 2) path, size)
    noise: float
    gain: float
    bias: float


def _grey(level: float, size: int) -> torch.Tensor:
    return torch.full((3, size, size), float(level))


def make_look(look_seed: int, cfg: ProceduralConfig) -> Look:
    """The look of one clip. With probability ``1 - cfg.clutter`` it is a plain one: a grey
    object on a grey background of clearly different level, nothing else. From scratch, a
    network learns to see motion on those within a few dozen steps, while on random colours
    and textures it stayed at chance for thousands of clips (measured); the curriculum then
    moves to the full variety."""
    rng = np.random.default_rng(look_seed)
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    mask = shape_mask(kind, SPRITE, rng)
    if rng.random() >= cfg.clutter:
        level = rng.uniform(0, 1)
        sprite = (level + rng.uniform(0.35, 0.65)) % 1.0
        recolour = (sprite + rng.uniform(0.3, 0.7)) % 1.0
        return Look(
            sprite=torch.cat([_grey(sprite, SPRITE), mask]),
            recolour=_grey(recolour, SPRITE),
            background=_grey(level, BACKGROUND),
            distractors=[],
            noise=0.0,
            gain=1.0,
            bias=0.0,
        )
    sprite_tex = texture(TEXTURES[int(rng.integers(len(TEXTURES)))], SPRITE, rng)
    recolour = texture(TEXTURES[int(rng.integers(len(TEXTURES)))], SPRITE, rng)
    if float((recolour - sprite_tex).abs().mean()) < 0.15:  # a colour change must show
        recolour = 1.0 - sprite_tex
    kind = TEXTURES[int(rng.integers(len(TEXTURES)))] if rng.random() < 0.6 else "photo"
    background = texture(kind, BACKGROUND, rng)
    distractors = []
    for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):
        tex = texture(TEXTURES[int(rng.integers(len(TEXTURES)))], SPRITE, rng)
        m = shape_mask(SHAPES[int(rng.integers(len(SHAPES)))], SPRITE, rng)
        drift = trajectory(("still", "linear", "wandering")[int(rng.integers(3))], cfg.frames, rng)
        start = rng.uniform(0, cfg.size, 2)
        size = rng.uniform(2.0, 4.0) * cfg.size / 64
        distractors.append((torch.cat([tex, m]), drift * 0.4 + start, float(size)))
    return Look(
        sprite=torch.cat([sprite_tex, mask]),
        recolour=recolour,
        background=background,
        distractors=distractors,
        noise=float(rng.uniform(0.0, 0.04)),
        gain=float(rng.uniform(0.75, 1.25)),
        bias=float(rng.uniform(-0.1, 0.1)),
    )

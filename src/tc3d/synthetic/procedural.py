"""Procedural clips for pretraining: an endless stream of moving, changing things.

A network trained from scratch on a few synthetic classes learns shortcuts for those classes,
not motion. Following Yu, Chen & Gandelsman (*Learning Video Representations without Natural
Videos*, 2024), the backbone is first trained on procedurally generated clips, rendered on the
fly as tensors (no files). Every clip is labelled by what its main object does, two factors
drawn independently of each other and of the clip's look:

* ``MOTIONS``: how its position moves (still, linear, accelerating, ballistic, circular,
  oscillating, wandering);
* ``CHANGES``: how the object itself changes (none, scale, rotation, deformation, appearing or
  vanishing, splitting or merging, colour change).

The class is the pair (7 × 7 = 49 classes), so the features must see motion *and* the changes
of look that some actions are defined by, but nothing about which look it was: shapes,
textures (solid, gradients, stripes, checkers, noise, crops of natural photographs shipped
with scikit-learn and matplotlib), backgrounds, sizes, speeds, camera pans, small distractor
objects and sensor noise are drawn from a separate generator. ``recipe(seed, index)`` returns
the drawn parameters; ``render(recipe)`` turns them into a normalised clip ``(3, T, H, W)``.

Rendering composites textured layers with ``grid_sample`` (one affine warp per layer and
frame), so a 64×64×8 clip costs a few milliseconds on one core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from tc3d.video.transforms import MEAN, STD

MOTIONS = ("still", "linear", "accelerating", "ballistic", "circular", "oscillating", "wandering")
CHANGES = ("none", "scaling", "rotating", "deforming", "appearing", "splitting", "recolouring")
SHAPES = ("ellipse", "rectangle", "polygon", "star", "blob", "ring", "cross")
TEXTURES = ("solid", "gradient", "stripes", "checker", "noise", "photo")

SPRITE = 48  # texture resolution of a sprite
BACKGROUND = 96  # texture resolution of the background (larger than the canvas: room to pan)


def class_names() -> list[str]:
    """``motion`` or ``motion + change`` for every (motion, change) pair, label order."""
    return [m if c == "none" else f"{m} + {c}" for m in MOTIONS for c in CHANGES]


def label_of(motion: str, change: str) -> int:
    return MOTIONS.index(motion) * len(CHANGES) + CHANGES.index(change)


@dataclass(frozen=True)
class ProceduralConfig:
    frames: int = 8  # T, the model's k
    size: int = 64  # rendered at the model's crop size: no resize, no decode
    max_distractors: int = 2
    camera_pan: float = 0.2  # share of clips whose camera pans
    # Share of clips with a full random look (textures, photos, distractors, noise, camera
    # pans); the others are plain grey (see make_look). Pretraining raises it from 0 to 1: from
    # scratch, on full clutter from the start, the network stayed at chance for 12,800 clips.
    clutter: float = 1.0


@dataclass
class Recipe:
    """Everything one clip is made of. ``motion`` fields come from one generator, ``look``
    fields from another, so either can be redrawn while the other stays fixed."""

    motion: str
    change: str
    path: np.ndarray  # (T, 2) object centre in canvas pixels (x, y), camera motion excluded
    scale: np.ndarray  # (T,) multiplier of the object's size
    angle: np.ndarray  # (T,) rotation in radians
    stretch: np.ndarray  # (T,) x/y aspect multiplier (deformation: squash and stretch)
    alpha: np.ndarray  # (T,) opacity (appear / vanish)
    split: np.ndarray  # (T,) distance between the two halves of a split/merge, pixels
    blend: np.ndarray  # (T,) 0 -> first texture, 1 -> second texture (colour change)
    camera: np.ndarray  # (T, 2) camera offset in pixels
    look_seed: int  # drives shapes, textures, sizes, background, distractors and noise
    size: float  # object half-size in pixels

    @property
    def label(self) -> int:
        return label_of(self.motion, self.change)


# ---------------------------------------------------------------- motion and change tracks


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


def recipe(seed: int, index: int, cfg: ProceduralConfig = ProceduralConfig()) -> Recipe:
    """The ``index``-th clip of stream ``seed``: class uniform, motion and look independent."""
    rng = np.random.default_rng([seed, index, 0])  # motion generator
    look_seed = int(np.random.default_rng([seed, index, 1]).integers(2**31 - 1))
    motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
    change = CHANGES[int(rng.integers(len(CHANGES)))]
    speed = rng.uniform(0.6, 1.4) * cfg.size / 64  # varying speed, in canvas units
    path = trajectory(motion, cfg.frames, rng) * speed
    tracks = change_tracks(change, cfg.frames, rng)
    size = rng.uniform(8.0, 16.0) * cfg.size / 64
    # place the whole path (and the object's extent) inside the canvas where possible
    lo, hi = path.min(0), path.max(0)
    margin = size * 1.2
    start = np.array(
        [
            rng.uniform(margin - lo[i], max(margin - lo[i], cfg.size - margin - hi[i]))
            for i in range(2)
        ]
    )
    camera = np.zeros((cfg.frames, 2))
    if rng.random() < cfg.camera_pan * cfg.clutter:
        camera = np.arange(cfg.frames)[:, None] * rng.uniform(-1.0, 1.0, 2) * cfg.size / 64
    return Recipe(
        motion=motion,
        change=change,
        path=path + start,
        camera=camera,
        look_seed=look_seed,
        size=float(size),
        **tracks,
    )


# ---------------------------------------------------------------- looks


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


# ---------------------------------------------------------------- rendering


def _warp(
    source: torch.Tensor,
    centre: np.ndarray,
    half: np.ndarray,
    angle: np.ndarray,
    canvas: int,
    padding: str = "zeros",
) -> torch.Tensor:
    """Place ``source`` ``(C, h, w)`` on a canvas once per frame: centre ``(T, 2)`` pixels,
    half-extent ``(T, 2)`` pixels, rotation ``(T,)``. Returns ``(T, C, canvas, canvas)``."""
    frames = len(centre)
    cx = torch.tensor(centre, dtype=torch.float32)
    hx = torch.tensor(half, dtype=torch.float32)
    cos, sin = torch.tensor(np.cos(angle)).float(), torch.tensor(np.sin(angle)).float()
    # output normalised coordinates p -> source normalised coordinates q = R^-1 (p - c) / h
    c = cx / (canvas / 2) - 1  # (T, 2)
    h = hx / (canvas / 2)
    theta = torch.zeros(frames, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos / h[:, 0], sin / h[:, 0]
    theta[:, 1, 0], theta[:, 1, 1] = -sin / h[:, 1], cos / h[:, 1]
    theta[:, :, 2] = -(theta[:, :, :2] @ c[:, :, None])[:, :, 0]
    grid = F.affine_grid(theta, [frames, source.shape[0], canvas, canvas], align_corners=False)
    return F.grid_sample(
        source.expand(frames, *source.shape), grid, padding_mode=padding, align_corners=False
    )


def _over(canvas: torch.Tensor, layer: torch.Tensor, alpha: torch.Tensor | None = None):
    """Alpha-composite ``(T, 4, H, W)`` layer onto ``(T, 3, H, W)`` canvas."""
    a = layer[:, 3:4] if alpha is None else layer[:, 3:4] * alpha.view(-1, 1, 1, 1)
    return canvas * (1 - a) + layer[:, :3] * a


def render(r: Recipe, cfg: ProceduralConfig = ProceduralConfig()) -> torch.Tensor:
    """The clip ``(3, T, size, size)``, normalised like decoded video (``transforms.MEAN/STD``)."""
    look = make_look(r.look_seed, cfg)
    n, size = cfg.frames, cfg.size
    ones = np.ones(n)
    # background: the canvas is a window onto a larger texture; the camera moves the window
    bg_half = np.full((n, 2), size * 0.75)
    frame = _warp(look.background, size / 2 - r.camera, bg_half, 0 * ones, size, "reflection")
    for sprite, path, half in look.distractors:
        frame = _over(frame, _warp(sprite, path - r.camera, np.full((n, 2), half), ones, size))
    blend = torch.tensor(r.blend, dtype=torch.float32).view(-1, 1, 1, 1)
    half = r.size * r.scale[:, None] * np.stack([r.stretch, 1 / r.stretch], axis=1)
    centre = r.path - r.camera
    alpha = torch.tensor(r.alpha, dtype=torch.float32)
    halves = [(np.zeros((n, 2)), half)]
    if r.split.any():  # two smaller halves, pushed apart across the object's axis
        across = np.stack([-np.sin(r.angle), np.cos(r.angle)], axis=1) * r.split[:, None] / 2
        halves = [(-across, half * 0.75), (across, half * 0.75)]
    source = torch.cat([look.sprite, look.recolour])  # (7, h, w): one warp for both textures
    for offset, part in halves:
        warped = _warp(source, centre + offset, part, r.angle, size)
        rgb = warped[:, :3] * (1 - blend) + warped[:, 4:] * blend
        frame = _over(frame, torch.cat([rgb, warped[:, 3:4]], dim=1), alpha)
    frame = frame * look.gain + look.bias
    if look.noise:
        gen = torch.Generator().manual_seed(r.look_seed)
        frame = frame + torch.randn(frame.shape, generator=gen) * look.noise
    frame = frame.clamp(0, 1)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((frame - mean) / std).transpose(0, 1).contiguous()  # (T, 3, H, W) -> (3, T, H, W)


def to_uint8(clip: torch.Tensor) -> np.ndarray:
    """A normalised clip ``(3, T, H, W)`` back to ``(T, H, W, 3)`` uint8 frames, to look at."""
    mean = torch.tensor(MEAN).view(3, 1, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1, 1)
    x = (clip * std + mean).clamp(0, 1) * 255
    return x.round().byte().permute(1, 2, 3, 0).numpy()


# ---------------------------------------------------------------- the stream


class ProceduralBatches(Dataset):
    """Batch ``i`` of stream ``seed``: ``{video (B, 1, 3, T, H, W), label (B,)}``.

    A whole batch per item (the DataLoader runs with ``batch_size=None``) keeps the per-item
    overhead of worker processes negligible; batch ``i`` is always the same clips, so a run
    resumed at step ``i`` sees exactly what an uninterrupted one would.
    """

    def __init__(
        self,
        batch_size: int,
        seed: int,
        cfg: ProceduralConfig = ProceduralConfig(),
        ramp: int = 0,
    ):
        """``ramp``: batches over which ``clutter`` rises from 0 to ``cfg.clutter``."""
        self.batch_size, self.seed, self.cfg, self.ramp = batch_size, seed, cfg, ramp

    def config(self, i: int) -> ProceduralConfig:
        if self.ramp <= 0:
            return self.cfg
        # quadratic: plain looks dominate the first quarter, while motion filters form
        return replace(self.cfg, clutter=self.cfg.clutter * min(1.0, i / self.ramp) ** 2)

    def __len__(self) -> int:  # endless in practice
        return 2**62

    def __getitem__(self, i: int) -> dict:
        cfg = self.config(i)
        first = i * self.batch_size
        recipes = [recipe(self.seed, first + j, cfg) for j in range(self.batch_size)]
        clips = torch.stack([render(r, cfg) for r in recipes])  # (B, 3, T, H, W)
        return {
            "video": clips[:, None],  # (B, S=1, 3, T, H, W)
            "label": torch.tensor([r.label for r in recipes]),
        }


class CountFrom(Sampler):
    """Batch numbers ``start, start + 1, ...`` up to ``stop``: the resumable order."""

    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        return iter(range(self.start, self.stop))

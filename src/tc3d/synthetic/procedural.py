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
frame), so a 64×64×8 clip costs a few milliseconds on one core. How objects move and change
is in :mod:`.procedural_tracks`, how they look in :mod:`.procedural_looks`; this module draws
recipes, renders them, and serves them as a resumable stream of batches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from tc3d.synthetic.procedural_looks import (
    BACKGROUND,
    SHAPES,
    SPRITE,
    TEXTURES,
    Look,
    make_look,
    photographs,
    shape_mask,
    texture,
)
from tc3d.synthetic.procedural_tracks import CHANGES, MOTIONS, change_tracks, trajectory
from tc3d.video.transforms import MEAN, STD

# The stream's names, wherever they are defined (tc3d.training.pretrain and tests use them).
__all__ = [
    "BACKGROUND",
    "CHANGES",
    "MOTIONS",
    "SHAPES",
    "SPRITE",
    "TEXTURES",
    "CountFrom",
    "Look",
    "ProceduralBatches",
    "ProceduralConfig",
    "Recipe",
    "change_tracks",
    "class_names",
    "label_of",
    "make_look",
    "photographs",
    "recipe",
    "render",
    "shape_mask",
    "texture",
    "to_uint8",
    "trajectory",
]


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

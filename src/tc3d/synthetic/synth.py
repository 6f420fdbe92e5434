"""Synthetic action videos: the embedded benchmark, written as real encoded files in UCF101 layout.

Each class tier isolates one property T-C3D is meant to capture (paper Sections III-A..C):
*appearance* classes are decided by the object's shape in any single frame; *motion* classes
come in pairs with identical appearance that differ only in short-term motion (direction,
rotation sense, speed), which an 8-frame clip sees but a frame does not; *long_term* classes are
an "athlete" going through three phases (start, an uninformative walk, end), so one centre clip
sees only the walk while the S=3 segment clips at 1/6, 1/2 and 5/6 see all three phases. Start
and end together decide RunThen*/CrawlThen*; HopThenSpin vs SpinThenHop differ only in order,
which permutation-invariant fusions (avg, max) cannot learn.

Groups are scenes, as in UCF101's split by group: videos of group g share one cluttered static
background in every class alike, so the scene is no cue to the class and test groups are unseen
scenes. Sprite colour and size vary per video; the camera shakes, pixels are noisy, distractor
blobs drift in every class alike, and lengths and speeds vary per video. Everything is numpy:
per-group backgrounds are rendered once on a padded canvas and cropped for shake, sprite masks
are drawn on small patches, noise comes from a pre-drawn bank, and only the sprite's box is
blended. Each video is rendered from its own seed, so output is byte-identical for any worker
count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tc3d.io import atomic_write_text
from tc3d.synthetic.pool import render_all
from tc3d.synthetic.sprites import (
    FOOTROOM,
    Sprite,
    background,
    blend,
    encode_yuv420,
    keyed_rng,
    noise_bank,
    put_chroma,
    soft_blob,
    sprite_colour,
)

if TYPE_CHECKING:
    from tc3d.progress import Progress

H, W, FPS, GOP = 240, 320, 25, 12
BIT_RATE = 400_000  # ~200 kB per 100 frames: small files, sprites stay crisp
PAD = 8  # background canvas margin: camera shake moves a crop window within it
NOISE_MAX = FOOTROOM  # per-frame luma noise is clipped to +-NOISE_MAX

# Catalogue order interleaves the tiers so that any first N >= 3 classes cover all three.
_CATALOGUE: list[tuple[str, str, str]] = [
    ("FloatBall", "appearance", "a red disc with target rings wandering smoothly"),
    ("SlideLeft", "motion", "a capsule sliding left, wrapping around the frame"),
    ("RunThenHighJump", "long_term", "athlete: run, walk, repeated high jumps"),
    ("SlideRight", "motion", "the same capsule sliding right"),
    ("RunThenLongJump", "long_term", "athlete: run, walk, repeated long jumps"),
    ("FloatBox", "appearance", "a blue checkered square wandering smoothly"),
    ("SpinClockwise", "motion", "a flag spinning clockwise, 4-8 degrees a frame"),
    ("CrawlThenHighJump", "long_term", "athlete: crawl, walk, repeated high jumps"),
    ("SpinCounterClockwise", "motion", "the same flag spinning counter-clockwise"),
    ("CrawlThenLongJump", "long_term", "athlete: crawl, walk, repeated long jumps"),
    ("FloatTriangle", "appearance", "a green striped triangle wandering smoothly"),
    ("BobFast", "motion", "a bow-tie bobbing up and down with a 8-12 frame period"),
    ("HopThenSpin", "long_term", "athlete: hop in place, walk, spin in place"),
    ("BobSlow", "motion", "the same bow-tie bobbing with a 30-48 frame period"),
    ("SpinThenHop", "long_term", "athlete: spin in place, walk, hop in place"),
    ("FloatCross", "appearance", "a yellow plus sign wandering smoothly"),
]
CLASS_TIERS: dict[str, str] = {name: tier for name, tier, _ in _CATALOGUE}
CLASS_DESCRIPTIONS: dict[str, str] = {name: text for name, _, text in _CATALOGUE}
TIERS = ("appearance", "motion", "long_term")
KINDS = ("actions", "surveillance", "pairs")  # tc3d synth --kind: see make_dataset
_PHASES = {
    "RunThenHighJump": ("run", "walk", "highjump"),
    "RunThenLongJump": ("run", "walk", "longjump"),
    "CrawlThenHighJump": ("crawl", "walk", "highjump"),
    "CrawlThenLongJump": ("crawl", "walk", "longjump"),
    "HopThenSpin": ("hop", "walk", "spin"),
    "SpinThenHop": ("spin", "walk", "hop"),
}
_SHAPE_OF = {"FloatBall": "ball", "FloatBox": "box", "FloatTriangle": "triangle",
             "FloatCross": "cross", "SlideLeft": "puck", "SlideRight": "puck",
             "SpinClockwise": "flag", "SpinCounterClockwise": "flag", "BobFast": "bowtie",
             "BobSlow": "bowtie"}  # fmt: skip


_HUES = {
    "FloatBall": (-0.5, 0.5),
    "FloatBox": (3.5, 4.5),
    "FloatTriangle": (1.5, 2.5),
    "FloatCross": (0.7, 1.3),
}  # fmt: skip  (red, blue, green, yellow)
# Sprite radius in pixels: the flag is large so its spin sense shows at 112 px and below.
_RADIUS = {"athlete": (40, 48), "flag": (40, 50)}


# --- motion: per-frame sprite centre (scene coordinates), angle in degrees clockwise ---


def _wander(rng, n, amp_x, amp_y, speed, cx=W / 2, cy=H / 2):
    """A smooth random wander: two slow sinusoids per axis, random phases and periods."""
    t = np.arange(n, dtype=np.float64)
    out = []
    for amp, centre in ((amp_x, cx), (amp_y, cy)):
        pos = np.full(n, centre + rng.uniform(-0.25, 0.25) * amp)
        for share in (0.6, 0.4):
            period = rng.uniform(50, 150) / speed
            pos += share * amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        out.append(pos)
    return out


def _phase(name, n, rng, s, d, r):
    """One long-term phase as (x velocity, y offset from standing height, angle) per frame."""
    tau = np.arange(n, dtype=np.float64)
    vx, y, ang = np.zeros(n), np.zeros(n), np.zeros(n)
    if name == "walk":  # slow, upright, gentle bob
        vx[:] = d * rng.uniform(1.2, 2.0) * s
        y = -3 * np.abs(np.sin(np.pi * tau * s / 12))
    elif name == "run":  # fast, leaning forward, quick stride bob
        vx[:] = d * rng.uniform(6.0, 9.0) * s
        y, ang[:] = -7 * np.abs(np.sin(np.pi * tau * s / 8)), d * 12
    elif name == "crawl":  # lying, head first, slow
        vx[:] = d * rng.uniform(1.0, 2.0) * s
        y[:] = 0.55 * r
        ang = d * 90 + 5 * np.sin(2 * np.pi * tau * s / 14)
    elif name in ("highjump", "longjump"):  # repeated parabolic flights
        long = name == "longjump"
        period = rng.uniform(16, 22) / s if long else rng.uniform(20, 28) / s
        height = rng.uniform(25, 38) if long else rng.uniform(60, 85)
        f = (tau % period) / period
        y = -height * 4 * f * (1 - f)
        if long:
            vx[:], ang[:] = d * rng.uniform(4.0, 6.0) * s, d * 35
    elif name == "hop":  # small quick hops in place
        y = -rng.uniform(20, 30) * np.abs(np.sin(np.pi * tau * s / rng.uniform(7, 10)))
    elif name == "spin":  # rotation in place, either sense
        ang = rng.uniform(0, 360) + rng.choice([-1, 1]) * rng.uniform(12, 20) * s * tau
    return vx, y, ang


def _trajectory(cls: str, n: int, rng: np.random.Generator, r: float):
    """(shape, x, y, angle) arrays of length n for one video of class cls."""
    s = rng.uniform(0.8, 1.25)  # per-video speed factor; class-defining ranges stay disjoint
    tier, zeros = CLASS_TIERS[cls], np.zeros(n)
    if tier == "appearance":
        x, y = _wander(rng, n, 40, 25, s)  # stays near the centre: inside most crops
        return _SHAPE_OF[cls], x, y, zeros
    if cls.startswith("Slide"):
        d = -1 if cls == "SlideLeft" else 1
        _, y = _wander(rng, n, 0, 22, s, cy=rng.uniform(90, 150))
        x = rng.uniform(0, W) + d * rng.uniform(3.0, 6.0) * s * np.arange(n)
        return "puck", x, y, zeros
    if cls.startswith("Spin") and tier == "motion":
        x, y = _wander(rng, n, 30, 20, s)
        d = 1 if cls == "SpinClockwise" else -1
        # 4-8 degrees a frame: 8-16 between the frames of a clip (offset 2), unmistakable sense
        return "flag", x, y, rng.uniform(0, 360) + d * rng.uniform(4, 8) * s * np.arange(n)
    if cls.startswith("Bob"):
        x, y = _wander(rng, n, 30, 10, s)
        period = rng.uniform(8, 12) if cls == "BobFast" else rng.uniform(30, 48)
        phase = rng.uniform(0, 2 * np.pi)
        y += rng.uniform(30, 42) * np.sin(2 * np.pi * np.arange(n) / period + phase)
        return "bowtie", x, y, zeros
    # long-term: start | walk | end, boundaries at 1/3 and 2/3 jittered by up to 5% of n
    b1 = round(n * (1 / 3 + rng.uniform(-0.05, 0.05)))
    b2 = round(n * (2 / 3 + rng.uniform(-0.05, 0.05)))
    d, ground = rng.choice([-1, 1]), rng.uniform(185, 200) - 0.95 * r
    x, y, ang = np.zeros(n), np.zeros(n), np.zeros(n)
    for name, a, b in zip(_PHASES[cls], (0, b1, b2), (b1, b2, n), strict=True):
        vx, y[a:b], ang[a:b] = _phase(name, b - a, rng, s, d, r)
        x[a:b] = (x[a - 1] if a else 0.0) + np.cumsum(vx)
    # The athlete runs laps: it turns round at the ends of the central band |x - W/2| <= 90,
    # so it stays whole inside a centre crop; a turn mirrors its pose (lean, head first).
    loop = (x + rng.uniform(0, 360)) % 360
    facing = np.where(loop < 180, 1, -1)
    x = W / 2 - 90 + np.where(loop < 180, loop, 360 - loop)
    return "athlete", x, ground + y, ang * facing


# --- rendering and encoding ---


@dataclass(frozen=True)
class VideoSpec:
    """One video of the set: its class, group and clip (1-based), the set's seed, its length."""

    cls: str
    group: int
    clip: int
    seed: int
    frames: int

    @property
    def name(self) -> str:
        return f"v_{self.cls}_g{self.group:02d}_c{self.clip:02d}.avi"


def render_video(spec: VideoSpec) -> Iterator[np.ndarray]:
    """Yield the spec's frames as yuv420p arrays: (H * 3 // 2, W) uint8, Y then U then V.

    ``av.VideoFrame.from_ndarray(frame, format="yuv420p")`` turns one into a frame.
    """
    # A group is a scene shared by *every* class (group g of each class is filmed in scene g),
    # so the background says nothing about the class: a model must look at the sprite, and test
    # groups show scenes never seen in training. Sprite size is the group's "actor"; colour
    # varies per video, so neither becomes a shortcut.
    grng = keyed_rng(spec.seed, "scene", spec.group)
    bg_y, bg_c = background(grng, H + 2 * PAD, W + 2 * PAD)
    blob_grey = grng.uniform(40, 215, 2)
    look = keyed_rng(spec.seed, spec.cls, spec.group, spec.clip, 2)
    # An appearance class has its own colour family as well as its own shape and texture (a
    # guitar is recognised by its look, not its outline alone); other tiers take any colour.
    colour = sprite_colour(look, _HUES.get(spec.cls, (0, 6)))
    radius = look.uniform(*_RADIUS.get(_SHAPE_OF.get(spec.cls, "athlete"), (30, 40)))
    # the length draw uses (..., clip); this stream adds a trailing 1
    rng = keyed_rng(spec.seed, spec.cls, spec.group, spec.clip, 1)
    n = spec.frames
    shape, xs, ys, angles = _trajectory(spec.cls, n, rng, radius)
    sprite = Sprite(shape, radius, colour)
    blobs = []  # slow soft distractors, same distribution in every class
    for i in range(int(rng.integers(1, 3))):
        layer = soft_blob(rng.uniform(9, 18), blob_grey[i] + rng.uniform(-15, 15, 3))
        heading, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.0)
        vel = speed * np.array([np.cos(heading), np.sin(heading)])
        blobs.append((layer, rng.uniform((0, 0), (W, H)), vel))
    noise, noise_at = noise_bank(rng, (2, 5), H, W, n)
    shake = np.zeros((n, 2))
    for t in range(1, n):  # mean-reverting random walk, a few pixels
        shake[t] = np.clip(0.85 * shake[t - 1] + rng.normal(0, 1.2, 2), -PAD + 1, PAD - 1)
    shake = np.round(shake).astype(int)
    for t in range(n):
        sx, sy = shake[t]
        oy, ox, ny, nx = PAD + sy, PAD + sx, *noise_at[t]
        frame = np.empty((H * 3 // 2, W), np.uint8)
        y = frame[:H]
        np.add(bg_y[oy : oy + H, ox : ox + W], noise[ny : ny + H, nx : nx + W], out=y)
        c = bg_c[oy // 2 : oy // 2 + H // 2, ox // 2 : ox // 2 + W // 2].copy()
        for layer, start, vel in blobs:
            bx, by = start + vel * t
            blend(y, c, layer, bx % W - sx, (by + 30) % (H + 60) - 30 - sy)
        blend(y, c, sprite.layer(angles[t]), xs[t] % W - sx, ys[t] - sy)
        put_chroma(frame, c)
        yield frame


def write_video(spec: VideoSpec, path: str | Path) -> int:
    """Render and encode one video (mpeg4 in AVI) atomically; returns the number of frames."""
    encode_yuv420(render_video(spec), path, (W, H), FPS, GOP, BIT_RATE, "avi")
    return spec.frames


def _video_length(seed: int, cls: str, group: int, clip: int) -> int:
    rng = keyed_rng(seed, cls, group, clip)
    if CLASS_TIERS[cls] == "long_term":
        return int(rng.integers(80, 331))
    return int(rng.integers(18, 24) if rng.random() < 0.1 else rng.integers(24, 161))


def _group_sizes(per_class: int) -> list[int]:
    # Groups of 2 clips: many scenes, so the test side (a quarter of the groups) spans several
    # unseen scenes and one unlucky scene cannot decide a class's accuracy.
    n = max(2, math.ceil(per_class / 2))
    return [per_class // n + (i < per_class % n) for i in range(n)]


def class_names(classes: int | None = None) -> list[str]:
    """The first ``classes`` names of the catalogue (all when None)."""
    if classes is None:
        classes = len(_CATALOGUE)
    if not 1 <= classes <= len(_CATALOGUE):
        raise ValueError(
            f"classes must be between 1 and {len(_CATALOGUE)} (the synthetic catalogue's size), "
            f"got {classes}"
        )
    return [name for name, _, _ in _CATALOGUE[:classes]]


def plan_videos(names: list[str], per_class: int, seed: int) -> list[VideoSpec]:
    """Every video of the set, in UCF101 order (class, group, clip)."""
    if per_class < 2:
        raise ValueError(
            f"per_class must be at least 2 (a test and a train group), got {per_class}"
        )
    specs = []
    for cls in names:
        for g, size in enumerate(_group_sizes(per_class), 1):
            for c in range(1, size + 1):
                specs.append(VideoSpec(cls, g, c, seed, _video_length(seed, cls, g, c)))
    return specs


@dataclass
class SynthSummary:
    root: Path
    videos: int  # files written
    classes: list[str]
    train: int  # entries in trainlist01.txt
    test: int  # entries in testlist01.txt
    tiers: dict[str, list[str]]  # "appearance" | "motion" | "long_term" -> class names


def _write_text(path: Path, lines: list[str]) -> None:
    """CRLF line ends, as UCF101's own split files have."""
    atomic_write_text("".join(line + "\r\n" for line in lines), path)


def make_synthetic_dataset(
    out: str | Path,
    classes: int | None = None,
    per_class: int = 16,
    seed: int = 0,
    workers: int = 2,
    progress: Progress | None = None,
) -> SynthSummary:
    """Write the synthetic set to ``out`` in UCF101 layout and return what was written; an
    interrupted run resumes, a run with other settings renders every video again
    (:mod:`tc3d.synthetic.pool`)."""
    root = Path(out).resolve()
    names = class_names(classes)
    specs = plan_videos(names, per_class, seed)
    for cls in names:
        (root / cls).mkdir(parents=True, exist_ok=True)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    jobs = [(s, root / s.cls / s.name) for s in specs]
    settings = {"kind": "actions", "seed": seed, "per_class": per_class, "classes": names}
    render_all(write_video, jobs, root, settings, workers, progress)

    n_test = max(1, round(len(_group_sizes(per_class)) / 4))  # about a quarter, at least one
    rel = {s: f"{s.cls}/{s.name}" for s in specs}
    train = [f"{rel[s]} {names.index(s.cls) + 1}" for s in specs if s.group > n_test]
    test = [rel[s] for s in specs if s.group <= n_test]
    _write_text(root / "splits" / "classInd.txt", [f"{i} {c}" for i, c in enumerate(names, 1)])
    _write_text(root / "splits" / "trainlist01.txt", train)
    _write_text(root / "splits" / "testlist01.txt", test)
    tiers = {t: [c for c in names if CLASS_TIERS[c] == t] for t in TIERS}
    atomic_write_text(json.dumps(tiers, indent=2) + "\n", root / "tiers.json")
    return SynthSummary(root, len(specs), names, len(train), len(test), tiers)


def make_dataset(
    kind: str,
    out: str | Path,
    classes: int | None = None,
    per_class: int | None = None,
    seed: int = 0,
    workers: int = 2,
    progress: Progress | None = None,
) -> dict:
    """``tc3d synth --kind KIND``: write one synthetic data set; what was written as plain data.

    ``actions`` is this module's benchmark; ``surveillance`` long static-camera videos with
    short anomalies (UCF-Crime layout); ``pairs`` same/different pairs of unseen actions (all
    test videos). Keys: root, videos, classes (a count), class_names, train, test, then tiers,
    frames, or pairs and pairs_file. ``per_class`` None is the kind's own default; ``classes``
    applies to actions only."""
    if kind == "surveillance":
        from tc3d.synthetic.surveillance import make_surveillance_dataset

        s = make_surveillance_dataset(out, per_class or 8, seed, workers, progress)
        extra = {"train": s.train, "test": s.test, "frames": s.frames}
    elif kind == "pairs":
        from tc3d.synthetic.pairs import make_pairs_dataset

        s = make_pairs_dataset(out, per_class or 10, seed, workers, progress)
        extra = {"train": 0, "test": s.videos, "pairs": s.pairs, "pairs_file": str(s.pairs_file)}
    elif kind == "actions":
        s = make_synthetic_dataset(out, classes, per_class or 16, seed, workers, progress)
        extra = {"train": s.train, "test": s.test, "tiers": s.tiers}
    else:
        raise ValueError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    head = {"root": str(s.root), "videos": s.videos, "classes": len(s.classes)}
    return {**head, "class_names": s.classes, **extra}

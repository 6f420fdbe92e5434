"""Synthetic surveillance videos in UCF-Crime layout: the offline stand-in for anomaly detection.

UCF-Crime (Sultani et al., the paper's Table VI) is long untrimmed footage from static cameras
where an anomaly fills a short stretch of a mostly normal video, and training knows only which
videos hold one. This module makes such videos as real encoded files: a fixed camera looks at
a cluttered scene where pedestrians walk across and soft blobs drift (normal activity in every
video alike); an anomalous video adds one or two short events, 3-8 s in a 30-60 s video:

* ``Falling``: a walker topples, lies on the ground twitching, then gets up and walks on;
* ``Fighting``: two people tussle in one place, jittering and twisting every frame;
* ``Arson``: a flickering orange-yellow fire;
* ``Abandonment``: a bag sits unattended on the ground.

Cameras are shared by normal and anomalous videos (as a deployed camera sees both), so the
scene says nothing about the label. Files follow the real set: ``Anomaly_Train.txt``,
``Anomaly_Test.txt`` (``Arson/Arson003_x264.mp4``, ``Training_Normal_Videos_Anomaly/...``) and
``Temporal_Anomaly_Annotation.txt`` for the test videos (``Arson003_x264.mp4  Arson  165  240
-1  -1``: two 1-based inclusive frame intervals, -1 for none). Each video is rendered from its
own seed, so the output is identical for any worker count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tc3d.io import atomic_write_text
from tc3d.synthetic import sprites
from tc3d.synthetic.pool import render_all

if TYPE_CHECKING:
    from tc3d.progress import Progress

H, W, FPS, GOP = 120, 160, 25, 12
BIT_RATE = 250_000
EVENTS = ("Arson", "Abandonment", "Falling", "Fighting")
CAMERAS = 6
SECONDS = (30, 60)  # video length range
EVENT_SECONDS = (3, 8)  # anomaly length range
TWO_EVENTS = 0.25  # share of anomalous videos with a second event
TRAIN_NORMAL_DIR = "Training_Normal_Videos_Anomaly"
TEST_NORMAL_DIR = "Testing_Normal_Videos_Anomaly"


@dataclass(frozen=True)
class SurveillanceSpec:
    """One video: its event class (``Normal`` for none), number, split, camera, seed, length."""

    event: str
    number: int
    train: bool
    camera: int
    seed: int
    frames: int
    intervals: tuple[tuple[int, int], ...] = field(default=())  # 0-based [start, end) frames

    @property
    def name(self) -> str:
        if self.event != "Normal":
            return f"{self.event}{self.number:03d}_x264.mp4"
        return f"Normal_Videos{'' if self.train else '_'}{self.number:03d}_x264.mp4"

    @property
    def rel(self) -> str:
        if self.event != "Normal":
            return f"{self.event}/{self.name}"
        return f"{TRAIN_NORMAL_DIR if self.train else TEST_NORMAL_DIR}/{self.name}"


def _intervals(
    rng: np.random.Generator, n: int, event_seconds: tuple[float, float]
) -> tuple[tuple[int, int], ...]:
    """One or two event intervals, away from the ends and from each other."""
    count = 2 if rng.random() < TWO_EVENTS else 1
    lengths = [int(rng.uniform(*event_seconds) * FPS) for _ in range(count)]
    room = n - sum(lengths) - 2 * FPS * (count + 1)
    cuts = np.sort(rng.uniform(0, room, count)).astype(int)
    out, used = [], FPS
    for cut, length in zip(cuts, lengths, strict=True):
        start = FPS + cut + (used - FPS)
        out.append((int(start), int(start + length)))
        used += length + FPS
    return tuple(out)


def plan_surveillance(
    per_class: int = 8,
    seed: int = 0,
    seconds: tuple[float, float] = SECONDS,
    event_seconds: tuple[float, float] = EVENT_SECONDS,
) -> list[SurveillanceSpec]:
    """``per_class`` videos per event and ``per_class × len(EVENTS)`` normal ones; a quarter
    of each (at least one) is test. Lengths in seconds (tests use short ones)."""
    if seconds[0] < event_seconds[1] * 2 + 6:
        raise ValueError(f"videos of {seconds[0]} s are too short for {event_seconds[1]} s events")
    if per_class < 2:
        raise ValueError(
            f"per_class must be at least 2 (a train and a test video), got {per_class}"
        )
    specs = []
    n_test = max(1, round(per_class / 4))
    for event, count in [(e, per_class) for e in EVENTS] + [("Normal", per_class * len(EVENTS))]:
        tests = max(1, round(count / 4)) if event == "Normal" else n_test
        for i in range(count):
            rng = sprites.keyed_rng(seed, event, i, "plan")
            n = int(rng.uniform(*seconds) * FPS)
            intervals = _intervals(rng, n, event_seconds) if event != "Normal" else ()
            train = i >= tests
            number = i + 1
            camera = int(rng.integers(CAMERAS))
            specs.append(SurveillanceSpec(event, number, train, camera, seed, n, intervals))
    return specs


# --- rendering ---


def _walker_track(rng: np.random.Generator, n: int, speed: float, y0: float, x_at=None):
    """x, y, angle and direction of a pedestrian walking laps (off one side, in at the other)."""
    t = np.arange(n, dtype=np.float64)
    d = int(rng.choice([-1, 1]))
    # x_at = (frame, x): be at x at that frame (where the event happens)
    x0 = rng.uniform(0, W + 60) if x_at is None else x_at[1] + 30 - d * speed * x_at[0]
    x = (x0 + d * speed * t) % (W + 60) - 30
    y = y0 - 2.0 * np.abs(np.sin(np.pi * t * speed / 9))
    return x, y, np.zeros(n), d


def _stop(x: np.ndarray, a: int, b: int, d: int, speed: float) -> None:
    """The walker halts at its frame-a position during [a, b), then walks on from there."""
    x[a:b] = x[a]
    rest = np.arange(len(x) - b, dtype=np.float64)
    x[b:] = (x[a] + 30 + d * speed * rest) % (W + 60) - 30


# A walker, as drawn: its sprite and its per-frame x, y and angle (event builders edit these).
_Person = tuple[sprites.Sprite, np.ndarray, np.ndarray, np.ndarray]
# Drawn on event frames only: (luma plane, chroma planes, frame index).
_Extra = Callable[[np.ndarray, np.ndarray, int], None]


def _people(spec: SurveillanceSpec, rng: np.random.Generator) -> list[_Person]:
    """Normal activity: 1-3 walkers; in a Falling or Fighting video the first one stands in
    view when the event starts and halts there through each event."""
    n, first = spec.frames, spec.intervals[0] if spec.intervals else None
    acts = spec.event in ("Falling", "Fighting")
    people = []
    for k in range(int(rng.integers(1, 4))):
        radius, speed, ground = rng.uniform(10, 14), rng.uniform(0.5, 1.2), rng.uniform(60, 98)
        x_at = None
        if k == 0 and acts and first:
            x_at = (first[0], rng.uniform(55, 105))  # the event happens in view
        x, y, ang, d = _walker_track(rng, n, speed, ground, x_at)
        if k == 0 and acts:
            for a, b in spec.intervals:
                _stop(x, a, b, d, speed)
        people.append((sprites.Sprite("athlete", radius, sprites.sprite_colour(rng)), x, y, ang))
    return people


def _blobs(rng: np.random.Generator) -> list[tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]]:
    """1-2 soft blobs drifting slowly: (layer, start, velocity per frame)."""
    blobs = []
    for _ in range(int(rng.integers(1, 3))):
        layer = sprites.soft_blob(
            rng.uniform(6, 12), rng.uniform(60, 200) + rng.uniform(-15, 15, 3)
        )
        heading, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.6)
        vel = speed * np.array([np.cos(heading), np.sin(heading)])
        blobs.append((layer, rng.uniform((0, 0), (W, H)), vel))
    return blobs


def _falling(spec: SurveillanceSpec, rng: np.random.Generator, people: list[_Person]):
    """The first walker topples over 8 frames, lies twitching, gets up."""
    sprite, _, y, ang = people[0]
    r = sprite.half / 1.1
    for a, b in spec.intervals:
        i = np.arange(b - a)
        tip = np.clip(i / 8.0, 0, 1) * np.clip((b - a - i) / 8.0, 0, 1)
        sense = 90 * int(rng.choice([-1, 1]))
        ang[a:b] = sense * tip + 4 * rng.normal(size=b - a) * (tip > 0.99)
        y[a:b] = y[a] + 0.55 * r * tip
    return []


def _fighting(spec: SurveillanceSpec, rng: np.random.Generator, people: list[_Person]):
    """A second person appears beside the first; both jitter and twist every frame."""
    sprite, x, y, ang = people[0]
    other = sprites.Sprite("athlete", sprite.half / 1.1, sprites.sprite_colour(rng))
    jitter, twist = rng.normal(0, 3.0, (spec.frames, 4)), rng.uniform(-40, 40, (spec.frames, 2))
    gap = sprite.half * 0.8
    for a, b in spec.intervals:
        x[a:b] += jitter[a:b, 0]
        y[a:b] += jitter[a:b, 1]
        ang[a:b] = twist[a:b, 0]

    def fight(yp, cp, t):
        layer = other.layer(twist[t, 1])
        sprites.blend(yp, cp, layer, x[t] + gap + jitter[t, 2], y[t] + jitter[t, 3])

    return [fight]


def _arson(spec: SurveillanceSpec, rng: np.random.Generator, people: list[_Person]):
    """3-5 hot blobs, new sizes and places every frame."""
    fx, fy, fire_seed = rng.uniform(50, 110), rng.uniform(50, 95), int(rng.integers(2**31))

    def fire(yp, cp, t):
        f = np.random.default_rng([fire_seed, t])
        for _ in range(int(f.integers(3, 6))):
            colour = np.array([255.0, f.uniform(90, 220), f.uniform(0, 60)])
            layer = sprites.soft_blob(f.uniform(4, 10), colour)
            sprites.blend(yp, cp, layer, fx + f.normal(0, 4), fy - f.uniform(0, 12))

    return [fire]


def _abandonment(spec: SurveillanceSpec, rng: np.random.Generator, people: list[_Person]):
    """A bag on the ground, nobody near it."""
    bag = sprites.Sprite("box", rng.uniform(7, 9), sprites.sprite_colour(rng) * 0.7)
    bx, by = rng.uniform(50, 110), rng.uniform(70, 100)
    return [lambda yp, cp, t: sprites.blend(yp, cp, bag.layer(0), bx, by)]


_EVENT_DRAWING: dict[str, Callable[..., list[_Extra]]] = {
    "Falling": _falling,
    "Fighting": _fighting,
    "Arson": _arson,
    "Abandonment": _abandonment,
}


def render_surveillance(spec: SurveillanceSpec) -> Iterator[np.ndarray]:
    """Yield the video's frames as yuv420p arrays ``(H * 3 // 2, W)`` uint8."""
    bg_y, bg_c = sprites.background(sprites.keyed_rng(spec.seed, "camera", spec.camera), H, W)
    rng = sprites.keyed_rng(spec.seed, spec.event, spec.number, "render")
    n = spec.frames
    in_event = np.zeros(n, bool)
    for a, b in spec.intervals:
        in_event[a:b] = True
    people, blobs = _people(spec, rng), _blobs(rng)
    extras = _EVENT_DRAWING[spec.event](spec, rng, people) if spec.event in _EVENT_DRAWING else []
    noise, noise_at = sprites.noise_bank(rng, (2, 4), H, W, n)
    light = 6 * np.sin(2 * np.pi * np.arange(n) / rng.uniform(300, 900) + rng.uniform(0, 6))
    for t in range(n):
        frame = np.empty((H * 3 // 2, W), np.uint8)
        ny, nx = noise_at[t]
        luma = bg_y.astype(np.int16) + noise[ny : ny + H, nx : nx + W] + int(light[t])
        y = np.clip(luma, 0, 255).astype(np.uint8)
        c = bg_c.copy()
        for layer, start, vel in blobs:
            bx, by = start + vel * t
            sprites.blend(y, c, layer, bx % W, by % H)
        for sprite, x, yy, ang in people:
            sprites.blend(y, c, sprite.layer(ang[t]), x[t], yy[t])
        for draw in extras if in_event[t] else ():
            draw(y, c, t)
        frame[:H] = y
        sprites.put_chroma(frame, c)
        yield frame


def write_surveillance_video(spec: SurveillanceSpec, path: str | Path) -> int:
    """Render and encode one video (mpeg4 in MP4) atomically; returns the number of frames."""
    sprites.encode_yuv420(render_surveillance(spec), path, (W, H), FPS, GOP, BIT_RATE, "mp4")
    return spec.frames


def annotation_line(spec: SurveillanceSpec) -> str:
    """``Arson003_x264.mp4  Arson  165  240  -1  -1``: 1-based inclusive, two-space separated."""
    bounds = [v for a, b in spec.intervals for v in (a + 1, b)]
    bounds += [-1] * (4 - len(bounds))
    return "  ".join([spec.name, spec.event, *map(str, bounds)])


@dataclass
class SurveillanceSummary:
    root: Path
    videos: int
    classes: list[str]
    train: int
    test: int
    frames: int


def _write_lines(path: Path, lines: list[str]) -> None:
    atomic_write_text("".join(line + "\n" for line in lines), path)


def make_surveillance_dataset(
    out: str | Path,
    per_class: int = 8,
    seed: int = 0,
    workers: int = 2,
    progress: Progress | None = None,
    seconds: tuple[float, float] = SECONDS,
    event_seconds: tuple[float, float] = EVENT_SECONDS,
) -> SurveillanceSummary:
    """Write the surveillance set to ``out`` in UCF-Crime layout; an interrupted run resumes, a
    run with other settings renders every video again (:mod:`tc3d.synthetic.pool`)."""
    root = Path(out).resolve()
    specs = plan_surveillance(per_class, seed, seconds, event_seconds)
    for s in specs:
        (root / s.rel).parent.mkdir(parents=True, exist_ok=True)
    jobs = [(s, root / s.rel) for s in specs]
    settings = {"kind": "surveillance", "seed": seed, "per_class": per_class,
                "seconds": seconds, "event_seconds": event_seconds}  # fmt: skip
    render_all(write_surveillance_video, jobs, root, settings, workers, progress)
    train = [s.rel for s in specs if s.train]
    test = [s for s in specs if not s.train]
    _write_lines(root / "Anomaly_Train.txt", train)
    _write_lines(root / "Anomaly_Test.txt", [s.rel for s in test])
    _write_lines(root / "Temporal_Anomaly_Annotation.txt", [annotation_line(s) for s in test])
    return SurveillanceSummary(
        root, len(specs), ["Normal", *EVENTS], len(train), len(test), sum(s.frames for s in specs)
    )

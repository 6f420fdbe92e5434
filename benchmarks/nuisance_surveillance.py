"""A development set for anomaly detection with the nuisance real surveillance video is full of.

Shares no code with ``tc3d.synthetic`` (whose surveillance set is line-drawn figures on still
backdrops). Every video is a fixed camera over a busy street: textured buildings, a road with
traffic in both directions, pedestrians and small crowds, trees swaying in gusts, a lamp that
flickers, slow lighting drift and sudden auto-exposure steps, sensor noise, slight camera shake,
and low-bitrate H.264. Normal videos are exactly that. An anomalous video adds one short
incident (3-8 s of a 24-45 s video):

* ``Fighting``: two walkers meet, grapple and flail in one place, then one lies on the ground;
* ``Arson``: a fire grows on the pavement, flames flickering, smoke rising;
* ``Abandonment``: a walker sets a bag down and leaves; the incident runs until the walker has
  gone and the bag sits alone for a few seconds (later it is an unattended bag in a normal scene);
* ``Collapse``: a walker falls and lies still.

Cameras (scenes) are shared by normal and anomalous videos, so the scene says nothing about the
label; how busy a video is (traffic, crowd, wind, flicker) is drawn independently of its label.
The layout is UCF-Crime's, as ``tc3d anomaly train|test`` read it. ``--seed`` picks everything:
seed 0 is the development set, seed 1 the confirmation set that chooses nothing.

Usage: python benchmarks/nuisance_surveillance.py OUT [--seed 0] [--train 24] [--test 16]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import av
import numpy as np

H, W, FPS = 176, 240, 25
INCIDENTS = ("Fighting", "Arson", "Abandonment", "Collapse")
CAMERAS = 8
ROAD = (118, 146)  # road rows
WALK = (96, 118)  # pavement rows where people walk (feet)


@dataclass
class Agent:
    """A moving thing: position (x, feet y), velocity (px/frame), look, and what it is doing."""

    kind: str  # "walker" or "car"
    x: float
    y: float
    vx: float
    colour: np.ndarray
    size: float
    phase: float
    state: str = "walk"  # walk, fight, down, carry, gone
    bag: bool = False


def camera_scene(camera: int) -> dict:
    """The fixed parts of a camera: background texture, trees, a lamp, its exposure habits."""
    rng = np.random.default_rng(10_000 + camera)
    bg = np.zeros((H, W, 3), np.float32)
    sky = np.linspace(0.75, 0.45, 60)[:, None, None] * rng.uniform(0.7, 1.0, 3)
    bg[:60] = sky * 255
    x = 0
    while x < W:  # buildings with window grids
        w = int(rng.integers(25, 60))
        top = int(rng.integers(5, 50))
        bg[top : WALK[0], x : x + w] = rng.uniform(60, 200, 3)
        for wy in range(top + 4, WALK[0] - 8, 9):
            for wx in range(x + 3, min(W, x + w) - 4, 8):
                bg[wy : wy + 5, wx : wx + 4] = rng.uniform(20, 240, 3) if rng.random() < 0.7 else 0
        x += w + int(rng.integers(0, 6))
    bg[WALK[0] : WALK[1]] = rng.uniform(110, 170) + rng.normal(0, 12, (WALK[1] - WALK[0], W, 1))
    bg[ROAD[0] : ROAD[1]] = rng.uniform(40, 80)
    bg[(ROAD[0] + ROAD[1]) // 2, ::12][:, None] = 220  # lane marks
    bg[ROAD[1] :] = rng.uniform(100, 150) + rng.normal(0, 10, (H - ROAD[1], W, 1))
    bg += rng.normal(0, 6, (H, W, 1))  # grain of the scene itself
    trees = [(float(rng.uniform(10, W - 10)), float(rng.uniform(40, 80)), float(rng.uniform(9, 16)))
             for _ in range(int(rng.integers(1, 4)))]  # fmt: skip
    lamp = None
    if rng.random() < 0.75:
        lamp = (int(rng.integers(10, W - 10)), int(rng.integers(20, 70)))
    return {"bg": np.clip(bg, 0, 255), "trees": trees, "lamp": lamp}


def disc(frame, cx, cy, r, colour, alpha=1.0) -> None:
    """Paint a filled ellipse-ish disc (r may be a (rx, ry) pair), clipped to the frame."""
    rx, ry = (r, r) if np.isscalar(r) else r
    x0, x1 = int(max(0, cx - rx)), int(min(W, cx + rx + 1))
    y0, y1 = int(max(0, cy - ry)), int(min(H, cy + ry + 1))
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    m = ((xx - cx) / max(rx, 0.5)) ** 2 + ((yy - cy) / max(ry, 0.5)) ** 2 <= 1
    region = frame[y0:y1, x0:x1]
    region[m] = (1 - alpha) * region[m] + alpha * np.asarray(colour, np.float32)


def box(frame, x0, y0, x1, y1, colour) -> None:
    x0, x1 = int(max(0, x0)), int(min(W, x1))
    y0, y1 = int(max(0, y0)), int(min(H, y1))
    if x0 < x1 and y0 < y1:
        frame[y0:y1, x0:x1] = colour


def draw_walker(frame, a: Agent, t: int, rng) -> None:
    s = a.size
    if a.state == "down":  # lying on the ground
        disc(frame, a.x, a.y - s * 0.25, (s * 0.9, s * 0.25), a.colour)
        disc(frame, a.x + s * 0.9, a.y - s * 0.3, s * 0.22, (200, 170, 140))
        return
    jit = rng.normal(0, s * 0.15, 2) if a.state == "fight" else (0.0, 0.0)
    x, y = a.x + jit[0], a.y + jit[1]
    step = np.sin(a.phase + t * 0.5 * (3.0 if a.state == "fight" else 1.0)) * s * 0.25
    box(frame, x - s * 0.12 + step, y - s * 0.45, x + s * 0.05 + step, y, a.colour * 0.5)
    box(frame, x - s * 0.05 - step, y - s * 0.45, x + s * 0.12 - step, y, a.colour * 0.5)
    disc(frame, x, y - s * 0.7, (s * 0.22, s * 0.32), a.colour)
    disc(frame, x, y - s * 1.12, s * 0.15, (200, 170, 140))
    if a.state == "fight":  # flailing arms
        for side in (-1, 1):
            ang = rng.uniform(-2.5, 2.5)
            for r in np.linspace(0, s * 0.5, 5):
                disc(frame, x + side * np.cos(ang) * r, y - s * 0.8 + np.sin(ang) * r, 1.2,
                     a.colour * 0.8)  # fmt: skip
    if a.bag:
        box(frame, x + s * 0.15, y - s * 0.55, x + s * 0.4, y - s * 0.3, (70, 50, 30))


def draw_car(frame, a: Agent) -> None:
    length, height = a.size * 2.2, a.size
    x0, y1 = a.x - length / 2, a.y
    box(frame, x0, y1 - height * 0.6, x0 + length, y1, a.colour)
    roof, glass = a.colour * 0.8, (150, 190, 210)
    box(frame, x0 + length * 0.2, y1 - height, x0 + length * 0.8, y1 - height * 0.55, roof)
    x, y = x0 + length * 0.27, y1 - height * 0.92
    box(frame, x, y, x0 + length * 0.73, y1 - height * 0.62, glass)
    for wx in (x0 + length * 0.2, x0 + length * 0.8):
        disc(frame, wx, y1, height * 0.2, (20, 20, 20))
    front = x0 + length if a.vx > 0 else x0
    disc(frame, front, y1 - height * 0.35, 2.0, (255, 250, 200))


def draw_fire(frame, cx, cy, strength, rng) -> None:
    """Flames: a flickering heap of orange-yellow blobs over a rising plume of grey smoke."""
    for _ in range(int(6 + 10 * strength)):
        dy = rng.uniform(0, 18 * strength)
        disc(frame, cx + rng.normal(0, 5 * strength), cy - dy - 8 * strength,
             (rng.uniform(2, 5) * strength + 1, rng.uniform(4, 10) * strength + 1), (140, 140, 140),
             0.35)  # fmt: skip
    for _ in range(int(10 + 20 * strength)):
        hot = rng.uniform()
        colour = (255, 120 + 130 * hot, 40 * hot)
        disc(frame, cx + rng.normal(0, 4 * strength), cy - rng.uniform(0, 10 * strength),
             (rng.uniform(1, 3) * strength + 0.5, rng.uniform(2, 6) * strength + 0.5), colour,
             0.85)  # fmt: skip


@dataclass
class Plan:
    """One video: name, split, camera, length, nuisance levels and the incident (if any)."""

    event: str  # "Normal" or one of INCIDENTS
    number: int
    train: bool
    camera: int
    seed: int
    frames: int
    interval: tuple[int, int] | None  # 0-based [start, end) frames of the incident

    @property
    def name(self) -> str:
        if self.event != "Normal":
            return f"{self.event}{self.number:03d}_x264.mp4"
        return f"Normal_Videos{'' if self.train else '_'}{self.number:03d}_x264.mp4"

    @property
    def rel(self) -> str:
        if self.event != "Normal":
            return f"{self.event}/{self.name}"
        folder = "Training_Normal_Videos_Anomaly" if self.train else "Testing_Normal_Videos_Anomaly"
        return f"{folder}/{self.name}"


def plan_videos(seed: int, train: int, test: int) -> list[Plan]:
    """Half normal, half anomalous in each split; incidents cycle through INCIDENTS."""
    rng = np.random.default_rng(seed)
    plans, numbers = [], {}
    for split, count in ((True, train), (False, test)):
        for i in range(count):
            event = "Normal" if i % 2 == 0 else INCIDENTS[(i // 2) % len(INCIDENTS)]
            numbers[event] = numbers.get(event, 0) + 1
            frames = int(rng.uniform(24, 45) * FPS)
            interval = None
            if event != "Normal":
                length = int(rng.uniform(3, 8) * FPS)
                start = int(rng.uniform(0.15, 0.85) * (frames - length))
                interval = (start, start + length)
            plans.append(Plan(event, numbers[event], split, int(rng.integers(CAMERAS)),
                              int(rng.integers(2**31)), frames, interval))  # fmt: skip
    return plans


class Street:
    """The moving world of one video: traffic, walkers, trees, lamp, light and the incident."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.rng = np.random.default_rng(plan.seed)
        self.scene = camera_scene(plan.camera)
        r = self.rng
        self.car_rate = r.uniform(0.05, 0.6) / FPS  # cars per frame per lane
        self.walker_rate = r.uniform(0.1, 1.2) / FPS
        self.wind = r.uniform(0.5, 4.0)
        self.flicker = r.uniform(0, 1) if self.scene["lamp"] else 0.0
        self.drift = r.uniform(0.05, 0.25)
        self.noise = r.uniform(2, 9)
        self.shake = r.uniform(0, 1.2)
        self.bit_rate = int(r.uniform(120_000, 400_000))
        self.exposure = 1.0
        self.agents: list[Agent] = []
        self.spawns: list[tuple[int, Agent]] = []
        self.bag: tuple[float, float] | None = None
        self.fire: tuple[float, float] | None = None
        for _ in range(int(r.integers(2, 7))):  # people already in view
            self.agents.append(self._walker(float(r.uniform(0, W))))
        if plan.interval:
            self._stage_incident(*plan.interval)

    def _walker(self, x: float | None = None, direction: int | None = None) -> Agent:
        r = self.rng
        d = direction or (1 if r.random() < 0.5 else -1)
        x = (-5.0 if d > 0 else W + 5.0) if x is None else x
        return Agent("walker", x, float(r.uniform(*WALK)), d * r.uniform(0.5, 1.4),
                     r.uniform(30, 230, 3).astype(np.float32), float(r.uniform(14, 22)),
                     float(r.uniform(0, 6.3)), bag=r.random() < 0.15)  # fmt: skip

    def _arriving(self, at: int, x: float) -> Agent:
        """A walker scheduled to reach ``x`` at frame ``at`` (spawned off-screen before)."""
        a = self._walker()
        a.x = -5.0 if a.vx > 0 else W + 5.0
        self.spawns.append((max(0, at - int(abs(x - a.x) / abs(a.vx))), a))
        return a

    def _stage_incident(self, start: int, end: int) -> None:
        r, event = self.rng, self.plan.event
        x = float(r.uniform(40, W - 40))
        self.incident = {"start": start, "end": end, "x": x, "agents": []}
        if event == "Fighting":
            first, second = self._arriving(start, x - 4), self._arriving(start, x + 4)
            second.vx = -np.sign(first.vx) * abs(second.vx)
            second.x = -5.0 if second.vx > 0 else W + 5.0
            self.spawns[-1] = (max(0, start - int(abs(x - second.x) / abs(second.vx))), second)
            second.y = first.y
            self.incident["agents"] = [first, second]
        elif event in ("Abandonment", "Collapse"):
            walker = self._arriving(start, x)
            walker.bag = event == "Abandonment"
            self.incident["agents"] = [walker]
            if event == "Abandonment":
                self.incident["picker"] = self._arriving(end, x)
        else:
            self.fire = (x, float(r.uniform(WALK[0] + 5, WALK[1])))

    def step(self, t: int) -> None:
        r = self.rng
        for _, a in [s for s in self.spawns if s[0] == t]:
            self.agents.append(a)
        for lane, d in ((ROAD[0] + 12, 1), (ROAD[1] - 3, -1)):
            if r.random() < self.car_rate:
                colour = r.uniform(20, 240, 3).astype(np.float32)
                self.agents.append(Agent("car", -30.0 if d > 0 else W + 30.0, float(lane),
                                         d * r.uniform(1.5, 4.5), colour,
                                         float(r.uniform(9, 13)), 0.0))  # fmt: skip
        if r.random() < self.walker_rate:
            self.agents.append(self._walker())
        self._incident_step(t)
        for a in self.agents:
            if a.state in ("walk", "carry"):
                a.x += a.vx
        self.agents = [a for a in self.agents if -40 < a.x < W + 40 and a.state != "gone"]
        self.exposure += (1.0 - self.exposure) * 0.05
        if r.random() < 0.004:  # auto-exposure step
            self.exposure *= r.uniform(0.8, 1.25)

    def _incident_step(self, t: int) -> None:
        if not self.plan.interval:
            return
        inc, event = self.incident, self.plan.event
        start, end, x = inc["start"], inc["end"], inc["x"]
        agents = inc["agents"]
        if event == "Fighting":
            first, second = agents
            brawl = start + int(0.7 * (end - start))
            if t == start:
                first.x, second.x = x - 4, x + 4
                first.state = second.state = "fight"
            elif t == brawl:
                first.state, second.state = "down", "walk"
                second.vx = 3.0 * np.sign(second.vx or 1)
            elif t == end:
                first.state = "walk"
        elif event == "Collapse":
            if t == start:
                agents[0].x, agents[0].state = x, "down"
            elif t == end:
                agents[0].state = "walk"
        elif event == "Abandonment":
            if t == start:
                agents[0].bag = False
                self.bag = (x + agents[0].size * 0.3, agents[0].y)
            elif t == end:
                self.bag = None
                inc["picker"].bag = True

    def render(self, t: int) -> np.ndarray:
        r = self.rng
        frame = self.scene["bg"].copy()
        sec = t / FPS
        for tx, ty, size in self.scene["trees"]:
            box(frame, tx - 1.5, ty, tx + 1.5, WALK[0], (70, 50, 30))
            sway = self.wind * (np.sin(sec * 1.7 + tx) + 0.6 * np.sin(sec * 4.3 + ty))
            for k in range(6):
                ox, oy = np.cos(k * 1.1) * size * 0.6, np.sin(k * 1.7) * size * 0.4
                disc(frame, tx + ox + sway * (1 + 0.3 * k / 6), ty + oy - size * 0.3, size * 0.55,
                     (40 + 8 * k, 110 + 10 * k, 40), 0.9)  # fmt: skip
        if self.scene["lamp"]:
            on = 1.0 if r.random() > self.flicker * 0.5 else r.uniform(0.1, 0.6)
            lx, ly = self.scene["lamp"]
            disc(frame, lx, ly, 9, (255, 240, 180), 0.35 * on)
            disc(frame, lx, ly, 3, (255, 250, 220), on)
        if self.bag:
            box(frame, self.bag[0] - 3, self.bag[1] - 6, self.bag[0] + 3, self.bag[1], (70, 50, 30))
        for a in sorted(self.agents, key=lambda a: a.y):
            (draw_car if a.kind == "car" else lambda f, a: draw_walker(f, a, t, r))(frame, a)
        if self.fire and self.plan.interval:
            start, end = self.plan.interval
            if start <= t < end:
                strength = min(1.0, (t - start) / (1.5 * FPS), (end - t) / FPS + 0.3)
                draw_fire(frame, *self.fire, strength, r)
        light = (1 + self.drift * np.sin(sec / 9.0 + self.plan.seed % 7)) * self.exposure
        frame = frame * light * np.array([1.0, 1.0, 1 - 0.1 * np.sin(sec / 13.0)], np.float32)
        frame += r.normal(0, self.noise, (H, W, 1)).astype(np.float32)
        if self.shake:
            frame = np.roll(frame, (int(round(r.normal(0, self.shake))),
                                    int(round(r.normal(0, self.shake)))), (0, 1))  # fmt: skip
        return np.clip(frame, 0, 255).astype(np.uint8)


def write_video(plan: Plan, path: Path) -> int:
    """Render and encode one video (H.264 at the video's low bit rate); atomic."""
    street = Street(plan)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.bit_rate = street.bit_rate
        stream.options = {"preset": "veryfast", "g": "50"}
        for t in range(plan.frames):
            street.step(t)
            frame = av.VideoFrame.from_ndarray(street.render(t), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    tmp.replace(path)
    return plan.frames


def _render(job: tuple[Plan, Path]) -> str:
    plan, path = job
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(plan, path)
    return plan.rel


def make_set(out: Path, seed: int, train: int, test: int, workers: int) -> dict:
    plans = plan_videos(seed, train, test)
    with Pool(workers) as pool:
        for i, rel in enumerate(pool.imap_unordered(_render, [(p, out / p.rel) for p in plans])):
            print(f"\r{i + 1}/{len(plans)} {rel}", end="", flush=True)
    print()
    (out / "Anomaly_Train.txt").write_text("".join(p.rel + "\n" for p in plans if p.train))
    tests = [p for p in plans if not p.train]
    (out / "Anomaly_Test.txt").write_text("".join(p.rel + "\n" for p in tests))
    lines = []
    for p in tests:
        bounds = [p.interval[0] + 1, p.interval[1], -1, -1] if p.interval else [-1] * 4
        lines.append("  ".join([p.name, p.event, *map(str, bounds)]) + "\n")
    (out / "Temporal_Anomaly_Annotation.txt").write_text("".join(lines))
    summary = {"root": str(out), "seed": seed, "videos": len(plans), "train": train, "test": test,
               "frames": sum(p.frames for p in plans)}  # fmt: skip
    (out / "set.json").write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0, help="0: development set; 1: confirmation")
    ap.add_argument("--train", type=int, default=24)
    ap.add_argument("--test", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(json.dumps(make_set(args.out.resolve(), args.seed, args.train, args.test, args.workers)))


if __name__ == "__main__":
    main()

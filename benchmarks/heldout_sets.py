"""Three small held-out video sets sharing nothing with tc3d's own generators.

Drawn from scratch with numpy + Pillow, encoded with PyAV (320x240, 25 fps, H.264 MP4); nothing
comes from tc3d or ``tc3d.synthetic``. The pretraining stream moves filled shapes, textures and
photo crops along linear, accelerating, ballistic, circular, oscillating and random-walk paths
(scaling, rotating, squashing, appearing, splitting, recolouring) under a moving camera, so a
score here measures transfer, not recall of that generator. Here instead: a static camera over
line-drawn backdrops (sky-and-ground with a horizon, brick mortar, hatching, graph paper, a
perspective-tiled plaza) with vignetting and sensor noise; articulated stick figures drawn in
outline styles (solid, dashed, point-light crosses, thin with a letter for a head); motions of
the limbs (wave, jumping jacks, walk, clap, kick, squat, punch, march, fight, fall, run) or of the
whole body along a figure-eight, a pendulum rope and a sharp-cornered zigzag. An action is its
motion: each is drawn in every style, and each style serves every action.

pairs (ASLAN-style): 10 actions x 12 videos; ``pairs.txt`` lines ``a b same fold``, 10 folds of
30 same + 30 different pairs. Folds are video-disjoint: fold f holds 6 videos of each of 2
actions (every action is in 2 folds, with a different partner), so its same pairs are all its
within-action pairs and its different pairs 30 of its 36 cross pairs. Video j of one action and
video j of the other share an actor (style, colour, proportions, backdrop), and kept different
pairs favour a shared style: appearance cannot answer.

surveillance (UCF-Crime layout, as tc3d.datasets.formats reads it): three fixed CCTV sites where
stick pedestrians cross, pause and stop to talk; an anomalous video holds one 30-70-frame event,
Fighting, Falling or Running. As in UCF-Crime, ``Temporal_Anomaly_Annotation.txt`` covers the
test videos only (1-based inclusive frame intervals).

longterm (UCF101 layout): 6 classes, the ordered pairs (start, end) of 3 motions (Wave, Jacks,
Squat), with the same March filler in every middle third. A clip from one third fits 2 classes
(the middle: all 6); start and end together give the class, with 3 order-only pairs such as
WaveThenJacks vs JacksThenWave. 8 groups x 5 clips per class, g01-g06 train (30), g07-g08 test
(10); a group's clips share an actor, as in UCF101.

Usage: python benchmarks/heldout_sets.py OUT [--seed 0] [--only pairs|surveillance|longterm]
    [--workers N]   (default: one process per core)
"""

from __future__ import annotations

import argparse
import colorsys
import math
import os
import time
from collections.abc import Iterator
from itertools import combinations, pairwise
from multiprocessing import Pool
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

W, H, FPS, SS = 320, 240, 25, 2  # output size, frame rate, supersampling factor
TAU = 2 * math.pi
STYLES = ("stick", "dashed", "markers", "glyph")
BACKDROPS = ("sky", "bricks", "hatch", "grid")
# outlined letters for heads: strokes of "xy" points on a 0-8 grid, y down
GLYPHS = dict(A="08 40 88|24 64", E="80 00 08 88|04 64", K="00 08|80 04 88", M="08 00 45 80 88",
              X="00 88|80 08", Z="00 80 08 88")  # fmt: skip
# action: (cycles per second, whole-body path); limbs(action) moves the limbs. March is
# longterm's filler, not a pairs action.
ACTIONS = dict(Wave=(1.4, None), JumpingJacks=(0.9, None), Walk=(0.7, "walk"), Clap=(1.8, None),
               Kick=(0.8, None), Squat=(0.7, None), Punch=(1.1, None), FigureEight=(0.3, "eight"),
               Swing=(0.45, "swing"), Zigzag=(0.6, "zigzag"), March=(1.0, None))  # fmt: skip
PAIR_ACTIONS = list(ACTIONS)[:10]
PHASES, FILLER = {"Wave": "Wave", "JumpingJacks": "Jacks", "Squat": "Squat"}, "March"
KINDS = ("Fighting", "Falling", "Running")
IDLE = ((-0.1, -0.28), (0.1, -0.28), (-0.06, -0.43), (0.06, -0.43))
STAND = ((0.03, -0.3), (-0.03, -0.3), (0.03, -0.43), (-0.03, -0.43))
# mbtree off: x264's AVX-512 macroblock-tree code gives different bytes from run to run
X264_OPTS = {"crf": "23", "preset": "fast", "x264-params": "mbtree=0"}
HZ, FOC, ZFAR = 60.0, 175.0, 3.4  # CCTV camera: horizon row, focal scale, back wall depth
Plan = tuple[list[dict], dict[str, list[str]], str]  # jobs, list files, summary


# ---------------------------------------------------------------- the rig


def _tg(hl, hr, fl, fr, lean=0.0, nod=0.0, lift=0.0, front=1, bends=None) -> np.ndarray:
    """Limb targets as one flat vector, so two poses blend linearly. Hands are measured from
    the shoulder centre and feet from the hip, in body units with y up. front=1 faces us and
    front=0 is a profile; bends are the elbow/knee bend signs (L arm, R arm, L leg, R leg)."""
    bends = bends or ((-1, 1, -1, 1) if front else (-1, -1, 1, 1))
    return np.array([*hl, *hr, *fl, *fr, lean, nod, lift, front, *bends], float)


def limbs(motion: str, u: float) -> np.ndarray:
    """Targets of one limb motion at ``u`` cycles (path actions idle: the body moves)."""
    s, c = math.sin(TAU * u), math.cos(TAU * u)
    o, p = 0.5 - 0.5 * c, max(s, 0.0)
    if motion == "Wave":
        return _tg(IDLE[0], (0.2 + 0.11 * s, 0.2), *IDLE[2:], bends=(-1, -1, -1, 1))
    if motion == "JumpingJacks":
        a, fx = 0.3 + 2.3 * o, 0.05 + 0.15 * o
        hx, hy = 0.07 + 0.28 * math.sin(a), -0.28 * math.cos(a)
        return _tg((-hx, hy), (hx, hy), (-fx, -0.43), (fx, -0.43), lift=0.06 * abs(s))
    if motion in ("Walk", "March", "Run"):
        amp, up, sw, lean = {"Walk": (0.15, 0.07, 0.14, 0.04), "March": (0, 0.17, 0.1, 0),
                             "Run": (0.22, 0.18, 0.16, 0.3)}[motion]  # fmt: skip
        hy = -0.16 if motion == "Run" else -0.28
        fl, fr = (amp * s, -0.41 + up * max(c, 0)), (-amp * s, -0.41 + up * max(-c, 0))
        return _tg((-sw * s, hy), (sw * s, hy), fl, fr, lean=lean, front=0)
    if motion == "Clap":
        x = 0.02 + 0.22 * (0.5 + 0.5 * c)
        return _tg((-x, -0.06), (x, -0.06), *IDLE[2:])
    if motion == "Kick":
        k = p**2
        fr = (0.03 + 0.36 * k, -0.43 + 0.26 * k)
        return _tg((-0.14, -0.2), (0.1, -0.22), (-0.04, -0.43), fr, lean=-0.12 * k, front=0)
    if motion == "Squat":
        hx, hy, fy = 0.1 + 0.18 * o, -0.28 + 0.26 * o, -0.43 + 0.2 * o
        return _tg((-hx, hy), (hx, hy), (-0.11, fy), (0.11, fy))
    if motion == "Punch":
        a, b = p**2, max(-s, 0.0) ** 2
        hl, hr = (0.06 + 0.26 * a, -0.06 + 0.04 * a), (0.04 + 0.26 * b, -0.08 + 0.04 * b)
        return _tg(hl, hr, (0.1, -0.42), (-0.1, -0.42), lean=0.08, front=0)
    if motion == "Talk":
        return _tg(STAND[0], (0.14 + 0.05 * s, -0.14 + 0.04 * c), *STAND[2:], nod=0.15 * p, front=0)
    if motion == "Swing":  # both hands on the rope
        return _tg((-0.05, 0.3), (0.05, 0.3), (0.12, -0.38), (0.08, -0.4), front=0)
    return _tg(*STAND, front=0) if motion == "Stand" else _tg(*IDLE)


def _ik(a: np.ndarray, t: np.ndarray, l1: float, l2: float, bend: float):
    """Two-link limb from ``a`` towards ``t``: (middle joint, end)."""
    d = t - a
    r = float(np.clip(np.hypot(*d), 1e-6, 0.999 * (l1 + l2)))
    ang = math.atan2(d[1], d[0])
    b = bend * math.acos(np.clip((l1 * l1 + r * r - l2 * l2) / (2 * l1 * r), -1, 1))
    mid = a + l1 * np.array([math.cos(ang + b), math.sin(ang + b)])
    return mid, a + r * np.array([math.cos(ang), math.sin(ang)])


def skeleton(tg: np.ndarray, props) -> tuple[list[list[np.ndarray]], np.ndarray, float, list]:
    """Polylines of the rig with the lower foot on y=0 (+lift), head centre and radius, hands."""
    torso, arm, leg, head = props
    lean, nod, lift, front = tg[8:12]
    up = np.array([math.sin(lean), math.cos(lean)])
    side, rot = np.array([up[1], -up[0]]), np.array([[up[1], up[0]], [-up[0], up[1]]])
    neck = up * 0.42 * torso
    sh = neck - up * 0.05
    shs = [sh - side * 0.07 * front, sh + side * 0.07 * front]
    hips = [np.array([-0.05 * front, 0.0]), np.array([0.05 * front, 0.0])]
    chains, hands, feet = [[np.zeros(2), neck], shs, hips], [], []
    for i in range(2):
        hand, foot = sh + rot @ (tg[2 * i : 2 * i + 2] * arm), tg[4 + 2 * i : 6 + 2 * i] * leg
        elbow, hand = _ik(shs[i], hand, 0.16 * arm, 0.16 * arm, tg[12 + i])
        knee, foot = _ik(hips[i], foot, 0.22 * leg, 0.22 * leg, tg[14 + i])
        chains += [[shs[i], elbow, hand], [hips[i], knee, foot]]
        hands.append(hand)
        feet.append(foot)
    hc = neck + np.array([math.sin(lean + nod), math.cos(lean + nod)]) * head * 1.05
    shift = np.array([0.0, lift - min(feet[0][1], feet[1][1])])
    return [[p + shift for p in ch] for ch in chains], hc + shift, head, [h + shift for h in hands]


def render(d: ImageDraw.ImageDraw, look: dict, lines: list, hc: np.ndarray, hr: float, k: float):
    """Draw a posed rig (screen polylines) in the look's style: strokes and outlines only."""
    col, st = look["color"], look["style"]
    w = max(3, round(look["lw"] * k))
    thin = max(2, w // 2)
    for ch in lines:
        if st in ("stick", "glyph"):
            d.line(
                [tuple(p) for p in ch], fill=col, width=thin if st == "glyph" else w, joint="curve"
            )
            continue
        for p, q in pairwise(ch):
            v, n = q - p, np.hypot(*(q - p)) + 1e-9
            if st == "dashed":
                for a in np.arange(0, 1, 2.6 * w / n):
                    d.line(
                        [tuple(p + a * v), tuple(p + min(1, a + 1.5 * w / n) * v)],
                        fill=col,
                        width=w,
                    )
            else:  # point-light crosses at the joints and limb midpoints
                for m, r in ((p, 0.6 * w), ((p + q) / 2, 0.4 * w), (q, 0.6 * w)):
                    d.line([tuple(m - r), tuple(m + r)], fill=col, width=thin)
                    d.line([(m[0] + r, m[1] - r), (m[0] - r, m[1] + r)], fill=col, width=thin)
    box = [hc[0] - hr, hc[1] - hr, hc[0] + hr, hc[1] + hr]
    if st == "glyph":
        for stroke in GLYPHS[look["glyph"]].split("|"):
            pts = [(box[0] + hr * int(x) / 4, box[1] + hr * int(y) / 4) for x, y in stroke.split()]
            d.line(pts, fill=col, width=thin)
    elif st == "dashed":
        for a in range(0, 360, 45):
            d.arc(box, a, a + 28, fill=col, width=w)
    elif st == "markers":  # an outlined diamond
        (x, y), r = hc, hr
        d.line([(x, y - r), (x + r, y), (x, y + r), (x - r, y), (x, y - r)], fill=col, width=thin)
    else:
        d.ellipse(box, outline=col, width=w)


def draw_figure(d, look, tg, anchor, k, mirror, rot=0.0, rope=None) -> None:
    """Pose the rig at ``anchor`` (the ground point under the hip; the hands when on a rope),
    ``k`` screen px per body unit, mirrored, then turned clockwise by ``rot``."""
    chains, hc, hr, hands = skeleton(tg, look["props"])
    o, c, s = (hands[0] + hands[1]) / 2 if rope is not None else 0, math.cos(rot), math.sin(rot)
    M, a = k * np.array([[c * mirror, s], [s * mirror, -c]]), np.asarray(anchor, float)
    lines = [[a + M @ (p - o) for p in ch] for ch in chains]
    lines += [[a + M @ (h - o), np.asarray(rope, float)] for h in hands] if rope is not None else []
    render(d, look, lines, a + M @ (hc - o), hr * k, k)


# ---------------------------------------------------------------- looks


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1, s, min(v, 1.0))) * 255


def rgb(a: np.ndarray) -> tuple[int, ...]:
    return tuple(int(x) for x in a)


def make_look(rng: np.random.Generator, style: str | None = None, styles=STYLES) -> dict:
    """An actor: style, colour, proportions (torso, arm, leg, head), line width, glyph, backdrop."""
    dark = bool(rng.random() < 0.5)  # a light figure on a dark backdrop, or the reverse
    sat = rng.uniform(0.2, 0.5) if dark else rng.uniform(0.3, 0.9)  # a light blue is still light
    color = rgb(hsv(rng.random(), sat, 1 if dark else 0.2))
    return dict(style=style or str(rng.choice(styles)), color=color,
                props=[*rng.uniform(0.88, 1.12, 3), rng.uniform(0.065, 0.09)],
                lw=rng.uniform(0.03, 0.05), glyph=str(rng.choice(list(GLYPHS))),
                bg=str(rng.choice(BACKDROPS)), dark=dark, bg_seed=rng.integers(2**31))  # fmt: skip


def backdrop(kind: str, dark: bool, seed: int) -> Image.Image:
    """Static backdrop at SS x size: sky-and-ground with a horizon, bricks, hatching or grid."""
    rng, w, h = np.random.default_rng(seed), W * SS, H * SS
    hue, (v0, v1), hz = rng.random(), (0.3, 0.2) if dark else (0.88, 0.72), rng.uniform(0.55, 0.8)
    top, bot = hsv(hue, 0.25, v0), hsv(hue + rng.uniform(-0.15, 0.15), 0.35, v1)
    y = np.linspace(0, 1, h)[:, None, None]
    arr = top + (bot - top) * (y / hz if kind == "sky" else y)
    if kind == "sky":
        ground = hsv(rng.uniform(0.05, 0.35), 0.4, v1 * 0.85) * (0.8 + 0.4 * (y - hz) / (1 - hz))
        arr = np.where(y < hz, arr, ground)
    img = Image.fromarray(np.broadcast_to(arr, (h, w, 3)).clip(0, 255).astype(np.uint8))
    d, ink = ImageDraw.Draw(img), rgb(hsv(hue, 0.2, v0 + (0.12 if dark else -0.15)))
    sp = int(rng.integers(8, 18)) * SS
    if kind == "sky":
        d.line([(0, hz * h), (w, hz * h)], fill=ink, width=2 * SS)
    elif kind == "bricks":
        for row, y0 in enumerate(range(0, h, sp * 2)):
            d.line([(0, y0), (w, y0)], fill=ink, width=SS)
            for x0 in range(-(row % 2) * sp * 2, w, sp * 4):
                d.line([(x0, y0), (x0, y0 + sp * 2)], fill=ink, width=SS)
    elif kind == "hatch":
        cross = rng.random() < 0.5
        for o in range(-h, w, sp):
            d.line([(o, 0), (o + h, h)], fill=ink, width=SS)
            if cross:
                d.line([(o + h, 0), (o, h)], fill=ink, width=SS)
    else:  # graph paper, a heavier line every fifth
        for i, x in enumerate(range(0, w, sp)):
            d.line([(x, 0), (x, h)], fill=ink, width=SS * (1 + (i % 5 == 0)))
            d.line([(0, x), (w, x)], fill=ink, width=SS * (1 + (i % 5 == 0)))
    return img


def proj(X: float, Z: float) -> tuple[float, float]:
    """Ground point (X across, Z depth) to the CCTV camera's SS-scale screen."""
    return SS * (W / 2 + 200 * X / Z), SS * (HZ + FOC / Z)


def plaza(seed: int) -> Image.Image:
    """A CCTV site: a brick wall with a doorway over a perspective-tiled floor, lamp posts."""
    rng, w, h = np.random.default_rng(seed), W * SS, H * SS
    wall, floor = hsv(rng.random(), 0.2, rng.uniform(0.4, 0.6)), hsv(rng.random(), 0.15, 0.55)
    yf, y = proj(0, ZFAR)[1], np.arange(h)[:, None, None]
    arr = np.where(y < yf, wall, floor * (0.75 + 0.4 * (y - yf) / (h - yf)))
    img = Image.fromarray(np.broadcast_to(arr, (h, w, 3)).clip(0, 255).astype(np.uint8))
    d, ink = ImageDraw.Draw(img), rgb(wall * 0.6)
    for row, y0 in enumerate(np.arange(0, yf, 9 * SS)):
        d.line([(0, y0), (w, y0)], fill=ink, width=1)
        for x0 in range(-(row % 2) * 12 * SS, w, 24 * SS):
            d.line([(x0, y0), (x0, min(y0 + 9 * SS, yf))], fill=ink, width=1)
    x0 = rng.uniform(0.1, 0.8) * w
    d.rectangle([x0, yf * 0.3, x0 + 30 * SS, yf + SS], outline=ink, width=2 * SS)
    ink, step = rgb(floor * 0.7), rng.choice([0.25, 0.35])
    for X in np.arange(-5, 5.01, step):
        d.line([proj(X, ZFAR), proj(X, 0.6)], fill=ink, width=SS)
    for Z in np.arange(0.6, ZFAR, step):
        d.line([proj(-9, Z), proj(9, Z)], fill=ink, width=SS)
    for X, Z in zip(rng.choice([-0.7, 0.7], 2), rng.uniform(1.4, 3, 2), strict=True):
        (x, y0), k = proj(X * Z, Z), SS * 75 / Z
        d.line([(x, y0), (x, y0 - 2 * k), (x + 0.2 * k, y0 - 2 * k)], fill=(40,) * 3, width=SS * 2)
    return img


# ---------------------------------------------------------------- rendering (pool workers)


def figure_frames(spec: dict) -> Iterator[Image.Image]:
    """pairs / longterm: one actor performing its program of (action, first, end) frames."""
    look, prog, ph, m = spec["look"], spec["program"], spec["phase"], spec["mirror"]
    k = SS * spec["scale"]
    bg, anchor = backdrop(look["bg"], look["dark"], look["bg_seed"]), np.array(spec["xy"]) * SS

    def targets(name: str, t: float) -> np.ndarray:
        return limbs(name, t * ACTIONS[name][0] + ph)

    for f in range(spec["frames"]):
        t = f / FPS * spec["speed"]
        name = next(a for a, f0, f1 in prog if f0 <= f < f1)
        tg = targets(name, t)
        for (a, _, b), (nxt, _, _) in pairwise(prog):  # cross-fade 8 frames at phase borders
            if abs(f + 0.5 - b) < 4:
                wt = (f + 0.5 - b + 4) / 8
                tg = (1 - wt) * targets(a, t) + wt * targets(nxt, t)
        hz, path = ACTIONS[name]
        u, U, v = t * hz, spec["frames"] / FPS * spec["speed"] * hz, (t * hz + ph) % 1
        dx, dy = {"walk": (0.6 * look["props"][2] * (u - U / 2), 0),  # the feet's stride
                  "eight": (0.55 * math.sin(TAU * v), 0.22 * math.sin(2 * TAU * v)),
                  "zigzag": (0.45 * (u - U / 2), 0.3 * (2 * abs(2 * v - 1) - 1)),
                  }.get(path, (0, 0))  # fmt: skip
        at, rope, rot = anchor + k * np.array([m * dx, -dy]), None, 0.0
        if path == "swing":  # a pendulum: the hands hang on a rope from a pivot above them
            th, rope = 0.55 * m * math.sin(TAU * v), anchor - [0, 1.95 * k]
            at, rot = rope + 0.7 * k * np.array([math.sin(th), math.cos(th)]), -th
        img = bg.copy()
        draw_figure(ImageDraw.Draw(img), look, tg, at, k, m, rot, rope)
        yield img


def street_frames(spec: dict) -> Iterator[Image.Image]:
    """surveillance: stick pedestrians on the site's ground plane, far ones drawn first."""
    bg = plaza(spec["site"])
    for f in range(spec["frames"]):
        now, t = [], f / FPS
        for ag in spec["agents"]:
            for f0, f1, kind, p, q, face in ag["segs"]:
                if f0 <= f < f1:
                    a, v = (f - f0) / (f1 - f0), math.dist(p, q) / (f1 - f0) * FPS
                    X, Z = p[0] + a * (q[0] - p[0]), p[1] + a * (q[1] - p[1])
                    now.append((Z, X, kind, f - f0, f1 - f, v, face, ag))
        img = bg.copy()
        d = ImageDraw.Draw(img)
        for Z, X, kind, since, left, v, face, ag in sorted(now, key=lambda n: -n[0]):
            ph, rot, tg = ag["phase"], 0.0, limbs("Stand", 0)
            if kind in ("walk", "run"):  # a leg cycle per stride of 0.6 / 0.88 body units
                stride = (0.6 if kind == "walk" else 0.88) * 0.375 * ag["size"]  # ground units
                tg = limbs(kind.title(), t * v / stride + ph)
            elif kind == "fight":  # punches with fast, irregular jitter of hands, body and place
                tg = limbs("Punch", t * 3.2 + ph)
                tg[:4] += 0.06 * np.sin(np.array([29.0, 31, 37, 41]) * t + ph * 5)
                tg[8] += 0.1 * math.sin(19 * t + ph)
                X += 0.02 * math.sin(23 * t + 7 * ph)
            elif kind == "talk":
                tg = limbs("Talk", t * 0.8 + ph)
            elif kind == "fall":  # topples forward in 8 frames, lies still, gets up in 12
                r = min(1.0, since / 8, left / 12)
                rot = face * math.pi / 2 * (3 * r * r - 2 * r**3)
            draw_figure(d, ag["look"], tg, proj(X, Z), SS * 75 / Z * ag["size"], face, rot)
        yield img


def encode(path: Path, frames: Iterator[np.ndarray]) -> int:
    """H.264 MP4 (mpeg4 if libx264 is missing), written to a hidden temp file, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, x264, n = path.with_name(f".{path.name}.tmp"), "libx264" in av.codecs_available, 0
    try:
        with av.open(str(tmp), "w", format="mp4") as box:
            opts = X264_OPTS if x264 else {"b": "1M"}
            st = box.add_stream("libx264" if x264 else "mpeg4", rate=FPS, options=opts)
            st.width, st.height, st.pix_fmt = W, H, "yuv420p"
            st.codec_context.thread_count = 1  # the pool's 2 processes are the parallelism
            for arr in frames:
                frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")
                box.mux(st.encode(frame))
                n += 1
            box.mux(st.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def render_job(spec: dict) -> int:
    """Pool worker: render, post-process (vignette, CCTV desaturation, sensor noise), encode."""
    rng = np.random.default_rng(spec["seed"])
    yy, xx = np.mgrid[-1 : 1 : H * 1j, -1 : 1 : W * 1j]
    vig = (1 - spec["vignette"] * (xx**2 + yy**2) / 2).astype(np.float32)[..., None]
    frames = figure_frames(spec) if "look" in spec else street_frames(spec)

    def post(img: Image.Image) -> np.ndarray:
        a = np.asarray(img.reduce(SS), np.float32)
        a += spec.get("desat", 0.0) * (a.mean(2, keepdims=True) - a)
        a = a * vig + rng.standard_normal(a.shape, np.float32) * spec["noise"]
        return np.clip(a + 0.5, 0, 255).astype(np.uint8)

    return encode(Path(spec["path"]), (post(img) for img in frames))


# ---------------------------------------------------------------- plans (main process)


def figure_job(path: Path, rng: np.random.Generator, look: dict, program: list, x=None) -> dict:
    """Per video: size, place, speed (+-30%), phase, mirror, sensor noise, vignetting."""
    return dict(path=path, seed=rng.integers(2**31), look=look, program=program,
                frames=program[-1][2], speed=rng.uniform(0.7, 1.3), phase=rng.random(),
                mirror=rng.choice([-1, 1]), scale=rng.uniform(75, 110),
                xy=(x or rng.uniform(120, 200), rng.uniform(200, 228)),
                noise=rng.uniform(2, 6), vignette=rng.uniform(0.15, 0.45))  # fmt: skip


def plan_pairs(root: Path, seed: int) -> Plan:
    """Fold f takes half the videos of actions perm[f] and perm[f+3]; see the module docstring."""
    rng = np.random.default_rng([seed, 1])
    perm = rng.permutation(10)
    fold_of = {(perm[f], 0): f for f in range(10)} | {(perm[(f + 3) % 10], 1): f for f in range(10)}
    actors = {
        (f, j): make_look(rng, STYLES[(f + j % 3) % len(STYLES)])
        for f in range(10)
        for j in range(6)
    }
    jobs, members = [], {f: ([], []) for f in range(10)}
    for ai, name in enumerate(PAIR_ACTIONS):
        snake = "".join("_" + c.lower() if c.isupper() else c for c in name)[1:]
        for nn in range(12):
            (half, j), n = divmod(nn, 6), rng.integers(60, 91)
            f, rel = fold_of[(ai, half)], f"{name}/{snake}_{nn + 1:02d}.mp4"
            x = 160 if name in ("Walk", "Zigzag") else None  # they travel: centre the path
            jobs.append(figure_job(root / rel, rng, actors[(f, j)], [(name, 0, n)], x))
            members[f][half].append((j, rel))
    lines = []
    for f, (va, vb) in members.items():
        same = [(x, y, 1) for v in (va, vb) for x, y in combinations(v, 2)]
        diff = [(x, y, 0) for x in va for y in vb]
        rng.shuffle(diff)
        diff.sort(key=lambda p: p[0][0] % 3 != p[1][0] % 3)  # a shared style first (12 of 36)
        pairs = same + diff[:30]
        for i in rng.permutation(60):
            x, y, s = pairs[i]
            x, y = (y, x) if rng.random() < 0.5 else (x, y)
            lines.append(f"{x[1]} {y[1]} {s} {f + 1}")
    assert len({frozenset(line.split()[:2]) for line in lines}) == len(lines) == 600
    return jobs, {"pairs.txt": lines}, f"{len(PAIR_ACTIONS)} actions, 600 pairs in 10 folds"


def plan_longterm(root: Path, seed: int) -> Plan:
    """6 classes = ordered (start, end) pairs of 3 motions; groups g01-g06 train, g07-g08 test."""
    rng = np.random.default_rng([seed, 3])
    classes = [(a, b) for a in PHASES for b in PHASES if a != b]
    names = [f"{PHASES[a]}Then{PHASES[b]}" for a, b in classes]
    jobs, train, test = [], [], []
    for ci, ((a, b), cls) in enumerate(zip(classes, names, strict=True)):
        for g in range(1, 9):
            look = make_look(rng)  # a group shares its actor, as UCF101's groups do
            for c in range(1, 6):
                n = rng.integers(96, 129)
                l1, l3 = (round(n * rng.uniform(0.29, 0.37)) for _ in range(2))
                rel = f"{cls}/v_{cls}_g{g:02d}_c{c:02d}.mp4"
                prog = [(a, 0, l1), (FILLER, l1, n - l3), (b, n - l3, n)]
                jobs.append(figure_job(root / rel, rng, look, prog))
                (train if g <= 6 else test).append(f"{rel} {ci + 1}" if g <= 6 else rel)
    lists = {"splits/classInd.txt": [f"{i + 1} {c}" for i, c in enumerate(names)],
             "splits/trainlist01.txt": train, "splits/testlist01.txt": test}  # fmt: skip
    return jobs, lists, f"classes {', '.join(names)}; {len(train)} train / {len(test)} test"


def _edge(Z: float, side: int) -> tuple[float, float]:
    """Just off screen at depth Z, on the left (-1) or right (+1)."""
    return side * (0.85 * Z + 0.2), Z


def _route(f: float, pts: list, v: float, stop: tuple | None = None) -> list:
    """Walking segments (first, end frame, kind, from, to, facing) through pts at v ground
    units/s from frame f; ``stop`` = (i, kind, frames) stands still at pts[i] on the way."""
    segs, face = [], 1
    for i, (p, q) in enumerate(pairwise(pts)):
        if stop and stop[0] == i:
            segs.append((f, f + stop[2], stop[1], p, p, face))
            f += stop[2]
        face, n = 1 if q[0] >= p[0] else -1, math.dist(p, q) / v * FPS
        segs.append((f, f + n, "walk", p, q, face))
        f += n
    return segs


def _agent(rng: np.random.Generator, segs: list) -> dict:
    look = make_look(rng, styles=("stick", "dashed", "glyph"))  # thin crosses vanish when small
    look["color"] = rgb(hsv(rng.random(), rng.uniform(0.1, 0.4), 1 if look["dark"] else 0.15))
    return dict(look=look, size=rng.uniform(0.9, 1.1), phase=rng.random(), segs=segs)


def walkers(n: int, T: int, rng: np.random.Generator) -> list[dict]:
    """n ordinary pedestrians: crossings (some pause on the way), and pairs that meet and talk."""
    out: list[dict] = []
    while len(out) < n:
        v, (Z1, Z2), side = rng.uniform(0.2, 0.3), rng.uniform(1.1, 3.1, 2), rng.choice([-1, 1])
        if n - len(out) >= 2 and rng.random() < 0.35:
            Z, tm, dur = (Z1 + Z2) / 2, rng.uniform(0, T - 60), rng.integers(40, 100)
            M = rng.uniform(-0.4, 0.4) * Z
            for sd in (-1, 1):
                P, A, B = (M + sd * 0.1, Z), _edge(Z, sd), _edge(rng.uniform(1.1, 3.1), side)
                segs = _route(tm - math.dist(A, P) / v * FPS, [A, P], v)
                segs += [(tm, tm + dur, "talk", P, P, -sd)] + _route(tm + dur, [P, B], v)
                out.append(_agent(rng, segs))
            continue
        pts, stop = [_edge(Z1, side), _edge(Z2, -side)], None
        if rng.random() < 0.4:
            pts.insert(1, (rng.uniform(-0.5, 0.5) * Z1, Z1))
            stop = (1, "stand", rng.integers(15, 50))
        total = sum(math.dist(p, q) for p, q in pairwise(pts)) / v * FPS
        out.append(_agent(rng, _route(rng.uniform(-0.8 * total, T - 50), pts, v, stop)))
    return out


def event(kind: str, s: int, L: int, rng: np.random.Generator) -> list[dict]:
    """The anomaly's actors; the event fills frames [s, s+L) exactly."""
    Z, v, side = rng.uniform(1.2, 2.2), rng.uniform(0.22, 0.3), rng.choice([-1, 1])
    if kind == "Running":  # a sprint across the near part of the view
        Z = rng.uniform(1.0, 1.4)
        A, B = _edge(Z, side), _edge(Z + rng.uniform(-0.1, 0.3), -side)
        return [_agent(rng, [(s, s + L, "run", A, B, -side)])]
    M, out = rng.uniform(-0.45, 0.45) * Z, []
    for sd in (-1, 1) if kind == "Fighting" else (side,):  # fighters meet, then go back
        P, A = ((M + 0.09 * sd) if kind == "Fighting" else M, Z), _edge(Z, sd)
        segs = _route(s - math.dist(A, P) / v * FPS, [A, P], v)
        segs.append((s, s + L, "fight" if kind == "Fighting" else "fall", P, P, -sd))
        segs += _route(s + L, [P, A if kind == "Fighting" else _edge(Z, -sd)], v)
        out.append(_agent(rng, segs))
    return out


def plan_surveillance(root: Path, seed: int) -> Plan:
    """UCF-Crime layout; videos of a kind are numbered across train and test."""
    rng = np.random.default_rng([seed, 2])
    sites = [np.random.default_rng([seed, 7, i]).integers(2**31) for i in range(3)]
    lists: dict[str, list[str]] = {"Anomaly_Train.txt": [], "Anomaly_Test.txt": []}
    notes, jobs, count = [], [], dict.fromkeys(("Normal", *KINDS), 0)
    for split, n_normal, n_event in (("Train", 12, 12), ("Test", 14, 16)):
        for kind in ["Normal"] * n_normal + [KINDS[i % 3] for i in range(n_event)]:
            count[kind] += 1
            T, note = rng.integers(200, 301), "-1  -1"
            if kind == "Normal":
                rel = f"{split}ing_Normal_Videos_Anomaly/Normal_Videos{count[kind]:03d}_x264.mp4"
                agents = walkers(rng.integers(2, 6), T, rng)
            else:
                L = rng.integers(42 if kind == "Running" else 30, 71)
                s = rng.integers(20, T - L - 20)
                rel, note = f"{kind}/{kind}{count[kind]:03d}_x264.mp4", f"{s + 1}  {s + L}"
                agents = event(kind, s, L, rng) + walkers(rng.integers(1, 4), T, rng)
            lists[f"Anomaly_{split}.txt"].append(rel)
            if split == "Test":  # as UCF-Crime: only the test videos are annotated
                notes.append(f"{rel.split('/')[1]}  {kind}  {note}  -1  -1")
            jobs.append(dict(path=root / rel, seed=rng.integers(2**31), frames=T, agents=agents,
                             site=sites[rng.integers(3)], desat=0.4, noise=rng.uniform(4, 8),
                             vignette=rng.uniform(0.25, 0.45)))  # fmt: skip
    lists["Temporal_Anomaly_Annotation.txt"] = notes
    train, test = len(lists["Anomaly_Train.txt"]), len(lists["Anomaly_Test.txt"])
    return jobs, lists, f"anomalies {', '.join(KINDS)}; {train} train / {test} test"


PLANS = {"pairs": plan_pairs, "surveillance": plan_surveillance, "longterm": plan_longterm}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=list(PLANS))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    args = ap.parse_args(argv)
    with Pool(args.workers) as pool:
        for name in [args.only] if args.only else list(PLANS):
            start, root = time.perf_counter(), args.out / name
            jobs, lists, summary = PLANS[name](root, args.seed)
            for stale in root.rglob(".*.tmp"):  # left behind by a killed run
                stale.unlink()
            frames = sum(pool.imap_unordered(render_job, jobs))
            for rel, lines in lists.items():  # lists last, once every video they name exists
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.with_name(f".{path.name}.tmp").write_text("\n".join(lines) + "\n")
                os.replace(path.with_name(f".{path.name}.tmp"), path)
            took = time.perf_counter() - start
            print(f"{name}: {len(jobs)} videos, {frames} frames, {summary}; {took:.0f}s -> {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Drawing for the synthetic videos: sprite shapes, blend-ready YUV 4:2:0 patches, scenes.

Frames are composed directly in yuv420p (BT.601, limited range, as FFmpeg converts RGB), which
halves the pixels to blend and spares the encoder a colour conversion. Shapes are signed
distance functions, so a sprite at any angle is a lookup on a small patch, and only that patch
of the frame is touched. Used by the three synthetic sets (:mod:`tc3d.synthetic.synth`,
:mod:`tc3d.synthetic.surveillance`, :mod:`tc3d.synthetic.pairs`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tc3d.io import atomic_write_with

FOOTROOM = 16  # limited-range luma starts at 16: room for negative noise without a clip


def keyed_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator keyed by (seed, *keys); strings enter as crc32, which, unlike hash(), is
    stable across runs, so every video is the same whatever the worker count."""
    parts = [zlib.crc32(k.encode()) if isinstance(k, str) else k for k in keys]
    return np.random.default_rng(np.random.SeedSequence([seed, *parts]))


# --- sprite shapes: signed distance in sprite units (radius 1, y down), negative inside ---


def _capsule(u, v, a, b, rad):
    bx, by = b[0] - a[0], b[1] - a[1]
    h = np.clip(((u - a[0]) * bx + (v - a[1]) * by) / (bx * bx + by * by), 0.0, 1.0)
    return np.hypot(u - a[0] - h * bx, v - a[1] - h * by) - rad


def _polygon(u, v, pts):
    """Convex polygon (clockwise on screen): max of the edge half-plane distances."""
    d = np.full(u.shape, -np.inf, dtype=np.float32)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True):
        nx, ny = y1 - y0, x0 - x1  # outward normal of a clockwise edge (y down)
        n = math.hypot(nx, ny)
        d = np.maximum(d, ((u - x0) * nx + (v - y0) * ny) / n)
    return d


def _athlete(u, v):
    d = np.hypot(u, v + 0.7) - 0.25  # head
    d = np.minimum(d, _capsule(u, v, (0, -0.45), (0, 0.22), 0.18))  # torso
    for s in (-1, 1):
        d = np.minimum(d, _capsule(u, v, (0, -0.32), (0.5 * s, 0.0), 0.11))  # arms
        d = np.minimum(d, _capsule(u, v, (0, 0.22), (0.36 * s, 0.9), 0.13))  # legs
    return d


SHAPES: dict[str, Callable] = {
    "ball": lambda u, v: np.hypot(u, v) - 0.85,
    "box": lambda u, v: np.maximum(np.abs(u), np.abs(v)) - 0.72,
    "triangle": lambda u, v: _polygon(u, v, [(0, -0.9), (0.88, 0.62), (-0.88, 0.62)]),
    "cross": lambda u, v: np.minimum(
        np.maximum(np.abs(u) - 0.28, np.abs(v) - 0.9), np.maximum(np.abs(u) - 0.9, np.abs(v) - 0.28)
    ),
    "puck": lambda u, v: (np.hypot(u, v / 0.55) - 1.0) * 0.55,
    "flag": lambda u, v: np.minimum(
        _capsule(u, v, (0, -0.9), (0, 0.9), 0.15),
        _polygon(u, v, [(0, -0.95), (0.9, -0.5), (0, -0.05)]),
    ),
    "bowtie": lambda u, v: np.minimum(
        np.minimum(
            _polygon(u, v, [(-0.9, -0.7), (0.0, 0.0), (-0.9, 0.7)]),
            _polygon(u, v, [(0.9, -0.7), (0.9, 0.7), (0.0, 0.0)]),
        ),
        np.hypot(u, v) - 0.22,
    ),
    "athlete": _athlete,
}


# Surface patterns (shade factor on the sprite, in sprite pixels) that make the appearance-tier
# shapes tell apart quickly: a texture is the cue a small CNN picks up first, the outline next.
TEXTURES: dict[str, Callable] = {
    "ball": lambda x, y: np.where(np.hypot(x, y) % 14 < 7, 1.0, 0.55),  # target rings
    "box": lambda x, y: np.where(((x // 9) + (y // 9)) % 2 == 0, 1.0, 0.5),  # checkerboard
    "triangle": lambda x, y: np.where(y % 12 < 6, 1.0, 0.5),  # horizontal stripes
}


# FFmpeg's RGB -> yuv420p conversion (BT.601, limited range)
_RGB2YUV = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], np.float32
) / np.float32(255)
_YUV0 = np.array([16, 128, 128], np.float32)


def layer(alpha: np.ndarray, shade: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, ...]:
    """A patch ready to blend: (1 - a, a * Y) at full and (1 - a, a * UV) at half resolution.

    alpha and shade are (h, w) with h and w even; the pixel colour is shade * rgb.
    """
    yuv = _YUV0 + shade[..., None] * (_RGB2YUV @ rgb.astype(np.float32))  # (h, w, 3)
    pre = alpha[..., None] * yuv
    h, w = alpha.shape
    a2 = alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))[..., None]
    c2 = pre[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    return 1 - alpha, pre[..., 0], 1 - a2, c2


class Sprite:
    """Blend-ready patches of one shape at any angle, cached per whole degree.

    The shape's distance field is drawn once at angle 0 on a half-pixel grid; a rotated patch
    looks it up at rotated coordinates, 4x cheaper than re-evaluating the shape per angle.
    """

    def __init__(self, shape: str, radius: float, colour: np.ndarray):
        self.colour = colour
        self.texture = TEXTURES.get(shape)
        self.half = half = math.ceil(radius * 1.1) + 2  # every shape fits within 1.1 radii
        fine = np.arange(-2 * half, 2 * half + 1, dtype=np.float32) / 2
        self.dist = SHAPES[shape](fine[None, :] / radius, fine[:, None] / radius) * radius
        g = np.arange(-half, half, dtype=np.float32)  # even size, for 4:2:0 chroma
        self.px, self.py = np.meshgrid(g, g)
        self.light = 1.0 - 0.15 * (self.py + half) / (2 * half)  # lit from above
        self.cache: dict[int, tuple[np.ndarray, ...]] = {}

    def layer(self, angle: float) -> tuple[np.ndarray, ...]:
        key = round(angle) % 360  # degrees, clockwise on screen
        if key not in self.cache:
            c, s = math.cos(math.radians(key)), math.sin(math.radians(key))
            last = 4 * self.half
            iu = np.clip(np.rint(2 * (c * self.px + s * self.py + self.half)), 0, last)
            iv = np.clip(np.rint(2 * (c * self.py - s * self.px + self.half)), 0, last)
            d = self.dist[iv.astype(np.intp), iu.astype(np.intp)]  # pixels, negative inside
            alpha = np.clip(0.5 - d, 0.0, 1.0)
            shade = np.where(d > -2.5, 0.45, 1.0) * self.light  # dark outline
            if self.texture is not None:
                u = c * self.px + s * self.py  # sprite coordinates: the pattern turns with it
                v = c * self.py - s * self.px
                shade = shade * self.texture(np.floor(u), np.floor(v))
            self.cache[key] = layer(alpha, shade, self.colour)
        return self.cache[key]


def _paste(plane: np.ndarray, keep: np.ndarray, paint: np.ndarray, x0: int, y0: int) -> None:
    """plane = plane * keep + paint on the patch at (x0, y0), wrapping around in x."""
    ph, pw = keep.shape[:2]
    hh, ww = plane.shape[:2]
    fy0, fy1 = max(y0, 0), min(y0 + ph, hh)
    if fy0 >= fy1:
        return
    for ox in (x0, x0 - ww, x0 + ww):
        fx0, fx1 = max(ox, 0), min(ox + pw, ww)
        if fx0 < fx1:
            sub = (slice(fy0 - y0, fy1 - y0), slice(fx0 - ox, fx1 - ox))
            region = plane[fy0:fy1, fx0:fx1]
            region[:] = region * keep[sub] + paint[sub]  # a convex mix: stays in 0..255


def blend(y: np.ndarray, c: np.ndarray, layer: tuple[np.ndarray, ...], cx: float, cy: float):
    """Blend a layer centred at (cx, cy) into the luma plane y and the chroma planes c."""
    keep_y, paint_y, keep_c, paint_c = layer
    x0, y0 = round(cx) - keep_y.shape[1] // 2, round(cy) - keep_y.shape[0] // 2
    _paste(y, keep_y, paint_y, x0, y0)
    _paste(c, keep_c, paint_c, x0 // 2, y0 // 2)


# --- scene: background and distractors ---


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid bilinearly upsampled."""
    grid = rng.uniform(-1, 1, (h // cell + 2, w // cell + 2)).astype(np.float32)
    ys, xs = np.arange(h) / cell, np.arange(w) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None].astype(np.float32), (xs - x0)[None, :].astype(np.float32)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def background(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A static low-contrast cluttered h x w scene: (Y - FOOTROOM, UV at half size), uint8.

    Luma comes back lowered by FOOTROOM, so adding uint8 noise of 0..2*FOOTROOM never overflows
    and frames are composed in uint8 without a clip.
    """
    base = rng.uniform(70, 160)
    top = base + rng.uniform(-25, 25) + rng.uniform(-10, 10, 3)
    bottom = base + rng.uniform(-25, 25) + rng.uniform(-10, 10, 3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    bg = np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).astype(np.float32)
    bg = bg + 14 * _smooth_noise(rng, h, w, 24)[..., None] + rng.normal(0, 2.5, (h, w, 1))
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(int(rng.integers(18, 30))):  # clutter: faint rectangles and ellipses
        cx, cy, rx, ry = rng.uniform(0, w), rng.uniform(0, h), *rng.uniform(8, 50, 2)
        x0, x1, y0, y1 = int(max(cx - rx, 0)), int(cx + rx) + 1, int(max(cy - ry, 0)), int(cy + ry)
        sub = (slice(y0, y1 + 1), slice(x0, x1))
        if rng.random() < 0.5:
            inside = ((xx[sub] - cx) / rx) ** 2 + ((yy[sub] - cy) / ry) ** 2 <= 1
        else:
            inside = np.ones(xx[sub].shape, bool)
        shift = rng.uniform(-22, 22) + rng.uniform(-6, 6, 3)
        bg[sub] += np.where(inside[..., None], shift, 0).astype(np.float32)
    yuv = np.clip(bg, 0, 255) @ _RGB2YUV.T + _YUV0
    luma = np.clip(yuv[..., 0], FOOTROOM, 235) - FOOTROOM
    chroma = yuv[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    return luma.astype(np.uint8), np.ascontiguousarray(chroma, dtype=np.uint8)


def soft_blob(radius: float, rgb: np.ndarray) -> tuple[np.ndarray, ...]:
    k = math.ceil(2 * radius)
    g = np.arange(-k, k, dtype=np.float32) + 0.5
    alpha = 0.65 * np.exp(-(g[None, :] ** 2 + g[:, None] ** 2) / (2 * (0.6 * radius) ** 2))
    return layer(alpha.astype(np.float32), np.ones_like(alpha, dtype=np.float32), rgb)


def noise_bank(
    rng: np.random.Generator, sigma: tuple[float, float], h: int, w: int, frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sensor noise drawn once per video: an ``(h + 32, w + 32)`` bank of uint8 luma offsets
    ``0..2 * FOOTROOM`` (its standard deviation drawn from ``sigma``) and, per frame, where to
    crop it, ``(frames, 2)``: far cheaper than new noise per frame, and added without a clip."""
    noise = rng.normal(0, rng.uniform(*sigma), (h + 32, w + 32))
    bank = (np.clip(np.round(noise), -FOOTROOM, FOOTROOM) + FOOTROOM).astype(np.uint8)
    return bank, rng.integers(0, 33, (frames, 2))


def sprite_colour(rng: np.random.Generator, hue: tuple[float, float] = (0, 6)) -> np.ndarray:
    """A saturated bright colour (HSV: S 0.6-1, V 0.8-1): never mistaken for the muted scene.

    ``hue`` is a range on the 0-6 hue circle (0 red, 2 green, 4 blue).
    """
    hue, sat, val = rng.uniform(*hue) % 6, rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.0)
    f = hue - int(hue)
    p, q, t = val * (1 - sat), val * (1 - sat * f), val * (1 - sat * (1 - f))
    rgb = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][int(hue)]
    return 255 * np.array(rgb, dtype=np.float32)


def put_chroma(frame: np.ndarray, c: np.ndarray) -> None:
    """Write the ``(h/2, w/2, 2)`` U and V planes below the luma of an I420 frame buffer
    ``(3h/2, w)``, the layout :func:`encode_yuv420` takes."""
    h, w = frame.shape[0] * 2 // 3, frame.shape[1]
    frame[h : h + h // 4].reshape(h // 2, w // 2)[:] = c[..., 0]
    frame[h + h // 4 :].reshape(h // 2, w // 2)[:] = c[..., 1]


def encode_yuv420(
    frames: Iterable[np.ndarray],
    path: str | Path,
    size: tuple[int, int],
    fps: int,
    gop: int,
    bit_rate: int,
    container: str,
) -> int:
    """Encode packed yuv420p frames as mpeg4 into ``path`` atomically; returns the frame count.

    Every synthetic set writes through here, so a killed run never leaves a half-written video
    under its final name.
    """
    count = 0

    def encode(f) -> None:
        nonlocal count
        with av.open(f, "w", format=container) as out:
            stream = out.add_stream("mpeg4", rate=fps)
            cc = stream.codec_context
            cc.width, cc.height = size
            cc.pix_fmt = "yuv420p"
            cc.gop_size, cc.thread_count, cc.bit_rate = gop, 1, bit_rate
            for count, img in enumerate(frames, 1):
                frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
                frame.pts, frame.time_base = count - 1, Fraction(1, fps)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))

    atomic_write_with(path, encode)
    return count

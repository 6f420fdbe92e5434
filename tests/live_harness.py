"""What the camera and teach tests (tests/test_live.py) and benchmarks/live_*.py share: the real
clips of ``../shared/real-video``, a ``.y4m`` for Chromium's fake camera made from one of them,
WebM teach clips cut from them, a headless Chromium with that fake camera, and a WebSocket
client for ``/api/live``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import av
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve()


def real_clips() -> Path | None:
    """``../shared/real-video/clips`` beside the checkout ($TC3D_REAL_VIDEO wins), or None."""
    env = os.environ.get("TC3D_REAL_VIDEO")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" / "real-video" / "clips" for p in HERE.parents]
    return next((p for p in candidates if p.is_dir()), None)


def decode(path: Path, limit: int | None = None, width: int | None = None) -> np.ndarray:
    """Frames ``(F, H, W, 3)`` uint8 RGB, at most ``limit``, scaled to ``width`` (even sizes)."""
    frames = []
    with av.open(str(path), metadata_errors="ignore") as c:
        for f in c.decode(video=0):
            if width:
                h = round(f.height * width / f.width) // 2 * 2
                f = f.reformat(width=width, height=h)
            frames.append(f.to_ndarray(format="rgb24"))
            if limit and len(frames) >= limit:
                break
    return np.stack(frames)


def write_y4m(path: Path, frames: np.ndarray, fps: int = 30) -> Path:
    """A raw YUV 4:2:0 ``.y4m`` (what ``--use-file-for-fake-video-capture`` plays, looping)."""
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        s = out.add_stream("rawvideo", rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv420p"
        for f in frames:
            frame = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
            out.mux(s.encode(frame))
        out.mux(s.encode())
    return path


def write_webm(path: Path, frames: np.ndarray, fps: int = 30) -> Path:
    """VP8 in WebM, as a browser's MediaRecorder writes it."""
    with av.open(str(path), "w", format="webm") as out:
        s = out.add_stream("libvpx", rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv420p"
        s.bit_rate = 800_000
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(s.encode())
    return path


def jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def fake_camera_chromium(y4m: Path, profile: Path, width: int = 1100, height: int = 1000):
    """Headless Chromium whose camera plays ``y4m`` (and that grants the camera unasked)."""
    from serve_harness import chromium

    extra = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
             f"--use-file-for-fake-video-capture={y4m}",
             "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
    return chromium(width, height, profile, extra=extra)


def live_url(url: str, model: str | None = None) -> str:
    base = url.replace("http://", "ws://").rstrip("/") + "/api/live"
    return f"{base}?model={model}" if model else base


def ws_connect(url: str, model: str | None = None, timeout: float = 60):
    from websocket import create_connection

    return create_connection(live_url(url, model), timeout=timeout)


def ws_close_reply(ws) -> tuple[list[dict], int | None]:
    """Read text messages until the server closes: (the messages, the close code)."""
    from websocket import ABNF

    messages = []
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == ABNF.OPCODE_CLOSE:
            data = frame.data or b""
            return messages, int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        if opcode == ABNF.OPCODE_TEXT:
            messages.append(json.loads(frame.data))

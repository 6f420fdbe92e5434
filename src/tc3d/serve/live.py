"""``WS /api/live``: the page's camera, recognised as it comes (DESIGN A9b).

The page sends each frame as one binary message holding a JPEG, scaled down to about the
model's short side. One :class:`tc3d.infer.live.LiveStream` per connection turns them into
decisions on ``tc3d stream``'s path (one clip computed per decision, the last S fused); each
decision goes back as one JSON text message with the keys of a ``tc3d stream --json`` line plus
``dropped``.

Never a queue without bound: frames are taken off the socket as they arrive and go into the
stream's ring (one clip's frames); a due clip waits in a slot of one; when the model is still
busy with the previous clip as the next one falls due, the older clip is skipped and its frames
are counted in ``dropped``. The model runs on a worker thread, taking turns with the page's
other requests on the model's lock. A message that is not a decodable image gets one
``{"error": ...}`` and the socket is closed with 1003; one over 4 MB is closed with 1009. The
stream is only in memory and goes when the socket closes; no frame is written anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time

import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from tc3d.errors import first_line
from tc3d.infer.engine import EngineError
from tc3d.infer.live import LiveStream
from tc3d.infer.stream import StreamConfig
from tc3d.serve.analysis import ServedModel

log = logging.getLogger(__name__)

MAX_MESSAGE = 4 << 20  # bytes: one frame
MAX_PIXELS = 4096 * 4096  # a frame larger than this is refused before it is decoded
LIVE_STRIDE = 4  # frames between decisions
UNSUPPORTED, TOO_BIG, INTERNAL = 1003, 1009, 1011  # WebSocket close codes


class BadFrame(ValueError):
    pass


def decode_jpeg(data: bytes) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an image message; :class:`BadFrame` says why not."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise BadFrame(f"frame of {img.width}x{img.height} pixels: send at most 4096x4096")
        return np.asarray(img.convert("RGB"))
    except UnidentifiedImageError:
        raise BadFrame("not a JPEG (or any image this server decodes)") from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, BadFrame):
            raise
        raise BadFrame(f"not a decodable image: {first_line(e)}") from None


class _Session:
    """One connection: its stream, the slot of the newest due clip and the decider task."""

    def __init__(self, ws: WebSocket, served: ServedModel, stream: LiveStream):
        self.ws, self.served, self.stream = ws, served, stream
        self.slot = None  # the newest due clip (a _Job) not yet given to the model
        self.due = asyncio.Event()
        self.closed = False

    def offer(self, job) -> None:
        if self.slot is not None:
            self.stream.skipped(self.slot)
        self.slot = job
        self.due.set()

    def _decide(self, job) -> dict:
        with self.served.lock:
            return self.stream.decide(job)

    async def decider(self) -> None:
        """Decide the newest due clip whenever there is one; a failure ends the connection."""
        try:
            while not self.closed:
                await self.due.wait()
                self.due.clear()
                job, self.slot = self.slot, None
                if job is None:
                    continue
                line = await run_in_threadpool(self._decide, job)
                line["dropped"] = self.stream.state.dropped
                line["model"] = self.served.name
                if not self.closed:
                    await self.ws.send_json(line)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away while its decision was made: nobody to tell
        except Exception as e:  # a bug or a resource failure: say so, close this one socket
            log.warning("live decision failed: %s", e, exc_info=log.isEnabledFor(10))
            self.closed = True
            with contextlib.suppress(Exception):
                await self.ws.send_json({"error": f"decision failed: {first_line(e)}"})
                await self.ws.close(INTERNAL)

    async def receive(self) -> tuple[int, str] | None:
        """Take frames until the client leaves (None) or must be closed: (code, reason)."""
        n = 0
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return None
            data = msg.get("bytes")
            if data is None:
                text = (msg.get("text") or "")[:40]
                return await self._refuse(UNSUPPORTED, f"frame {n}: send JPEG bytes, not text "
                                          f"({text!r})")  # fmt: skip
            if len(data) > MAX_MESSAGE:
                return TOO_BIG, f"frame {n}: {len(data)} bytes, over the 4 MB limit"
            try:
                rgb = decode_jpeg(data)
            except BadFrame as e:
                return await self._refuse(UNSUPPORTED, f"frame {n}: {e}")
            job = self.stream.push(rgb)
            n += 1
            if job is not None:
                self.offer(job)

    async def _refuse(self, code: int, message: str) -> tuple[int, str]:
        await self.ws.send_json({"error": message})
        return code, message


async def live(ws: WebSocket, served: ServedModel | None, unknown: str = "") -> None:
    """Serve one ``/api/live`` connection until it closes."""
    await ws.accept()
    if served is None:
        await ws.send_json({"error": unknown})
        await ws.close(UNSUPPORTED)
        return
    try:
        engine = await run_in_threadpool(served.model.engine)
        stream = LiveStream(engine, served.model.loaded, StreamConfig(stride=LIVE_STRIDE))
    except (EngineError, ValueError) as e:
        await ws.send_json({"error": first_line(e)})
        await ws.close(UNSUPPORTED)
        return
    session = _Session(ws, served, stream)
    decider = asyncio.create_task(session.decider())
    start, closing = time.perf_counter(), None
    try:
        closing = await session.receive()
    except WebSocketDisconnect:
        pass
    finally:
        session.closed = True
        session.due.set()
        decider.cancel()
    st = stream.state
    log.info("live %s: %d frames, %d decisions, %d dropped, %.1f s%s", served.name, st.frames,
             st.decisions, st.dropped, time.perf_counter() - start,
             f", closed: {closing[1]}" if closing else "")  # fmt: skip
    if closing:
        await ws.close(closing[0], closing[1][:120])

"""A live MPEG-TS feed over HTTP on 127.0.0.1 that a test can stop and start again.

The feed is a real encoded video (MPEG-2 in MPEG-TS, written with PyAV) sent at its frame
rate with no length, as a camera or an encoder's HTTP output is: a reader cannot tell it from
a live source. ``stop()`` closes the listening socket and every open connection (a client
sees its stream end); ``start()`` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import io
import socket
import socketserver
import threading
import time

import av
import numpy as np

FPS = 25


def mpegts(frames: int, width: int = 64, height: int = 48) -> bytes:
    """``frames`` frames of a moving gradient as MPEG-2 video in an MPEG-TS, in memory."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as container:
        stream = container.add_stream("mpeg2video", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = 5
        x = np.arange(width)[None, :, None]
        for i in range(frames):
            rgb = np.broadcast_to((x * 4 + i * 8) % 256, (height, width, 3)).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


class LiveFeed:
    """Serves ``data`` at ``seconds`` of playback per connection from its start."""

    def __init__(self, data: bytes, seconds: float):
        self.data, self.seconds = data, seconds
        self.port = 0
        self.server: socketserver.ThreadingTCPServer | None = None
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.ts"

    def start(self) -> LiveFeed:
        feed = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with feed.lock:
                    feed.connections.append(self.connection)
                self.rfile.readline()  # the request line; the headers are not needed
                feed.send(self.wfile)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def send(self, out) -> None:
        out.write(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n")
        chunk = 188 * 8  # whole TS packets
        start = time.monotonic()
        try:
            for i in range(0, len(self.data), chunk):
                due = start + self.seconds * i / len(self.data)
                time.sleep(max(0.0, due - time.monotonic()))
                out.write(self.data[i : i + chunk])
                out.flush()
        except OSError:
            pass  # the feed was stopped, or the client left

    def stop(self) -> None:
        """Stop listening and cut every connection."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()

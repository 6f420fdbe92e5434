"""The page's ASGI middleware: the upload size limit (413 on any route) and the request log.

Both pass WebSocket connections through untouched (``WS /api/live`` limits its own messages).
"""

from __future__ import annotations

import json
import logging
import time

log = logging.getLogger("tc3d.serve.app")  # the request lines keep the logger they always had


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, whatever the route.

    The rest of an oversized body is read and dropped (a client that is still sending when the
    server closes would get a reset instead of the answer), the app sees the body end there,
    and whatever it answers is replaced by the 413.
    """

    def __init__(self, app, limit: int, message: str):
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        declared = int(declared) if declared.isdigit() else None
        seen = 0

        async def limited():
            nonlocal seen
            if scope.get("tc3d.over_limit"):
                return {"type": "http.request", "body": b"", "more_body": False}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit or (declared or 0) > self.limit:
                    scope["tc3d.over_limit"] = True
                    while msg.get("more_body"):
                        msg = await receive()
                        if msg["type"] != "http.request":
                            break
                    return {"type": "http.request", "body": b"", "more_body": False}
            return msg

        async def guarded(msg):
            if not scope.get("tc3d.over_limit"):
                await send(msg)
            elif msg["type"] == "http.response.start":
                await _send_json(send, 413, {"error": self.message})

        await self.app(scope, limited, guarded)


class RequestLog:
    """One line per request on the ``tc3d.serve`` logger: client, method, path, status, time
    (and what the handler noted, e.g. the file and its label)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [0]

        async def noted(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, noted)
        finally:
            client = (scope.get("client") or ("-", 0))[0]
            note = scope.get("tc3d.note")
            log.info("%s %s %s %d %.2f s%s", client, scope["method"], scope["path"], status[0],
                     time.perf_counter() - start, f"  {note}" if note else "")  # fmt: skip

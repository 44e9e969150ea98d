"""A limit on the size of a request's body, for every endpoint: a larger body is refused with a 422 that says
so, before it is read whole (by its declared Content-Length; a body sent in chunks, without one, is counted as
it arrives and refused once it passes the limit). Without it, a client could make a worker hold a body of any
size in memory. Endpoints keep their own, smaller limits where they have one (an image upload's 5 MB).

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, refuse=lambda size, limit: JSONResponse(...))
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The largest body any endpoint needs: a 5 MB image, base64-encoded inside a JSON post (6.7 MB), with room.
MAX_BODY_BYTES = 8 * 1024 * 1024


class _TooLarge(Exception):
    def __init__(self, size: int):
        self.size = size


class BodyLimit:
    """ASGI middleware: bodies over max_bytes are answered with refuse(size seen, max_bytes)."""

    def __init__(self, app: ASGIApp, max_bytes: int, refuse: Callable[[int, int], Response]):
        self.app = app
        self.max_bytes = max_bytes
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.refuse(int(declared), self.max_bytes)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(received)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge as too_large:
            if started:  # an endpoint that answered before reading its body whole: nothing left to refuse
                raise
            await self.refuse(too_large.size, self.max_bytes)(scope, receive, send)

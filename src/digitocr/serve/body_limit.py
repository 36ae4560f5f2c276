"""The request body limit's answer in the API's one error shape: 413 with JSON ``{"detail": "..."}``.

FastAPI's ``max_body_size`` counts a body as it arrives and raises a 413 that the app's handlers answer; but a
declared Content-Length over its limit it answers itself, in plain text, and sends that instead of whatever the
app answers. ``DeclaredLengthLimit`` answers that case first, in JSON, before the request reaches FastAPI's limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse({"detail": f"the body is over the server's limit of {max_bytes:,} bytes"}, status_code=413)


class DeclaredLengthLimit:
    """ASGI middleware: 413 for a request whose Content-Length is over ``max_bytes``, before a byte is read."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and declared_length(scope) > self.max_bytes:
            await too_large(self.max_bytes)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def declared_length(scope: Scope) -> int:
    """The Content-Length header as a number; 0 without one or for a malformed one (uvicorn refuses those with
    400 itself, and FastAPI's limit still counts the bytes that do arrive)."""
    try:
        return int(Headers(scope=scope).get("content-length", 0))
    except ValueError:
        return 0

"""A request id on every request and answer, so an audit entry can be matched to the request (and
the proxy's log line) that made it.

A caller's own ``X-Request-ID`` is kept if it is short and plain (a proxy
or client already numbering its requests); anything else is replaced, so a
header cannot smuggle text into the audit trail.  Pure ASGI rather than
``BaseHTTPMiddleware``, which buffers and wraps every response.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "RequestIdMiddleware"]

HEADER = "X-Request-ID"
_PLAIN = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER.lower().encode())
        request_id = given.decode() if given is not None and _PLAIN.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, tagged)

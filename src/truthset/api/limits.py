"""Guards that answer before a request reaches the app: anonymous API calls, NUL characters, body size.

Body limits are enforced while the body streams in (Content-Length can lie or be absent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from truthset.api.errors import MISSING_CREDENTIALS, error_body

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class BodyLimitMiddleware:
    """413 in the one error shape when a body exceeds its limit; bulk routes get a larger limit.

    A body without a Content-Length is counted as it arrives. The 413 is sent from here the moment
    the count passes the limit, and the app is then told the client has gone (``http.disconnect``)
    and its own answer dropped: an exception raised into the app's body read would be turned into
    whatever the reader makes of a failed read (FastAPI makes it a 400 "error parsing the body").
    """

    def __init__(
        self,
        app: Any,
        *,
        default_limit: int,
        large_limit: int,
        large_suffixes: tuple[str, ...],
        own_limits: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.large_limit = large_limit
        self.large_suffixes = large_suffixes
        self.own_limits = own_limits  # (path suffix, limit): routes with a limit of their own (file imports)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.large_limit if path.endswith(self.large_suffixes) else self.default_limit
        limit = next((own for suffix, own in self.own_limits if path.endswith(suffix)), limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reject(send, limit)
            return
        received = 0
        response_started = False
        rejected = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not response_started:
                        await _reject(send, limit)
                    rejected = True
                    return {"type": "http.disconnect"}  # the app stops reading, whatever it reads with
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal response_started
            if rejected:
                return  # the 413 has been sent; what the app answers to the "disconnect" is moot
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception:
            if not rejected:
                raise
            # the app failed on the body cut short (a ClientDisconnect, say): the client has its 413


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reject(send: Send, limit: int) -> None:
    body = error_body("too_large", f"the request body is larger than {limit} bytes", {"limit": limit})
    await _send_error(send, 413, body)


class NulGuardMiddleware:
    """422 for a NUL character in the path or query: PostgreSQL text cannot hold one (a 500 otherwise)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            where = None
            if "\x00" in scope["path"]:
                where = "path"
            elif b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
                where = "query"
            if where is not None:
                message = f"the {where} must not contain NUL characters"
                errors = [{"field": where, "message": message, "type": "invalid"}]
                body = error_body("invalid_input", message, {"field": where, "errors": errors})
                await _send_error(send, 422, body)
                return
        await self.app(scope, receive, send)


class AnonymousGuardMiddleware:
    """401 for an API call that carries no credentials at all, before its body is read or parsed.

    Every route under the API prefix needs an API key or a session (the route walk in the tests
    proves it), so a call with neither is refused here: an anonymous client learns nothing from
    validation errors and cannot make the server read a large body. A wrong key still reaches the
    app, which refuses it in the same shape.
    """

    def __init__(self, app: Any, *, prefix: str, public: tuple[str, ...], session_cookie: str) -> None:
        self.app = app
        self.prefix = prefix
        self.public = public
        self.session_cookie = session_cookie.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._anonymous_api_call(scope):
            body = error_body("unauthenticated", MISSING_CREDENTIALS)
            await _send_error(send, 401, body, [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)

    def _anonymous_api_call(self, scope: Scope) -> bool:
        path = scope["path"]
        if not path.startswith(self.prefix) or path.startswith(self.public):
            return False
        for name, value in scope["headers"]:
            if name == b"authorization" or (name == b"cookie" and self.session_cookie in value):
                return False
        return True


async def _send_error(send: Send, status: int, body: dict[str, Any], headers: list | None = None) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})

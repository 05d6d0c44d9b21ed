"""The ``/scale/v1`` application: mounted inside truthset's app, with Scale's error shape.

It is a sub-application so that its errors can have Scale's body, ``{"status_code", "error"}``,
which the official client reads (``error`` becomes its exception's message; the status picks the
exception class) while truthset's own API keeps its own shape. It shares the parent's database and
settings, and the parent's middleware (body limits, security headers) wraps it.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from truthset.api import errors as api_errors
from truthset.compat.scale._auth import MISSING
from truthset.compat.scale._routes import router
from truthset.errors import InvalidInput, TruthsetError, Unauthenticated

PREFIX = "/scale/v1"
log = logging.getLogger("truthset.compat.scale")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Scale's error body: the client raises ``ExceptionMap[status]`` with ``error`` as its message
    (scaleapi 2.18.4, ``api.py`` ``_raise_on_respose`` and ``exceptions.py``)."""
    return JSONResponse({"status_code": status, "error": message}, status_code=status, headers=headers)


def status_of(exc: TruthsetError) -> int:
    """truthset's own status for the error (api/errors.py, one table), except that bad input is a
    400 in Scale's API (``ScaleInvalidRequest``) where truthset's own API answers 422."""
    return 400 if isinstance(exc, InvalidInput) else api_errors.status_of(exc)


class AnonymousGuard:
    """401 for a call without an Authorization header, before its body is read or parsed: as for
    truthset's own API (api/limits.py), an anonymous client learns nothing from validation errors
    and cannot make the server read a body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(name == b"authorization" for name, _ in scope["headers"]):
            await error(401, MISSING, {"WWW-Authenticate": 'Basic realm="truthset"'})(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ScaleErrorShape:
    """Scale's error body for the answers truthset's outer guards send on ``/scale/v1`` paths before
    the request reaches this app (a body over the size limit: 413; a NUL in the query: 422, which is
    a 400 here): their ``{"error": {"message"}}`` becomes ``{"status_code", "error": message}``, so
    the client's exception carries truthset's message. Installed outermost (``install_error_shape``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(f"{PREFIX}/"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None

        async def shaping_send(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message  # held until the body shows whether it is truthset's error shape
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            held, start = start, None
            await _send_shaped(send, held, message)

        await self.app(scope, receive, shaping_send)


async def _send_shaped(send: Send, start: dict[str, Any], body: dict[str, Any]) -> None:
    """Send a held error answer, its body rewritten when it is truthset's error shape (errors are
    one small JSON message: a streamed or other body passes unchanged)."""
    status, content = start["status"], body.get("body", b"")
    try:
        parsed = orjson.loads(content) if not body.get("more_body") else None
    except orjson.JSONDecodeError:
        parsed = None
    inner = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        status = 400 if status == 422 else status
        content = orjson.dumps({"status_code": status, "error": inner["message"]})
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        start = {**start, "status": status, "headers": [*headers, (b"content-length", str(len(content)).encode())]}
        body = {**body, "body": content}
    await send(start)
    await send(body)


def build(parent: FastAPI) -> FastAPI:
    app = FastAPI(title="truthset: Scale-compatible API", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.db = parent.state.db
    app.state.settings = parent.state.settings
    app.include_router(router)
    app.add_middleware(AnonymousGuard)

    @app.exception_handler(TruthsetError)
    async def _domain(_request: Request, exc: TruthsetError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Basic realm="truthset"'} if isinstance(exc, Unauthenticated) else None
        retry_after = api_errors.retry_after_of(exc)  # the API's: "1" when busy, "60" when the disk is full
        if retry_after is not None:
            headers = {"Retry-After": retry_after}
        return error(status_of(exc), exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")) or "body"
        return error(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = (
            "this endpoint is not supported by truthset's Scale-compatible API"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return error(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error(500, "internal server error (this is a bug; it was logged)")

    return app


def install(parent: FastAPI) -> None:
    """Mount ``/scale/v1`` on truthset's app."""
    parent.mount(PREFIX, build(parent))


def install_error_shape(parent: FastAPI) -> None:
    """Scale's error body for the answers of truthset's outer guards on ``/scale/v1`` paths: call
    after the parent's guards are added, so that this middleware wraps them."""
    parent.add_middleware(ScaleErrorShape)

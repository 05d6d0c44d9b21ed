"""The ``/scale/v1`` application: mounted inside truthset's app, with Scale's error shape.

It is a sub-application so that its errors can have Scale's body, ``{"status_code", "error"}``,
which the official client reads (``error`` becomes its exception's message; the status picks the
exception class) while truthset's own API keeps its own shape. It shares the parent's database and
settings, and the parent's middleware (body limits, security headers) wraps it.
"""

from __future__ import annotations

import logging
from typing import Any

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

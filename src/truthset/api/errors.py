"""The only place errors become HTTP. One JSON shape: {"error": {"code", "message", "details"}}.

``details`` is an object or null; for a 422 it names the first bad ``field`` and lists ``errors``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from truthset.errors import (
    Busy,
    Conflict,
    DatabaseUnusable,
    Forbidden,
    InvalidInput,
    NotFound,
    StorageFull,
    TooLarge,
    TruthsetError,
    Unauthenticated,
)

log = logging.getLogger("truthset.api")

MISSING_CREDENTIALS = "an API key is required: Authorization: Bearer <key>"

STATUS: dict[type[TruthsetError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Unauthenticated: 401,
    Forbidden: 403,
    Conflict: 409,
    TooLarge: 413,
    Busy: 503,
    StorageFull: 507,  # Insufficient Storage
    DatabaseUnusable: 503,
}

# How long a client should wait before retrying: a lost race clears at once, freeing disk space takes a person
RETRY_AFTER: dict[type[TruthsetError], str] = {Busy: "1", StorageFull: "60"}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def by_class(table: dict[type[TruthsetError], Any], exc: TruthsetError) -> Any:
    """The entry for the error's class or its nearest parent in ``table`` (None if none). Public:
    compat/scale maps errors with the same tables."""
    return next((table[cls] for cls in type(exc).__mro__ if cls in table), None)


def status_of(exc: TruthsetError) -> int:
    return by_class(STATUS, exc) or 400


def retry_after_of(exc: TruthsetError) -> str | None:
    """The ``Retry-After`` seconds for an error a client should retry (subclasses too: a lock
    deadline is a Busy), or None."""
    return by_class(RETRY_AFTER, exc)


def _location(loc: tuple | list) -> str:
    """``("body", "spec", "fields", 0, "type")`` -> ``spec.fields[0].type``."""
    path = ""
    for part in loc:
        if part == "body" and not path:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


_NESTED = re.compile(r"^(?:Value error, )?([A-Za-z_][\w\-]*(?:\[\d+\])?(?:\.[\w\-]+(?:\[\d+\])?)*): (.*)$", re.S)


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    """Name the innermost field: a validator's "questions[0].options: ..." extends the location."""
    if error.get("type") == "json_invalid":  # loc is ("body", <character position>): not a field
        reason = (error.get("ctx") or {}).get("error", "")
        message = f"invalid JSON: {reason}" if reason else "invalid JSON"
        return {"field": "body", "message": message, "type": "json_invalid"}
    field = _location(error.get("loc", ()))
    message = str(error.get("msg", ""))
    nested = _NESTED.match(message)
    if nested and nested.group(1).split("[")[0].split(".")[0] == field.rsplit(".", 1)[-1]:
        field = field.rsplit(".", 1)[0] + "." + nested.group(1) if "." in field else nested.group(1)
        message = nested.group(2)
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return {"field": field, "message": message, "type": str(error.get("type", ""))}


def install(app: FastAPI) -> None:
    @app.exception_handler(TruthsetError)
    async def _domain(_request: Request, exc: TruthsetError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        retry_after = retry_after_of(exc)
        if retry_after is not None:
            headers = {"Retry-After": retry_after}
        details = exc.details
        if isinstance(exc, InvalidInput) and isinstance(details, dict) and "field" in details:
            error = {"field": details["field"], "message": exc.message, "type": "invalid"}
            details = {"errors": [error], **details}
        return error_response(status_of(exc), exc.code, exc.message, details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        details = {"field": first["field"], "errors": errors}
        return error_response(422, "invalid_input", f"{first['field']}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # Only the framework raises a 400 here: it could not parse the body (not UTF-8, a broken
            # multipart form). That is bad input like invalid JSON: the same 422 naming the body.
            cause = exc.__cause__ or exc.__context__
            message = f"the body could not be parsed: {cause or exc.detail}"
            error = {"field": "body", "message": message, "type": "body_unparsable"}
            return error_response(422, "invalid_input", message, {"field": "body", "errors": [error]})
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "internal server error (this is a bug; it was logged)")

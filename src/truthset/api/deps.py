"""Request dependencies: the database, settings and the authenticated principal."""

from __future__ import annotations

import base64
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from truthset.api import session
from truthset.api.errors import MISSING_CREDENTIALS
from truthset.config import Settings
from truthset.domain import Principal
from truthset.errors import InvalidInput, Unauthenticated
from truthset.services import accounts
from truthset.storage import Database

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ts_...`")


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool,
# and the hop there and back cost more CPU than the annotation loop's database work.


async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    key = bearer.credentials if bearer else _basic_key(request)
    db = request.app.state.db
    if not key:
        # the web UI: cookie + CSRF token, looked up in the database off the event loop
        principal = await anyio.to_thread.run_sync(session.principal_from_request, request)
        if principal is not None:
            return principal
        raise Unauthenticated(MISSING_CREDENTIALS)
    remembered = accounts.remembered_principal(db, key)
    if remembered is not None:
        return remembered
    return await anyio.to_thread.run_sync(accounts.authenticate, db, key)


def _basic_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except ValueError:
        raise Unauthenticated("malformed Basic authorization header") from None
    return decoded.split(":", 1)[0]


Cursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9a-f]{24}$", description="`next_cursor` of the previous page; omit for the first."),
]
DB = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Caller = Annotated[Principal, Depends(get_principal)]


DEFAULT_PAGE_SIZE = 100


async def page_limit(
    request: Request,
    limit: Annotated[
        int, Query(ge=1, description="Items per page: 1 to `TRUTHSET_PAGE_SIZE_MAX`.")
    ] = DEFAULT_PAGE_SIZE,
) -> int:
    """The page size asked for; without ``limit``, the default (never more than the server allows)."""
    maximum = request.app.state.settings.page_size_max
    if limit <= maximum:
        return limit
    if "limit" not in request.query_params:
        return maximum
    raise InvalidInput(f"limit must be between 1 and {maximum}", details={"field": "limit"})


PageLimit = Annotated[int, Depends(page_limit)]

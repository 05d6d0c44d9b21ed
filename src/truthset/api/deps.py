"""Request dependencies: the database, settings and the authenticated principal."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Query, Request
from fastapi.routing import APIRoute
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
MinConfidence = Annotated[
    float | None,
    Query(
        ge=0,
        le=1,
        description="Only tasks whose result has at least this confidence (tasks without a result never match).",
    ),
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


METADATA_PREFIX = "metadata."


async def metadata_filters(request: Request) -> dict[str, str]:
    """``metadata.KEY=VALUE`` query parameters, as ``{KEY: VALUE}``."""
    return {
        key[len(METADATA_PREFIX) :]: value
        for key, value in request.query_params.items()
        if key.startswith(METADATA_PREFIX) and len(key) > len(METADATA_PREFIX)
    }


MetadataFilters = Annotated[dict[str, str], Depends(metadata_filters)]

#: Dependencies that read a family of query parameters by prefix rather than by name.
QUERY_FAMILIES: dict[Callable[..., Any], str] = {metadata_filters: METADATA_PREFIX}


async def known_query_only(request: Request, _caller: Caller) -> None:
    """422 for a query parameter the route does not take: a misspelt filter must not be ignored.

    The route's own declared query parameters (its dependencies' included) are the allowed names,
    plus the prefix of any family it reads (``metadata.KEY``). The caller is authenticated first
    (FastAPI runs ``get_principal`` once per request), so a wrong key gets its 401 before this.
    """
    if not request.query_params:
        return
    route = request.scope["route"]
    known = request.app.state.query_parameters  # per route; routes live as long as their app
    if id(route) not in known:
        known[id(route)] = _query_parameters(route)
    names, prefixes = known[id(route)]
    unknown = [key for key in dict.fromkeys(request.query_params) if key not in names and not _in_family(key, prefixes)]
    if unknown:
        listed = ", ".join(sorted(names) + [f"{p}KEY" for p in prefixes]) or "none"
        errors = [{"field": key, "message": "unknown query parameter", "type": "unknown_parameter"} for key in unknown]
        raise InvalidInput(
            f"unknown query parameter {', '.join(unknown)} (this route takes: {listed})",
            details={"field": unknown[0], "errors": errors},
        )


def _in_family(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key.startswith(prefix) and len(key) > len(prefix) for prefix in prefixes)


def _query_parameters(route: APIRoute) -> tuple[frozenset[str], tuple[str, ...]]:
    names: set[str] = set()
    prefixes: list[str] = []
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(field.alias for field in dependant.query_params)
        if dependant.call in QUERY_FAMILIES:
            prefixes.append(QUERY_FAMILIES[dependant.call])
        pending.extend(dependant.dependencies)
    return frozenset(names), tuple(prefixes)

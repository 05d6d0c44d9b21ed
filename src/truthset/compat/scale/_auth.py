"""Who is calling: the Scale client sends HTTP basic auth with the API key as the user name."""

from __future__ import annotations

import base64
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request

from truthset.domain import Principal
from truthset.errors import Unauthenticated
from truthset.services import accounts

MISSING = "an API key is required: HTTP basic auth with the truthset API key as the user name"


def _key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() != "basic" or not value:
        raise Unauthenticated(MISSING)
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except ValueError:
        raise Unauthenticated("malformed basic authorization header") from None
    key = decoded.split(":", 1)[0]
    if not key:
        raise Unauthenticated(MISSING)
    return key


async def principal(request: Request) -> Principal:
    """The API key's member (a wrong, revoked or disabled key: 401, which the client raises as
    ScaleUnauthorized)."""
    key = _key(request)
    db = request.app.state.db
    remembered = accounts.remembered_principal(db, key)
    if remembered is not None:
        return remembered
    return await anyio.to_thread.run_sync(accounts.authenticate, db, key)


Caller = Annotated[Principal, Depends(principal)]

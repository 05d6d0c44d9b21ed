"""Browser sessions for the web UI: the cookie, CSRF protection and the request side.

* A session is a 256-bit random token in an HttpOnly, SameSite=Lax cookie (Secure over https).
  Storing, loading and ending sessions, and sign-in with its throttling, are use cases in
  ``services/sessions.py``: the database keeps only a hash of the token, so sessions work across any
  number of server processes and a copy of the database opens none of them.
* CSRF: every session has a token derived from its secret (a different hash of it). Pages carry it in
  a ``<meta name="csrf-token">``; scripts send it as ``X-CSRF-Token`` and forms as ``csrf_token``.
  Unsafe methods authenticated by the cookie are refused without it. API-key calls need none: a
  browser never attaches an API key on its own. The sign-in form, which has no session yet, uses a
  double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request, Response

from truthset.domain import Principal
from truthset.errors import Forbidden, Unauthenticated
from truthset.services import sessions
from truthset.services.sessions import (
    ABSOLUTE,
    IDLE,
    MAX_FAILURES_PER_ADDRESS,
    MAX_FAILURES_PER_EMAIL_AND_ADDRESS,
    Choice,
    TooManyAttempts,
    check_password,
    destroy,
    start,
)
from truthset.storage import Database

# Sessions are stored and passwords checked in services/sessions.py; its names used with the
# cookie (the limits, the errors, start/destroy/check_password) are re-exported here.
__all__ = [
    "ABSOLUTE",
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "IDLE",
    "LOGIN_CSRF_COOKIE",
    "MAX_FAILURES_PER_ADDRESS",
    "MAX_FAILURES_PER_EMAIL_AND_ADDRESS",
    "Choice",
    "SessionInfo",
    "TooManyAttempts",
    "check_password",
    "clear_cookie",
    "csrf_for",
    "destroy",
    "load",
    "principal_from_request",
    "session_from_request",
    "set_cookie",
    "start",
]

COOKIE = "truthset_session"
LOGIN_CSRF_COOKIE = "truthset_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class SessionInfo:
    principal: Principal
    session_id: str
    csrf_token: str
    email: str
    name: str
    expires_at: datetime


def csrf_for(token: str) -> str:
    """The session's CSRF token: another hash of its secret, so nothing more is stored."""
    return hashlib.sha256(b"truthset-csrf\0" + token.encode()).hexdigest()


def load(db: Database, token: str | None) -> SessionInfo | None:
    """The live session of a cookie value with its CSRF token, or None (unknown, expired, or the
    member is disabled)."""
    active = sessions.load(db, token)
    if active is None:
        return None
    assert token is not None
    return SessionInfo(
        principal=active.principal,
        session_id=active.session_id,
        csrf_token=csrf_for(token),
        email=active.email,
        name=active.name,
        expires_at=active.expires_at,
    )


# --- requests --------------------------------------------------------------------------------------


def session_from_request(request: Request) -> SessionInfo | None:
    """The request's session (cookie), without any CSRF check: for rendering pages."""
    cached = getattr(request.state, "truthset_session", False)
    if cached is not False:
        return cached
    info = load(request.app.state.db, request.cookies.get(COOKIE))
    request.state.truthset_session = info
    return info


def csrf_ok(request: Request, info: SessionInfo, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(str(submitted).encode(), info.csrf_token.encode())


def principal_from_request(request: Request) -> Principal | None:
    """Who the session cookie authenticates, for API calls made by the UI's scripts.

    Unsafe methods must carry the session's CSRF token in ``X-CSRF-Token``.
    """
    if COOKIE not in request.cookies:
        return None
    info = session_from_request(request)
    if info is None:
        raise Unauthenticated("your session has ended: sign in again")
    if request.method not in SAFE_METHODS and not csrf_ok(request, info, request.headers.get(CSRF_HEADER)):
        raise Forbidden(
            "a CSRF token is required with a session cookie: send the X-CSRF-Token header",
            code="csrf_failed",
            details={"field": "X-CSRF-Token"},
        )
    return info.principal


def set_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ABSOLUTE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")

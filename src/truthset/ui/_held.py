"""The other organizations' sessions a browser holds, for switching between organizations.

Members are per organization and emails are not verified, so a session in one organization never
opens another because the email matches (anyone can found an organization with a member
``alice@example.com``). A browser enters an organization only with that membership's own password
(or by founding it, which makes the member from the founder's own row). Each such sign-in is an
ordinary session; the one in use is the ``truthset_session`` cookie, the others wait in
``truthset_other_sessions`` (HttpOnly, like the first), so switching back is instant and needs no
password. The organizations page lists only the organizations of the sessions this browser holds:
nothing is looked up by email. Signing out ends them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response

from truthset.api import session
from truthset.services import accounts, sessions

__all__ = ["COOKIE", "MAX_HELD", "Held", "end_all", "held", "hold", "tokens"]

COOKIE = "truthset_other_sessions"
MAX_HELD = 8  # other organizations a browser keeps signed in (the oldest is signed out past this)


@dataclass(frozen=True, slots=True)
class Held:
    """A live session this browser holds, with its organization's name."""

    token: str
    session_id: str
    organization_id: str
    organization_name: str
    email: str
    role: str


def tokens(request: Request) -> list[str]:
    """The secrets in the cookie, well-formed ones only (the cookie is the browser's to tamper with)."""
    raw = request.cookies.get(COOKIE, "")
    return [token for token in raw.split(".") if sessions.valid_token_shape(token)][:MAX_HELD]


def held(request: Request) -> list[Held]:
    """The live sessions of the cookie (expired ones, or of a disabled member, are left out)."""
    db = request.app.state.db
    found: list[Held] = []
    for token in tokens(request):
        active = sessions.load(db, token)
        if active is None:
            continue
        org = accounts.get_organization(db, active.principal.organization_id)
        found.append(
            Held(
                token=token,
                session_id=active.session_id,
                organization_id=active.principal.organization_id,
                organization_name=org["name"] if org else active.principal.organization_id,
                email=active.email,
                role=str(active.principal.role),
            )
        )
    return found


def hold(response: Response, request: Request, kept: list[str]) -> None:
    """Write the cookie: the secrets of the sessions waiting (newest first), or delete it if none."""
    kept = list(dict.fromkeys(kept))[:MAX_HELD]
    if not kept:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_https(request))
        return
    response.set_cookie(
        COOKIE,
        ".".join(kept),
        max_age=int(session.ABSOLUTE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_https(request),
    )


def end_all(response: Response, request: Request) -> None:
    """Sign out of every organization the browser holds (the sign-out button)."""
    db = request.app.state.db
    for token in tokens(request):
        sessions.destroy(db, token)
    hold(response, request, [])


def _https(request: Request) -> bool:
    return request.url.scheme == "https"

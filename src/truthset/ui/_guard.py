"""Every page's preamble, once: the session (else the sign-in page), the project, the policy check.

A page calls :func:`guard` first and either gets a :class:`Guarded` (who is asking, and the project
when the page is a project's) or the response to send instead: a redirect to sign in, or the error
page (404 for a project of another organization, exactly like a missing one; 403 for a role the
policy refuses). The checks are the API's (``services/policy.py``), so a direct URL is refused the
same way as the link that is not shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from truthset.api import session
from truthset.errors import Forbidden, NotFound, TruthsetError, Unauthenticated
from truthset.services import projects
from truthset.services.policy import Action, require
from truthset.storage import Database
from truthset.ui._render import page

__all__ = ["Guarded", "guard"]


@dataclass(frozen=True, slots=True)
class Guarded:
    """What a page may go on with: the session, and the project the page is about (if any)."""

    info: session.SessionInfo
    project: dict[str, Any] | None = None

    @property
    def principal(self) -> Any:
        return self.info.principal


def guard(request: Request, action: Action | None = None, *, project_id: str | None = None) -> Guarded | Response:
    """The session, then the project (``project_id``: 404 unless in the caller's organization), then
    ``require(action)``; or the response to send instead of the page."""
    info = session.session_from_request(request)
    if info is None:
        return _to_login(request)
    try:
        project = projects.get_project(_db(request), info.principal, project_id) if project_id else None
        if action is not None:
            require(info.principal, action)
    except TruthsetError as exc:
        return _failure(request, exc)
    return Guarded(info=info, project=project)


def _db(request: Request) -> Database:
    return request.app.state.db


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def _error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    return page(request, "error.html", status_code=status_code, code=status_code, title=title, message=message)


def _failure(request: Request, exc: TruthsetError) -> Response:
    """A refusal as the error page: 404, 403, sign in again, or 400 with the service's message."""
    if isinstance(exc, NotFound):
        return _error_page(request, 404, "Not found", exc.message)
    if isinstance(exc, Forbidden):
        return _error_page(request, 403, "Not allowed", f"Your role does not allow this page ({exc.message}).")
    if isinstance(exc, Unauthenticated):
        return _to_login(request)
    return _error_page(request, 400, "Something is wrong", exc.message)

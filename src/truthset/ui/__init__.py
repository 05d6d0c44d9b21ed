"""The web UI: server-rendered Jinja2 pages plus small ES modules (no build step).

``install(app)`` adds the pages (sign-in, projects, the annotator and reviewer workbenches, the
manager's project page, a task's page with its history), the static files (with the vendored
libraries) and the question widgets. The pages' scripts talk to the REST API with the session cookie
and its CSRF token (see ``api/session.py``). Their security headers, a strict Content-Security-Policy
first, come from ``api/headers.py``, which the app sends on every response.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Match, NoMatchFound

from truthset.ui._account_pages import router as account_router
from truthset.ui._dashboard_pages import router as dashboard_pages
from truthset.ui._job_pages import router as job_pages
from truthset.ui._media_pages import router as media_pages
from truthset.ui._model_pages import router as model_pages
from truthset.ui._pages import STATIC_DIR, router
from truthset.ui._project_pages import router as project_pages
from truthset.ui._task_pages import router as task_pages
from truthset.ui._webhook_pages import router as webhook_pages

__all__ = ["PREFIXES", "install"]

#: The UI's paths: ``/`` and everything under these (the API lives under ``/api/``).
PREFIXES = ("/login", "/logout", "/projects/", "/tasks/", "/ui/", "/static/")
#: The members, API keys, account and organizations pages (``_account_pages.py``).
ACCOUNT_PREFIXES = ("/members", "/keys", "/account", "/organizations")
#: The webhook pages (``_webhook_pages.py``).
WEBHOOK_PREFIXES = ("/webhooks",)
#: The jobs page (``_job_pages.py``).
JOB_PREFIXES = ("/jobs",)
#: The images page (``_media_pages.py``); the files themselves are the API's (``/api/v1/media/{id}``).
MEDIA_PREFIXES = ("/media",)


class UiRoute(BaseRoute):
    """Hands the UI's paths to the UI (its own router behind the security headers).

    The UI is a separate ASGI application inside the server, not part of the API: its pages are not
    API operations, have no operation ids and stay out of the OpenAPI document and the API's route
    table (which the API tests walk).
    """

    def __init__(self, app: Any, *, exact: frozenset[str], prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.exact = exact
        self.prefixes = prefixes

    def matches(self, scope: dict[str, Any]) -> tuple[Match, dict[str, Any]]:
        if scope["type"] == "http" and (scope["path"] in self.exact or scope["path"].startswith(self.prefixes)):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


def install(app: FastAPI) -> None:
    """Serve the UI from ``app``: the pages, the static files and the question widgets."""
    pages = APIRouter(include_in_schema=False)
    pages.include_router(project_pages)  # first: /projects/new is not the page of a project "new"
    pages.include_router(task_pages)
    pages.include_router(dashboard_pages)
    pages.include_router(model_pages)
    pages.include_router(router)
    pages.include_router(account_router)
    pages.include_router(webhook_pages)
    pages.include_router(job_pages)
    pages.include_router(media_pages)
    pages.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    prefixes = PREFIXES + ACCOUNT_PREFIXES + WEBHOOK_PREFIXES + JOB_PREFIXES + MEDIA_PREFIXES
    app.router.routes.append(UiRoute(pages, exact=frozenset({"/"}), prefixes=prefixes))

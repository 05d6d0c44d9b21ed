"""The web UI: server-rendered Jinja2 pages plus small ES modules (no build step).

``install(app)`` adds the pages (sign-in, projects, the annotator workbench, the manager's project
page), the static files, the question widgets and the security headers of every page. The pages'
scripts talk to the REST API with the session cookie and its CSRF token (see ``api/session.py``).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from truthset.ui._pages import STATIC_DIR, router
from truthset.ui._security import SecurityHeadersMiddleware

__all__ = ["install"]


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeadersMiddleware, skip_prefixes=("/api/",))

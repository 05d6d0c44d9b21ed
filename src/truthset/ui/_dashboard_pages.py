"""A project's dashboard, exports and import pages.

Each page is guarded like the API it calls (``ui/_guard.py``): the dashboard needs
``READ_QUALITY`` (its figures' endpoint does), the exports page ``READ_TASKS`` (exports do), the
import page ``MANAGE_TASKS`` (imports do), so a direct URL answers 403 to a role the link is not
shown to. The pages are shells with their config in a JSON block; their modules
(``static/dashboard.js``, ``exports.js``, ``import.js``) work through the REST API with the session
cookie and its CSRF token, so the API's checks and messages are the only ones. The exports page
lists past exports on the server (keyset pages, links that work without script).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from truthset.domain import ReviewStatus, TaskStatus
from truthset.errors import InvalidInput, TruthsetError
from truthset.services import dashboard, formats, refit, task_browse
from truthset.services.policy import Action, allowed
from truthset.ui._guard import Guarded, _db, _failure, guard
from truthset.ui._render import page

router = APIRouter(include_in_schema=False)

EXPORTS_PAGE_SIZE = 20
#: The refresh period of the dashboard's figures (the page "moves" while work goes on).
REFRESH_SECONDS = 5
#: What the import page accepts, with the API's format names (``images`` is a zip of images, ``urls`` a
#: list of image URLs the server fetches through its outbound guard).
IMPORT_FORMATS = {
    "jsonl": "JSON Lines (.jsonl)",
    "json": "JSON array (.json)",
    "csv": "CSV (.csv)",
    "parquet": "Parquet (.parquet)",
    "label-studio": "Label Studio export (.json)",
    "images": "Images in a zip (.zip)",
    "urls": "Image URLs, one a line (.txt)",
}
_CURSOR = re.compile(r"^[0-9a-f]{24}$")


@router.get("/projects/{project_id}/dashboard")
def dashboard_page(request: Request, project_id: str) -> Response:
    """Progress, throughput, judgments, confidence, agreement, workers and cost (from one endpoint)."""
    guarded = guard(request, Action.READ_QUALITY, project_id=project_id)
    if not isinstance(guarded, Guarded):
        return guarded
    project = guarded.project
    config = {
        "project_id": project["id"],
        "refresh_seconds": REFRESH_SECONDS,
        "may_reinstate": allowed(guarded.principal, Action.MANAGE_PROJECTS),
        "may_refit": allowed(guarded.principal, Action.MANAGE_PROJECTS),
        "min_gold": refit.MIN_GOLD_TO_CALIBRATE,
    }
    return page(request, "dashboard.html", project=project, config=config)


@router.get("/projects/{project_id}/exports")
def exports_page(request: Request, project_id: str, cursor: str | None = None) -> Response:
    """Start an export (format and filters) and follow the project's exports: progress, download."""
    guarded = guard(request, Action.READ_TASKS, project_id=project_id)
    if not isinstance(guarded, Guarded):
        return guarded
    db, principal = _db(request), guarded.principal
    try:
        if cursor is not None and not _CURSOR.match(cursor):
            raise InvalidInput("cursor: not a page cursor", details={"field": "cursor"})
        rows, next_cursor = dashboard.project_exports(db, principal, project_id, cursor=cursor, limit=EXPORTS_PAGE_SIZE)
        batches = task_browse.batch_choices(db, principal, project_id, limit=200)
        last_cursor = _last_cursor(db, principal, project_id)
    except TruthsetError as exc:
        return _failure(request, exc)
    config = {
        "project_id": project_id,
        "last_cursor": last_cursor,
        "running": [row["id"] for row in rows if row["status"] in ("queued", "running")],
        # who may cancel: managers any export, everyone else their own (as the jobs API decides)
        "cancel_any": allowed(principal, Action.MANAGE_JOBS),
        "member_id": principal.member_id,
    }
    return page(
        request,
        "exports.html",
        project=guarded.project,
        exports=[_export_row(row) for row in rows],
        next_cursor=next_cursor,
        cursor=cursor,
        formats=formats.names(),
        batches=batches,
        statuses=[str(s) for s in TaskStatus],
        review_statuses=[str(s) for s in ReviewStatus],
        questions=[{"name": q["name"], "type": q["type"]} for q in guarded.project["spec"]["questions"]],
        last_cursor=last_cursor,
        # the cursor is exact to the microsecond; the page says it to the second
        last_cursor_label=f"{last_cursor[:19].replace('T', ' ')} UTC" if last_cursor else None,
        config=config,
    )


def _last_cursor(db: Any, principal: Any, project_id: str) -> str | None:
    """The delta cursor of the project's latest export that succeeded (for "changed since last")."""
    rows, _ = dashboard.project_exports(db, principal, project_id, limit=EXPORTS_PAGE_SIZE)
    for row in rows:
        if row["status"] == "succeeded" and isinstance(row["result"], dict) and row["result"].get("cursor"):
            return str(row["result"]["cursor"])
    return None


def _export_row(job: dict[str, Any]) -> dict[str, Any]:
    """A job as the exports table shows it: format, filters in words, progress, file, error."""
    payload, result = job["payload"] or {}, job["result"] if isinstance(job["result"], dict) else {}
    filters = {key: value for key, value in (payload.get("filters") or {}).items() if value not in (None, "")}
    words = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in filters.items()) or "all tasks"
    if payload.get("questions"):
        words += f"; questions {', '.join(payload['questions'])}"
    return {
        "id": job["id"],
        "format": payload.get("format", "?"),
        "filters": words,
        "status": job["status"],
        "done": job["progress"]["done"],
        "total": job["progress"]["total"],
        "tasks": result.get("tasks"),
        "size": result.get("size"),
        "error": job["error"],
        "created_at": job["created_at"],
        "download_name": result.get("download_name"),
    }


@router.get("/projects/{project_id}/import")
def import_page(request: Request, project_id: str) -> Response:
    """Upload a file of tasks; the page follows the import job and shows its report."""
    guarded = guard(request, Action.MANAGE_TASKS, project_id=project_id)
    if not isinstance(guarded, Guarded):
        return guarded
    try:
        batches = task_browse.batch_choices(_db(request), guarded.principal, project_id, limit=200)
    except TruthsetError as exc:
        return _failure(request, exc)
    settings = request.app.state.settings
    config = {"project_id": project_id, "max_bytes": settings.max_import_file_bytes}
    return page(
        request,
        "import.html",
        project=guarded.project,
        batches=batches,
        import_formats=IMPORT_FORMATS,
        archived=guarded.project["archived_at"] is not None,
        config=config,
    )

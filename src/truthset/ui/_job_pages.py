"""The Jobs page: the organization's background jobs (imports, exports, refits, re-ranks, model runs,
webhook deliveries), newest first, by kind and status, with Cancel for a job still waiting or running.

What it lists and who may cancel are the jobs service's rules (``GET /api/v1/jobs``,
``POST /api/v1/jobs/{id}/cancel``): managers and above see and cancel every job, other members the
jobs they started. Server-rendered; the filters are a GET form (a filtered view is a link), Cancel is
a POST form with the session's CSRF token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from truthset.api import session
from truthset.domain import JobStatus
from truthset.errors import NotFound, TruthsetError
from truthset.jobs import kinds
from truthset.services import jobs, projects
from truthset.services.policy import Action, allowed
from truthset.storage.ids import utcnow
from truthset.ui._account_pages import _cursor, _posted, _redirect, _render
from truthset.ui._guard import Guarded, _db, _failure, guard

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


@router.get("/jobs")
def job_list(request: Request, kind: str = "", status: str = "", cursor: str | None = None) -> Response:
    """The jobs the caller may see, newest first; ``kind`` and ``status`` narrow them."""
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info = guarded.info
    known = kinds()
    errors: dict[str, str] = {}
    if kind and kind not in known:
        errors["kind"] = f"kind must be one of {', '.join(known)}"
    if status and status not in {str(s) for s in JobStatus}:
        errors["status"] = f"status must be one of {', '.join(str(s) for s in JobStatus)}"
    rows: list[dict[str, Any]] = []
    next_cursor = None
    if not errors:
        try:
            found, next_cursor = jobs.list_jobs(
                _db(request),
                info.principal,
                kind=kind or None,
                status=JobStatus(status) if status else None,
                cursor=_cursor(cursor),
                limit=PAGE_SIZE,
            )
        except TruthsetError as exc:
            return _failure(request, exc)
        rows = [_row(info, job) for job in found]
        names = _project_names(request, info, {row["project_id"] for row in rows if row["project_id"]})
        rows = [{**row, "project_name": names.get(row["project_id"])} for row in rows]
    query = {key: value for key, value in {"kind": kind, "status": status}.items() if value}
    return _render(
        request,
        "jobs.html",
        status_code=422 if errors else 200,
        rows=rows,
        kinds=known,
        statuses=[str(s) for s in JobStatus],
        values={"kind": kind, "status": status},
        errors=errors,
        sees_all=allowed(info.principal, Action.READ_JOBS),
        this_url=f"/jobs?{urlencode({**query, 'cursor': cursor} if cursor else query)}",
        first_url=(f"/jobs?{urlencode(query)}" if query else "/jobs") if cursor else None,
        next_url=f"/jobs?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None,
    )


def _project_names(request: Request, info: session.SessionInfo, project_ids: set[str]) -> dict[str, str]:
    """The names of the projects a page of jobs names (at most one per job; a deleted one has none)."""
    names = {}
    for project_id in project_ids:
        try:
            names[project_id] = projects.get_project(_db(request), info.principal, project_id)["name"]
        except NotFound:
            continue
    return names


def _row(info: session.SessionInfo, job: dict[str, Any]) -> dict[str, Any]:
    """A job as the table shows it: what, where, how far, by whom, and whether the caller may cancel it."""
    payload = job["payload"] if isinstance(job["payload"], dict) else {}
    mine = job["created_by"] == info.principal.member_id
    return {
        "id": job["id"],
        "kind": job["kind"],
        "project_id": payload.get("project_id"),
        "status": job["status"],
        "done": job["progress"]["done"],
        "total": job["progress"]["total"],
        "created_at": job["created_at"],
        "by": "you" if mine else ("the system" if job["created_by"] is None else job["created_by"]),
        "error": job["error"],
        "may_cancel": jobs.may_cancel(info.principal, job),
        # a retry waiting out its backoff, or a job queued for later (the prune after a deletion)
        "waits_until": job["run_after"] if job["status"] == JobStatus.QUEUED and job["run_after"] > utcnow() else None,
    }


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, job_id: str) -> Response:
    """Cancel a job (the jobs service decides who may); back to the list the form was on."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    try:
        job = jobs.cancel(_db(request), info.principal, job_id)
    except TruthsetError as exc:
        return _failure(request, exc)
    back = form.get("back", "")
    target = back if back.startswith("/jobs") and "//" not in back else "/jobs"
    return _redirect(request, target, {"title": f"The {job['kind']} job {job_id} is canceled"})

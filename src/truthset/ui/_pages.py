"""The UI's pages. Each page checks the session, calls services, and renders a template.

Pages are read-only views (plus sign-in and sign-out); everything the workbench changes goes through
the REST API from the browser, with the session cookie and its CSRF token.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from truthset import questions
from truthset.api import session
from truthset.errors import TruthsetError, Unauthenticated
from truthset.questions import CompiledSpec
from truthset.services import projects, sessions
from truthset.services.policy import Action, allowed
from truthset.storage import Database
from truthset.ui import _held
from truthset.ui._guard import Guarded, _db, _error_page, _failure, guard
from truthset.ui._render import markdown, page

STATIC_DIR = Path(__file__).parent / "static"
WIDGETS_DIR = STATIC_DIR / "questions"

router = APIRouter(include_in_schema=False)


# --- helpers ---------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only same-site paths: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _project_summaries(db: Database, info: session.SessionInfo, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts = projects.project_counts(db, info.principal, [project["id"] for project in rows])
    return [_project_summary(db, info, project, counts[project["id"]]) for project in rows]


def _project_summary(
    db: Database, info: session.SessionInfo, project: dict[str, Any], counts: dict[str, int]
) -> dict[str, Any]:
    principal = info.principal
    summary: dict[str, Any] = {
        "project": project,
        "counts": counts,
        "pending": counts.get("pending", 0),
        "completed": counts.get("completed", 0),
        "total": sum(counts.values()),
        "batches": None,
    }
    if allowed(principal, Action.READ_TASKS):
        batches, _ = projects.list_batches(db, principal, project["id"], cursor=None, limit=100)
        summary["batches"] = batches
    return summary


# --- sign in and out -------------------------------------------------------------------------------


def _login_page(
    request: Request,
    *,
    status_code: int = 200,
    error: str | None = None,
    email: str = "",
    next_url: str = "/",
    choices: list[sessions.Choice] | None = None,
    notice: str | None = None,
) -> Response:
    token = request.cookies.get(session.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        status_code=status_code,
        session=None,
        error=error,
        email=email,
        next_url=_safe_next(next_url),
        choices=choices or [],
        login_csrf=token,
        notice=notice,
    )
    response.set_cookie(
        session.LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/", signed_out: bool = False) -> Response:
    if session.session_from_request(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next_url=next, notice="You are signed out." if signed_out else None)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))[:320]
    password = str(form.get("password", ""))
    organization_id = str(form.get("organization_id", "")) or None
    next_url = _safe_next(str(form.get("next", "/")))
    expected = request.cookies.get(session.LOGIN_CSRF_COOKIE, "")
    submitted = str(form.get(session.CSRF_FIELD, ""))
    if not expected or not secrets.compare_digest(expected.encode(), submitted.encode()):
        return _login_page(
            request, status_code=400, email=email, next_url=next_url, error="The form expired. Please sign in again."
        )
    address = request.client.host if request.client else "unknown"
    try:
        outcome = sessions.check_password(
            _db(request), email, password, address=address, organization_id=organization_id
        )
    except sessions.TooManyAttempts as exc:
        return _login_page(request, status_code=429, email=email, next_url=next_url, error=exc.message)
    except Unauthenticated:
        return _login_page(request, status_code=401, email=email, next_url=next_url, error="Wrong email or password.")
    if isinstance(outcome, list):
        return _login_page(
            request,
            email=email,
            next_url=next_url,
            choices=outcome,
            notice="This email belongs to several organizations: choose one and enter your password again.",
        )
    token = sessions.start(_db(request), outcome, replacing=request.cookies.get(session.COOKIE))
    response = RedirectResponse(next_url, status_code=303)
    session.set_cookie(response, request, token)
    response.delete_cookie(session.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.get("/logout")
def logout_form(request: Request) -> Response:
    if session.session_from_request(request) is None:
        return RedirectResponse("/login", status_code=303)
    return page(request, "logout.html")


@router.post("/logout")
async def logout(request: Request) -> Response:
    info = session.session_from_request(request)
    if info is not None:
        form = await request.form()
        if not session.csrf_ok(request, info, str(form.get(session.CSRF_FIELD, ""))):
            return _error_page(request, 403, "Not allowed", "The sign-out form expired: reload the page and try again.")
        sessions.destroy(_db(request), request.cookies.get(session.COOKIE))
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    session.clear_cookie(response, request)
    _held.end_all(response, request)  # and the other organizations' sessions this browser holds
    return response


# --- pages -----------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info, db = guarded.info, _db(request)
    try:
        rows, _ = projects.list_projects(db, info.principal, cursor=None, limit=200)
        summaries = _project_summaries(db, info, rows)
    except TruthsetError as exc:
        return _failure(request, exc)
    return page(
        request,
        "home.html",
        summaries=summaries,
        is_manager=allowed(info.principal, Action.READ_TASKS),
        may_review=allowed(info.principal, Action.REVIEW),
        may_create=allowed(info.principal, Action.MANAGE_PROJECTS),
    )


@router.get("/projects/{project_id}")
def project_page(request: Request, project_id: str) -> Response:
    """The manager's view of a project: status counts, batches, questions, export."""
    guarded = guard(request, Action.READ_TASKS, project_id=project_id)
    if not isinstance(guarded, Guarded):
        return guarded
    info, project = guarded.info, guarded.project
    try:
        summary = _project_summaries(_db(request), info, [project])[0]
    except TruthsetError as exc:
        return _failure(request, exc)
    return page(
        request,
        "project.html",
        s=summary,
        instructions=markdown(project["instructions"]),
        may_review=allowed(info.principal, Action.REVIEW),
        may_manage_projects=allowed(info.principal, Action.MANAGE_PROJECTS),
        admin_config={  # static/project-admin.js: batches and the project's actions, through the API
            "project_id": project["id"],
            "project_name": project["name"],
            "archived": project["archived_at"] is not None,
            "may_manage_projects": allowed(info.principal, Action.MANAGE_PROJECTS),
            "may_manage_tasks": allowed(info.principal, Action.MANAGE_TASKS),
            "may_delete_data": allowed(info.principal, Action.DELETE_PROJECT_DATA),
            "tasks": summary["total"],
        },
    )


@router.get("/projects/{project_id}/label")
def workbench(request: Request, project_id: str) -> Response:
    """The annotator workbench: the page is a shell; its module leases tasks through the API."""
    return _workbench_shell(request, project_id, Action.ANNOTATE, "workbench.html")


@router.get("/projects/{project_id}/review")
def review_workbench(request: Request, project_id: str) -> Response:
    """The reviewer workbench: a shell like the annotator's; its module claims reviews through the API."""
    return _workbench_shell(request, project_id, Action.REVIEW, "review.html")


def _workbench_shell(request: Request, project_id: str, action: Action, template: str) -> Response:
    """A page whose module works through the API: the project's fields, questions and widgets as config."""
    guarded = guard(request, action, project_id=project_id)
    if not isinstance(guarded, Guarded):
        return guarded
    info, project = guarded.info, guarded.project
    try:
        spec = CompiledSpec(project["spec"])
    except TruthsetError as exc:
        return _failure(request, exc)
    # a question asked for each candidate is one copy per candidate (`grade-0`, ...), with its group
    question_list = [{**q.model_dump(mode="json"), "group": q.group} for q in spec.questions]
    # a spec stored before hotkeys were kept off the workbench keys: the workbench keeps its key
    conflicts = questions.hotkey_conflicts(question_list)
    question_list = [questions.without_workbench_keys(q) for q in question_list]
    config = {
        "project_id": project["id"],
        "project_name": project["name"],
        "member_id": info.principal.member_id,
        "lease_seconds": project["lease_seconds"],
        "fields": [f.model_dump(mode="json") for f in spec.fields],
        "questions": question_list,
        "widgets": {q["type"]: f"/ui/widgets/{q['type']}.js" for q in question_list},
        "keys": questions.WORKBENCH_KEYS,
    }
    return page(
        request,
        template,
        project=project,
        instructions=markdown(project["instructions"]),
        questions=[{**q, "prompt_html": markdown(q.get("prompt") or "")} for q in question_list],
        config=config,
        archived=project["archived_at"] is not None,
        keys=questions.WORKBENCH_KEYS,
        key_conflicts=conflicts,
        key_actions=questions.KEY_ACTIONS,
    )


@router.get("/ui/widgets/{type_name}.js")
def widget(type_name: str) -> Response:
    """The ES module of a question type's widget: the type's own ``widget`` file (a plugin ships
    one), else the built-in ``static/questions/<type>.js``, else the generic JSON widget."""
    try:
        question_type = questions.get(type_name)
    except KeyError:
        return Response("// unknown question type\n", status_code=404, media_type="text/javascript")
    own = getattr(question_type, "widget", None)
    path = Path(own) if own else WIDGETS_DIR / f"{question_type.name}.js"
    if not path.is_file():
        path = WIDGETS_DIR / "json.js"
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

"""The pages that create and manage projects: new (and duplicate), edit, archived projects.

Each page checks the session and the same policy actions as the API (``MANAGE_PROJECTS``) before it
renders anything, so a direct URL answers 403 to a role that may not use it. The pages are shells:
their module (``static/spec-editor.js``) checks and saves through the REST API with the session
cookie and its CSRF token, so the API's rules and messages are the only ones.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from truthset import questions
from truthset.api import session
from truthset.errors import TruthsetError
from truthset.services import projects
from truthset.services.policy import Action
from truthset.ui._guard import Guarded, _db, _failure, guard
from truthset.ui._policy_form import policy_controls
from truthset.ui._render import page

router = APIRouter(include_in_schema=False)

#: What a new project starts from: one text field, one label question (the editor's form adds more).
STARTER_SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text", "label": "Text"}],
    "questions": [
        {"name": "sentiment", "type": "label", "prompt": "What is the tone?", "options": ["positive", "negative"]},
    ],
}
STARTER_POLICY: dict[str, Any] = {"overlap": 1}

ARCHIVED_PAGE_SIZE = 50


@router.get("/projects/new")
def new_project(request: Request) -> Response:
    """The spec editor for a new project; ``?from=<project id>`` starts from a copy of that project
    (its spec, instructions and policy; never its tasks): duplicating a project."""
    guarded = guard(request, Action.MANAGE_PROJECTS)
    if not isinstance(guarded, Guarded):
        return guarded
    source = request.query_params.get("from")  # "from" is a Python keyword: no parameter of that name
    try:
        start = projects.get_project(_db(request), guarded.principal, source) if source else None
    except TruthsetError as exc:
        return _failure(request, exc)
    values = {
        "name": f"{start['name']} (copy)"[:200] if start else "",
        "description": start["description"] if start else "",
        "instructions": start["instructions"] if start else "",
        "spec": start["spec"] if start else STARTER_SPEC,
        "quality": start["quality"] if start else STARTER_POLICY,
    }
    return _editor(request, project=None, values=values, copied_from=start)


@router.get("/projects/archived")
def archived_projects(request: Request, cursor: str | None = None) -> Response:
    """Archived projects (keyset pages), each with its page to unarchive it from."""
    guarded = guard(request, Action.MANAGE_PROJECTS)
    if not isinstance(guarded, Guarded):
        return guarded
    try:
        rows, next_cursor = _archived(request, guarded.info, cursor)
    except TruthsetError as exc:
        return _failure(request, exc)
    return page(request, "projects_archived.html", rows=rows, next_cursor=next_cursor, cursor=cursor)


def _archived(request: Request, info: session.SessionInfo, cursor: str | None) -> tuple[list, str | None]:
    """One keyset page of archived projects."""
    return projects.list_projects(
        _db(request), info.principal, cursor=cursor, limit=ARCHIVED_PAGE_SIZE, only_archived=True
    )


@router.get("/projects/{project_id}/edit")
def edit_project(request: Request, project_id: str) -> Response:
    """The spec editor on a project: its name, instructions, spec and policy."""
    guarded = guard(request, Action.MANAGE_PROJECTS, project_id=project_id)
    if not isinstance(guarded, Guarded):
        return guarded
    project = guarded.project
    values = {key: project[key] for key in ("name", "description", "instructions", "spec", "quality")}
    return _editor(request, project=project, values=values, copied_from=None)


def _editor(
    request: Request, *, project: dict[str, Any] | None, values: dict[str, Any], copied_from: dict[str, Any] | None
) -> Response:
    config = {
        "project_id": project["id"] if project else None,
        "values": values,
        "question_types": questions.names(),
        "field_types": [str(f) for f in questions.FieldType],
        "widget_base": "/ui/widgets/",
        "policy_controls": policy_controls(),
    }
    return page(
        request,
        "project_edit.html",
        project=project,
        values=values,
        config=config,
        copied_from=copied_from,
        question_types=config["question_types"],
        field_types=config["field_types"],
    )

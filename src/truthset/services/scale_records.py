"""Writes of the Scale-compatible API (compat/scale) that truthset's own services do not make.

A Scale project or task is a truthset project or task whose ``scale`` column holds what only the
Scale API has: a project's type, ``param_history`` and callback key; a task's type, params, tags
and callback. Creating, finalizing and canceling go through the ordinary services (projects.py,
tasks.py); this module holds the few other writes the Scale API makes, as use cases that own
their transaction and check the caller's permission, like every service. compat/scale calls them
and never writes storage itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from truthset.domain import Principal, TaskStatus
from truthset.errors import Conflict, InvalidInput, NotFound
from truthset.schemas import QualityPolicy
from truthset.services import lifecycle
from truthset.services.policy import Action, require
from truthset.services.projects import (
    checked_policy,
    complete_batch_if_done,
    load_project,
    load_task,
    mark_batch_completed_if_done,
)
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

#: A tag is also kept as a top-level key of ``tasks.scale`` so that a filter is one ``json_text``
#: comparison, the same on SQLite and PostgreSQL (``tags`` keeps the list, in order, for reading).
TAG_KEY = "tag:"


def with_tags(scale: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    """A task's Scale record with ``tags`` as its tags (the list and one key per tag)."""
    kept = {k: v for k, v in scale.items() if not k.startswith(TAG_KEY)}
    return {**kept, "tags": tags, **{f"{TAG_KEY}{tag}": True for tag in tags}}


def _scale_project(conn: Any, principal: Principal, project_id: str) -> dict[str, Any]:
    project = load_project(conn, principal, project_id, lock=True)
    if not project["scale"]:
        raise NotFound(f"project {project_id} not found")
    return project


def add_project_params(
    db: Database, principal: Principal, project_id: str, params: dict[str, Any], at: str
) -> dict[str, Any]:
    """Scale's ``setParams``: append ``params`` over the latest to the project's ``param_history``;
    returns the Scale record. Under the row lock: a concurrent first task's spec is not undone."""
    with db.write() as conn:
        project = _scale_project(conn, principal, project_id)
        require(principal, Action.MANAGE_PROJECTS)
        history = project["scale"]["param_history"]
        latest = {k: v for k, v in history[-1].items() if k not in ("version", "created_at")}
        entry = {**latest, **params, "version": len(history), "created_at": at}
        scale = {**project["scale"], "param_history": [*history, entry]}
        repo.change(conn, t.projects, principal.organization_id, project_id, scale=scale, updated_at=utcnow())
        return scale


def settle_project_spec(db: Database, principal: Principal, project_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The project's spec for its tasks: ``spec`` if the project still waits for its first task's
    (set now, with the quality policy checked against it), else the spec it has.

    One transaction with the project row locked: of two first tasks sent at once, one sets the spec
    and the other then compares with it, so no project ever holds tasks of two shapes.
    """
    with db.write() as conn:
        project = _scale_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        if not project["scale"].get("spec_pending"):
            return project["spec"]
        has_tasks = conn.execute(
            repo.scoped(t.tasks, principal.organization_id, t.tasks.c.id).where(t.tasks.c.project_id == project_id)
        ).first()
        if has_tasks is not None:  # tasks added through truthset's own API to the placeholder spec
            raise Conflict(
                f"project {project['name']!r} has tasks made outside the Scale API: set its spec in truthset"
            )
        quality = checked_policy(QualityPolicy.model_validate(project["quality"]), spec)
        scale = {**project["scale"], "spec_pending": False}
        repo.change(
            conn, t.projects, principal.organization_id, project_id, spec=spec, quality=quality, scale=scale,
            updated_at=utcnow(),
        )  # fmt: skip
        return spec


_KEEP = object()


def edit_task(
    db: Database,
    principal: Principal,
    task_id: str,
    *,
    unique_id: Any = _KEEP,
    metadata: Any = _KEEP,
    tags: Callable[[list[str]], Iterable[str]] | None = None,
) -> dict[str, Any]:
    """Change a Scale task's ``unique_id`` (None clears it; a duplicate in the organization: 409),
    its ``metadata``, or its tags: ``tags`` maps the current tags to the new ones under the row lock,
    so two concurrent tag edits never lose one another. Returns the task as changed."""
    with db.write() as conn:
        task = load_task(conn, principal, task_id, lock=True)
        if task["scale"] is None:
            raise NotFound(f"task {task_id} not found")
        require(principal, Action.MANAGE_TASKS)
        values: dict[str, Any] = {"updated_at": utcnow()}
        if metadata is not _KEEP:
            values["metadata"] = metadata
        if tags is not None:
            values["scale"] = with_tags(task["scale"], list(tags(list(task["scale"].get("tags", [])))))
        if unique_id is not _KEEP:
            if (
                unique_id is not None
                and unique_id != task["unique_id"]
                and repo.existing_unique_ids(conn, principal.organization_id, [unique_id])
            ):
                raise Conflict(f"a task with unique_id {unique_id!r} already exists", details={"field": "unique_id"})
            values["unique_id"] = unique_id
        repo.change(conn, t.tasks, principal.organization_id, task_id, **values)
        return {**task, **values}


#: Statuses Scale calls "pending" that a cancel may leave: staged (in an unfinalized batch) and pending.
_CANCELABLE = (str(TaskStatus.STAGED), str(TaskStatus.PENDING))


def cancel_pending_task(db: Database, principal: Principal, task_id: str, *, clear_unique_id: bool) -> dict[str, Any]:
    """Scale's cancel: only a task not yet completed may be canceled (a completed, canceled or gold
    one: 400), checked and moved under the row lock so a task completing meanwhile is never
    canceled; with ``clear_unique_id`` its ``unique_id`` is freed in the same transaction."""
    with db.write() as conn:
        task = load_task(conn, principal, task_id, lock=True)
        if task["scale"] is None:
            raise NotFound(f"task {task_id} not found")
        require(principal, Action.MANAGE_TASKS)
        if task["status"] not in _CANCELABLE:
            raise InvalidInput(
                f"task_id: task {task_id} is {task['status']}: only a pending task can be canceled",
                details={"field": "task_id"},
            )
        values = {"unique_id": None} if clear_unique_id else {}
        task = lifecycle.move(conn, task, TaskStatus.CANCELED, **values)
        mark_batch_completed_if_done(conn, principal.organization_id, task["batch_id"])
    complete_batch_if_done(db, principal.organization_id, task["batch_id"])
    return task

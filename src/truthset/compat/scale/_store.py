"""Scale objects over truthset's: lookups by Scale name, and the few writes the Scale API adds.

A Scale project is a truthset project whose ``scale`` column holds its Scale type and params; a
Scale task a truthset task whose ``scale`` column holds its type, params, tags and callback. Every
query is scoped to the caller's organization (``repo.scoped``); another organization's object is
"not found", as in truthset's own API. Creating, finalizing and canceling go through truthset's
services; only the Scale-only columns (and unique_id/metadata edits) are written here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from truthset.domain import Principal, ReviewStatus, TaskStatus
from truthset.errors import Conflict, InvalidInput, NotFound
from truthset.schemas import QualityPolicy
from truthset.services.policy import Action, require
from truthset.services.projects import checked_policy
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

#: Scale's task statuses -> truthset's (a staged task, in an unfinalized batch, is pending to Scale).
STATUSES: dict[str, tuple[str, ...]] = {
    "pending": (str(TaskStatus.STAGED), str(TaskStatus.PENDING), str(TaskStatus.GOLD)),
    "completed": (str(TaskStatus.COMPLETED),),
    "canceled": (str(TaskStatus.CANCELED),),
    "error": (),
}
#: A tag is also kept as a top-level key of ``tasks.scale`` so that a filter is one ``json_text``
#: comparison, the same on SQLite and PostgreSQL (``tags`` keeps the list, in order, for reading).
TAG_KEY = "tag:"


def tag_keys(tags: Iterable[str]) -> dict[str, bool]:
    return {f"{TAG_KEY}{tag}": True for tag in tags}


def with_tags(scale: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    kept = {k: v for k, v in scale.items() if not k.startswith(TAG_KEY)}
    return {**kept, "tags": tags, **tag_keys(tags)}


# --- projects -----------------------------------------------------------------------------------


def project_by_name(db: Database, principal: Principal, name: str) -> dict[str, Any]:
    require(principal, Action.READ_PROJECTS)
    p = t.projects.c
    query = repo.scoped(t.projects, principal.organization_id).where(p.name == name, p.scale.is_not(None))
    with db.read() as conn:
        row = conn.execute(query.order_by(p.id).limit(1)).mappings().first()
    if row is None:
        raise NotFound(f"project {name!r} not found")
    return dict(row)


def project_name_taken(db: Database, principal: Principal, name: str) -> bool:
    p = t.projects.c
    query = repo.scoped(t.projects, principal.organization_id, p.id).where(p.name == name, p.scale.is_not(None))
    with db.read() as conn:
        return conn.execute(query.limit(1)).first() is not None


def scale_projects(db: Database, principal: Principal) -> list[dict[str, Any]]:
    require(principal, Action.READ_PROJECTS)
    p = t.projects.c
    query = repo.scoped(t.projects, principal.organization_id).where(p.scale.is_not(None)).order_by(p.id)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def add_params(db: Database, principal: Principal, project_id: str, params: dict[str, Any], at: str) -> dict[str, Any]:
    """Append ``params`` over the latest to the project's ``param_history`` (Scale's setParams);
    returns the Scale record. Under the row lock: a concurrent first task's spec is not undone."""
    with db.write() as conn:
        require(principal, Action.MANAGE_PROJECTS)
        project = repo.get(conn, t.projects, principal.organization_id, project_id, lock=True)
        if project is None or not project["scale"]:
            raise NotFound(f"project {project_id} not found")
        history = project["scale"]["param_history"]
        latest = {k: v for k, v in history[-1].items() if k not in ("version", "created_at")}
        entry = {**latest, **params, "version": len(history), "created_at": at}
        scale = {**project["scale"], "param_history": [*history, entry]}
        repo.change(conn, t.projects, principal.organization_id, project_id, scale=scale, updated_at=utcnow())
        return scale


def settle_spec(db: Database, principal: Principal, project_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The project's spec for its tasks: ``spec`` if the project still waits for its first task's
    (set now, with the policy checked against it), else the spec it has.

    One transaction with the project row locked: of two first tasks sent at once, one sets the spec
    and the other then compares with it, so no project ever holds tasks of two shapes.
    """
    with db.write() as conn:
        require(principal, Action.MANAGE_TASKS)
        project = repo.get(conn, t.projects, principal.organization_id, project_id, lock=True)
        if project is None or not project["scale"]:
            raise NotFound(f"project {project_id} not found")
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


def names(db: Database, principal: Principal, table: Any, ids: Iterable[str | None]) -> dict[str, str]:
    """``{id: name}`` of the organization's projects or batches among ``ids``."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    query = repo.scoped(table, principal.organization_id, table.c.id, table.c.name).where(table.c.id.in_(wanted))
    with db.read() as conn:
        return {row.id: row.name for row in conn.execute(query)}


# --- batches ------------------------------------------------------------------------------------


def _batch_query(principal: Principal) -> Select:
    b, p = t.batches.c, t.projects.c
    return (
        select(t.batches, p.name.label("project_name"))
        .join(t.projects, p.id == b.project_id)
        .where(b.organization_id == principal.organization_id, p.organization_id == principal.organization_id)
        .where(p.scale.is_not(None))
    )


def batch_by_name(db: Database, principal: Principal, name: str) -> dict[str, Any]:
    require(principal, Action.READ_TASKS)
    with db.read() as conn:
        query = _batch_query(principal).where(t.batches.c.name == name).order_by(t.batches.c.id).limit(1)
        row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"batch {name!r} not found")
    return dict(row)


def batch_name_taken(db: Database, principal: Principal, name: str) -> bool:
    with db.read() as conn:
        return conn.execute(_batch_query(principal).where(t.batches.c.name == name).limit(1)).first() is not None


def list_batches(
    db: Database,
    principal: Principal,
    *,
    project_id: str | None,
    statuses: tuple[str, ...] | None,
    created_after: datetime | None,
    created_before: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of batches (offset pages: the Scale client pages batches by offset) and the total."""
    require(principal, Action.READ_TASKS)
    b = t.batches.c
    query = _batch_query(principal)
    if project_id is not None:
        query = query.where(b.project_id == project_id)
    if statuses is not None:
        query = query.where(b.status.in_(statuses))
    if created_after is not None:
        query = query.where(b.created_at >= created_after)
    if created_before is not None:
        query = query.where(b.created_at < created_before)
    with db.read() as conn:
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(b.id).offset(offset).limit(limit)).mappings()
        return [dict(r) for r in rows], int(total)


# --- tasks --------------------------------------------------------------------------------------


def scale_task(db: Database, principal: Principal, task_id: str, *, lock: bool = False) -> dict[str, Any]:
    require(principal, Action.READ_TASKS)
    with db.read() as conn:
        task = repo.get(conn, t.tasks, principal.organization_id, task_id)
    if task is None or task["scale"] is None:
        raise NotFound(f"task {task_id} not found")
    return task


def unique_id_taken(db: Database, principal: Principal, unique_id: str) -> bool:
    with db.read() as conn:
        return bool(repo.existing_unique_ids(conn, principal.organization_id, [unique_id]))


def change_task(
    db: Database,
    principal: Principal,
    task_id: str,
    *,
    tags: Callable[[list[str]], list[str]] | None = None,
    **values: Any,
) -> dict[str, Any]:
    """Change a Scale task's unique_id or metadata (a duplicate unique_id: 409), or its tags:
    ``tags`` maps the current tags to the new ones, under the row lock (no update is lost)."""
    with db.write() as conn:
        require(principal, Action.MANAGE_TASKS)
        task = repo.get(conn, t.tasks, principal.organization_id, task_id, lock=True)
        if task is None or task["scale"] is None:
            raise NotFound(f"task {task_id} not found")
        if tags is not None:
            values["scale"] = with_tags(task["scale"], tags(list(task["scale"].get("tags", []))))
        unique_id = values.get("unique_id")
        if (
            unique_id is not None
            and unique_id != task["unique_id"]
            and repo.existing_unique_ids(conn, principal.organization_id, [unique_id])
        ):
            raise Conflict(f"a task with unique_id {unique_id!r} already exists", details={"field": "unique_id"})
        values["updated_at"] = utcnow()
        repo.change(conn, t.tasks, principal.organization_id, task_id, **values)
        return {**task, **values}


def task_query(
    principal: Principal,
    *,
    project_id: str | None,
    batch_id: str | None,
    kind: str | None,
    status: str | None,
    review_statuses: list[str] | None,
    unique_ids: list[str] | None,
    tags: list[str] | None,
    ranges: dict[str, tuple[datetime | None, datetime | None]],
) -> Select:
    """The organization's Scale tasks matching the filters of ``GET /tasks``, unordered."""
    c = t.tasks.c
    query = repo.scoped(t.tasks, principal.organization_id).where(c.scale.is_not(None))
    if project_id is not None:
        query = query.where(c.project_id == project_id)
    if batch_id is not None:
        query = query.where(c.batch_id == batch_id)
    if kind is not None:
        query = query.where(repo.json_text(c.scale, "type") == kind)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"status: {status!r} is not one of {', '.join(STATUSES)}", details={"field": "status"})
        query = query.where(c.status.in_(STATUSES[status]))
    if review_statuses:
        known = {str(s) for s in ReviewStatus}
        query = query.where(c.review_status.in_([s for s in review_statuses if s in known]))
    if unique_ids:
        query = query.where(c.unique_id.in_(unique_ids))
    for tag in tags or []:
        query = query.where(repo.json_text(c.scale, f"{TAG_KEY}{tag}") == "true")
    for column, (after, before) in ((getattr(c, name), bounds) for name, bounds in ranges.items()):
        if after is not None:
            query = query.where(column >= after)
        if before is not None:
            query = query.where(column < before)
    return query


def task_page(
    db: Database, principal: Principal, query: Select, *, cursor: str | None, limit: int
) -> tuple[list, str | None, int]:
    """A keyset page of ``query`` (by id, so a page never repeats or skips a task) and the total."""
    require(principal, Action.READ_TASKS)
    with db.read() as conn:
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows, next_cursor = repo.page(conn, query, t.tasks, cursor=cursor, limit=limit)
    return rows, next_cursor, int(total)

"""Scale objects over truthset's: the reads the Scale API needs (lookups by name, its filters).

A Scale project is a truthset project whose ``scale`` column holds its Scale type and params; a
Scale task a truthset task whose ``scale`` column holds its type, params, tags and callback. Every
query is scoped to the caller's organization (``repo.scoped``); another organization's object is
"not found", as in truthset's own API. Nothing is written here: writes go through truthset's
services (projects, tasks, and scale_records for the Scale-only columns).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from truthset.domain import Principal, ReviewStatus, TaskStatus
from truthset.errors import InvalidInput, NotFound
from truthset.services.policy import Action, require
from truthset.services.scale_records import TAG_KEY
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

#: Scale's task statuses -> truthset's (a staged task, in an unfinalized batch, is pending to Scale).
STATUSES: dict[str, tuple[str, ...]] = {
    "pending": (str(TaskStatus.STAGED), str(TaskStatus.PENDING), str(TaskStatus.GOLD)),
    "completed": (str(TaskStatus.COMPLETED),),
    "canceled": (str(TaskStatus.CANCELED),),
    "error": (),
}
#: Scale's review statuses (scaleapi ``TaskReviewStatus``) -> truthset's: a task a reviewer holds is
#: still pending to Scale; truthset has no "commented" (a comment is not a verdict).
REVIEW_STATUSES: dict[str, tuple[str, ...]] = {
    "pending": (str(ReviewStatus.PENDING), str(ReviewStatus.REVIEWING)),
    "accepted": (str(ReviewStatus.ACCEPTED),),
    "rejected": (str(ReviewStatus.REJECTED),),
    "fixed": (str(ReviewStatus.FIXED),),
    "commented": (),
}
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
        unknown = [s for s in review_statuses if s not in REVIEW_STATUSES]
        if unknown:
            raise InvalidInput(
                f"customer_review_status: {unknown[0]!r} is not one of {', '.join(REVIEW_STATUSES)}",
                details={"field": "customer_review_status"},
            )
        query = query.where(c.review_status.in_([ours for s in review_statuses for ours in REVIEW_STATUSES[s]]))
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

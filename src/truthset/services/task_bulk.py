"""Bulk actions on a project's tasks (the task browser's selection): cancel, re-queue, set priority,
promote the result to gold.

The tasks are named by id or by a filter (the browser's "select all matching"). They are changed in
blocks of :data:`BLOCK` tasks, one transaction per block, so a large selection never holds a long
write transaction; the answer counts what changed and what was skipped (a task the action does not
apply to, e.g. cancelling a completed task). Every task moves through ``services/lifecycle.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func

from truthset.domain import BatchStatus, Principal, ReviewStatus, TaskStatus
from truthset.errors import InvalidInput
from truthset.services import gold, lifecycle
from truthset.services.events import add_event
from truthset.services.policy import Action, require
from truthset.services.projects import (
    complete_batch_if_done,
    load_project,
    mark_batch_completed_if_done,
    require_active,
)
from truthset.services.tasks import TaskFilter, task_query
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

ACTIONS = ("cancel", "requeue", "set_priority", "promote_gold")
#: Tasks changed per transaction.
BLOCK = 500
#: The most ids one request may name (a larger selection goes by filter).
MAX_IDS = 10_000
#: Tasks a review holds: re-queueing them would pull a result out from under its reviewer.
_IN_REVIEW = (str(ReviewStatus.PENDING), str(ReviewStatus.REVIEWING))


def bulk_action(
    db: Database,
    principal: Principal,
    project_id: str,
    action: str,
    *,
    ids: Sequence[str] | None = None,
    filters: TaskFilter | None = None,
    priority: int | None = None,
    dry_run: bool = False,
) -> dict[str, int]:
    """Apply ``action`` to the project's tasks named by ``ids`` or matching ``filters``.

    Returns ``{"matched", "changed", "skipped"}``: ids of other projects or organizations are never
    matched (they count in neither number: they do not exist for this caller). A ``dry_run`` only
    counts the tasks matched (what a confirmation asks about), changing nothing.
    """
    require(principal, Action.MANAGE_TASKS)
    _check(action, ids, filters, priority)
    with db.read() as conn:
        require_active(load_project(conn, principal, project_id))
        if dry_run:
            return {"matched": _count(conn, principal, project_id, ids, filters), "changed": 0, "skipped": 0}
    counts = {"matched": 0, "changed": 0, "skipped": 0}
    batches: set[str] = set()
    blocks = (
        _id_blocks(list(dict.fromkeys(ids))) if ids is not None else _filter_blocks(db, principal, project_id, filters)
    )
    for block in blocks:
        with db.write() as conn:
            project = load_project(conn, principal, project_id)
            for task in _load(conn, principal, project_id, block):
                counts["matched"] += 1
                changed = _apply(conn, principal, project, task, action, priority)
                counts["changed" if changed else "skipped"] += 1
                if changed and task["batch_id"]:
                    batches.add(task["batch_id"])
            if action == "cancel" or action == "promote_gold":
                for batch_id in batches:
                    mark_batch_completed_if_done(conn, principal.organization_id, batch_id)
            if counts["changed"] and action in ("requeue", "set_priority"):
                repo.bump_queue_epoch(conn, project_id)  # the queue's order changed under its workers
    for batch_id in batches:
        complete_batch_if_done(db, principal.organization_id, batch_id)
    return counts


def _check(action: str, ids: Sequence[str] | None, filters: TaskFilter | None, priority: int | None) -> None:
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}", details={"field": "action"})
    if (ids is None) == (filters is None):
        raise InvalidInput("give either ids or filter", details={"field": "ids"})
    if ids is not None and len(ids) > MAX_IDS:
        raise InvalidInput(f"ids may name at most {MAX_IDS} tasks; use filter", details={"field": "ids"})
    if action == "set_priority" and priority is None:
        raise InvalidInput("priority is required to set the priority", details={"field": "priority"})


def _count(
    conn: Connection, principal: Principal, project_id: str, ids: Sequence[str] | None, filters: TaskFilter | None
) -> int:
    if ids is not None:
        return sum(len(_load(conn, principal, project_id, block, lock=False)) for block in _id_blocks(list(set(ids))))
    assert filters is not None
    query = task_query(principal, replace(filters, project_id=project_id), func.count())
    return int(conn.execute(query).scalar_one())


def _id_blocks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), BLOCK):
        yield ids[start : start + BLOCK]


def _filter_blocks(
    db: Database, principal: Principal, project_id: str, filters: TaskFilter | None
) -> Iterator[list[str]]:
    """The matching ids, a keyset page at a time (read before each block is changed)."""
    assert filters is not None
    query = task_query(principal, replace(filters, project_id=project_id), t.tasks.c.id)
    cursor: str | None = None
    while True:
        with db.read() as conn:
            rows, cursor = repo.page(conn, query, t.tasks, cursor=cursor, limit=BLOCK)
        if rows:
            yield [row["id"] for row in rows]
        if cursor is None:
            return


def _load(
    conn: Connection, principal: Principal, project_id: str, ids: list[str], *, lock: bool = True
) -> list[dict[str, Any]]:
    query = repo.scoped(t.tasks, principal.organization_id).where(
        t.tasks.c.project_id == project_id, t.tasks.c.id.in_(ids)
    )
    query = query.order_by(t.tasks.c.id)
    return [dict(row) for row in conn.execute(query.with_for_update() if lock else query).mappings()]


def _apply(
    conn: Connection,
    principal: Principal,
    project: dict[str, Any],
    task: dict[str, Any],
    action: str,
    priority: int | None,
) -> bool:
    """Apply one action to one task (locked in this transaction); False if it does not apply."""
    if action == "cancel":
        if task["status"] not in lifecycle.sources(TaskStatus.CANCELED):
            return False
        lifecycle.move(conn, task, TaskStatus.CANCELED)
        add_event(conn, task, "canceled", {"by": principal.member_id})
        return True
    if action == "set_priority":
        if task["priority"] == priority:
            return False
        repo.change(conn, t.tasks, task["organization_id"], task["id"], priority=priority, updated_at=utcnow())
        return True
    if action == "requeue":
        return _requeue(conn, principal, task)
    return gold.promote_result(conn, principal, project, task)


def _requeue(conn: Connection, principal: Principal, task: dict[str, Any]) -> bool:
    """A completed task asks for one more judgment; a canceled one returns to its batch's queue.

    Skipped: tasks in any other status, tasks waiting for or under review, and canceled tasks of a
    canceled batch (the batch stays canceled).
    """
    status = task["status"]
    data = {"by": principal.member_id, "from_status": status}
    if status == str(TaskStatus.COMPLETED) and task["review_status"] not in _IN_REVIEW:
        task = lifecycle.reopen(conn, task, max(task["overlap"], task["response_count"] + 1))
    elif status == str(TaskStatus.CANCELED):
        batch = repo.get(conn, t.batches, task["organization_id"], task["batch_id"]) if task["batch_id"] else None
        batch_status = batch["status"] if batch else None
        if batch_status == str(BatchStatus.CANCELED):
            return False
        if batch_status in (str(BatchStatus.OPEN), str(BatchStatus.PAUSED)):
            task = lifecycle.move(conn, task, TaskStatus.STAGED)
        else:
            task = lifecycle.reopen(conn, task, task["overlap"])
    else:
        return False
    add_event(conn, task, "requeued", {**data, "to_status": task["status"], "overlap": task["overlap"]})
    return True

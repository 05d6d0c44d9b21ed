"""The task state machine: the only place a task's status changes.

staged --finalize--> pending --overlap reached--> completed
staged | pending --cancel--> canceled
staged | pending | completed --mark gold--> gold --unmark--> staged | pending | completed
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, update

from truthset.domain import TaskStatus
from truthset.errors import Conflict
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.STAGED: frozenset({TaskStatus.PENDING, TaskStatus.CANCELED, TaskStatus.GOLD}),
    TaskStatus.PENDING: frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELED, TaskStatus.GOLD}),
    TaskStatus.COMPLETED: frozenset({TaskStatus.GOLD}),
    TaskStatus.CANCELED: frozenset(),
    # unmarked: back to the batch's queue (staged while the batch is open), or completed when it has
    # its judgments already (services/gold.py decides which)
    TaskStatus.GOLD: frozenset({TaskStatus.STAGED, TaskStatus.PENDING, TaskStatus.COMPLETED}),
}


def sources(target: TaskStatus) -> tuple[str, ...]:
    """Statuses from which a task may move to ``target``."""
    return tuple(str(s) for s, targets in TRANSITIONS.items() if target in targets)


def move(conn: Connection, task: dict[str, Any], target: TaskStatus, **values: Any) -> dict[str, Any]:
    """Move one task (already loaded in this transaction) to ``target``, with extra column values."""
    current = TaskStatus(task["status"])
    if target not in TRANSITIONS[current]:
        raise Conflict(f"a {current} task cannot become {target}", details={"status": str(current)})
    now = utcnow()
    values = {"status": str(target), "updated_at": now, **values}
    if target is TaskStatus.COMPLETED:
        values.setdefault("completed_at", now)
    repo.change(conn, t.tasks, task["organization_id"], task["id"], **values)
    return {**task, **values}


def move_batch(conn: Connection, batch_id: str, target: TaskStatus) -> None:
    """Move every task of a batch that may make the move (finalize, cancel).

    Gold tasks stay gold: they leave that status only when unmarked, one by one.
    """
    movable = tuple(s for s in sources(target) if s != TaskStatus.GOLD)
    conn.execute(
        update(t.tasks)
        .where(t.tasks.c.batch_id == batch_id, t.tasks.c.status.in_(movable))
        .values(status=str(target), updated_at=utcnow())
    )

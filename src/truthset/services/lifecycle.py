"""The task state machine: the only place a task's status changes.

staged --finalize--> pending --overlap reached--> completed
pending --its batch is paused (no live lease)--> staged --resumed--> pending
staged | pending --cancel--> canceled
staged | pending | completed --mark gold--> gold --unmark--> staged | pending | completed
completed --a reviewer rejects the result--> pending (one task at a time, never a batch-wide move)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, update

from truthset.domain import BatchStatus, TaskStatus
from truthset.errors import Conflict
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.STAGED: frozenset({TaskStatus.PENDING, TaskStatus.CANCELED, TaskStatus.GOLD}),
    # pending -> staged: a paused batch's waiting tasks leave the queue (pause_batch below)
    TaskStatus.PENDING: frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELED, TaskStatus.GOLD, TaskStatus.STAGED}),
    # a reviewer's reject reopens a completed task (services/review.py, through reopen below)
    TaskStatus.COMPLETED: frozenset({TaskStatus.PENDING, TaskStatus.GOLD}),
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
    elif current is TaskStatus.COMPLETED and target is TaskStatus.PENDING:
        values.setdefault("completed_at", None)
    repo.change(conn, t.tasks, task["organization_id"], task["id"], **values)
    return {**task, **values}


def move_batch(conn: Connection, batch_id: str, target: TaskStatus) -> None:
    """Move every task of a batch that may make the move (finalize, cancel).

    Gold and completed tasks stay as they are: they leave those statuses one by one (a gold task when
    unmarked, a completed one when a reviewer rejects its result).
    """
    movable = tuple(s for s in sources(target) if s not in (TaskStatus.GOLD, TaskStatus.COMPLETED))
    conn.execute(
        update(t.tasks)
        .where(t.tasks.c.batch_id == batch_id, t.tasks.c.status.in_(movable))
        .values(status=str(target), updated_at=utcnow())
    )


def pause_batch(conn: Connection, batch_id: str) -> int:
    """Take a batch's waiting tasks out of the queue (pending -> staged); returns how many.

    A task out on a live lease stays pending: its worker's answer is still taken. Expired leases
    should be returned first (``repo.expire_leases``) so their tasks are paused too.
    """
    result = conn.execute(
        update(t.tasks)
        .where(t.tasks.c.batch_id == batch_id, t.tasks.c.status == str(TaskStatus.PENDING), t.tasks.c.lease_count == 0)
        .values(status=str(TaskStatus.STAGED), updated_at=utcnow())
    )
    return int(result.rowcount or 0)


def reopen(conn: Connection, task: dict[str, Any], overlap: int, **values: Any) -> dict[str, Any]:
    """A completed task goes back to the queue asking for ``overlap`` judgments in all (a review's reject).

    Its batch, if it had completed, is finalized again (it has a task in the queue once more), and the
    project's queue epoch moves on: workers whose queue search had passed the task must find it again.
    """
    task = move(conn, task, TaskStatus.PENDING, overlap=overlap, **values)
    batch_id = task["batch_id"]
    if batch_id is not None:
        batch = repo.get(conn, t.batches, task["organization_id"], batch_id, lock=True)
        if batch is not None and batch["status"] == str(BatchStatus.COMPLETED):
            repo.change(
                conn, t.batches, task["organization_id"], batch_id, status=str(BatchStatus.FINALIZED), completed_at=None
            )
    repo.bump_queue_epoch(conn, task["project_id"])
    return task

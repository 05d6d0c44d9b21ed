"""When a task made through the Scale-compatible API completes, its callback becomes due.

The Scale API promises a POST of the finished task to the task's ``callback_url``. That POST is a
``scale.callback`` job (run by ``compat/scale``'s handler), enqueued here in the transaction that
completes the task: the callback is due exactly when the completion commits, and never otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from truthset.services import jobs
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

KIND = "scale.callback"
MAX_ATTEMPTS = 8


def enqueue_if_due(conn: Connection, task: Mapping[str, Any]) -> dict[str, Any] | None:
    """Enqueue the task's callback if it was made with a ``callback_url``; returns the job, or None."""
    scale = task["scale"] if "scale" in task else _scale_of(conn, task)
    if not scale or not scale.get("callback_url"):
        return None
    return jobs.enqueue(
        conn,
        task["organization_id"],
        KIND,
        {"task_id": task["id"]},
        dedupe_key=f"{KIND}:{task['id']}",  # one waiting delivery per task, however often it completes
        max_attempts=MAX_ATTEMPTS,
    )


def _scale_of(conn: Connection, task: Mapping[str, Any]) -> dict[str, Any] | None:
    """The task's Scale record, when the caller's row was read without that column."""
    query = select(t.tasks.c.scale).where(
        t.tasks.c.organization_id == task["organization_id"], t.tasks.c.id == task["id"]
    )
    return conn.execute(query).scalar()


def record_outcome(db: Database, organization_id: str, task_id: str, succeeded: bool) -> None:
    """``callback_succeeded`` on the task's Scale record after a delivery attempt, as Scale reports
    it. The record is read again under the row lock: its tags may have changed since the job read it."""
    with db.write() as conn:
        current = repo.get(conn, t.tasks, organization_id, task_id, lock=True)
        if current is not None and current["scale"]:
            scale = {**current["scale"], "callback_succeeded": succeeded}
            repo.change(conn, t.tasks, organization_id, task_id, scale=scale)

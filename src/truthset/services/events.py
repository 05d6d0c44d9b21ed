"""A task's history beyond its leases and responses: one row per step in ``task_events``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow


def add_event(
    conn: Connection, task: Mapping[str, Any], kind: str, data: Mapping[str, Any], worker_id: str | None = None
) -> None:
    """Append one step to a task's history."""
    repo.add(
        conn,
        t.task_events,
        {
            "id": new_id(),
            "organization_id": task["organization_id"],
            "project_id": task["project_id"],
            "task_id": task["id"],
            "kind": kind,
            "worker_id": worker_id,
            "data": dict(data),
            "created_at": utcnow(),
        },
    )

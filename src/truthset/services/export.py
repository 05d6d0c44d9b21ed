"""Export: tasks with their results as JSONL, streamed page by page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from truthset.domain import Principal, TaskStatus
from truthset.services.policy import Action, require
from truthset.services.projects import get_project
from truthset.services.tasks import TaskFilter, list_tasks
from truthset.storage import Database

EXPORT_PAGE = 2000


def export_rows(
    db: Database,
    principal: Principal,
    project_id: str,
    *,
    status: TaskStatus | None = TaskStatus.COMPLETED,
    batch_id: str | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per task: ids, data, metadata, status, the result and its confidence."""
    require(principal, Action.READ_TASKS)
    get_project(db, principal, project_id)
    filters = TaskFilter(project_id=project_id, status=status, batch_id=batch_id)
    cursor = None
    while True:
        rows, cursor = list_tasks(db, principal, filters, cursor=cursor, limit=EXPORT_PAGE)
        for row in rows:
            yield {
                "task_id": row["id"],
                "unique_id": row["unique_id"],
                "batch_id": row["batch_id"],
                "status": row["status"],
                "data": row["data"],
                "metadata": row["metadata"],
                "answer": (row["result"] or {}).get("answer"),
                "confidence": row["confidence"],
                "result": row["result"],
                "completed_at": row["completed_at"].isoformat() + "Z" if row["completed_at"] else None,
            }
        if cursor is None:
            return

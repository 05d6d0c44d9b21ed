"""Export: tasks with their results as JSONL, read from one snapshot of the database.

One query in one read transaction (REPEATABLE READ on PostgreSQL), streamed from the database in
blocks, so an export that runs while annotators complete tasks shows the project as it was when
the export began, never a mix of states. :func:`write_jsonl` renders the rows in large blocks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from truthset.domain import Principal, TaskStatus
from truthset.errors import InvalidInput, full_disk_is_storage_full
from truthset.services.policy import Action, require
from truthset.services.projects import get_project
from truthset.services.tasks import SPOOL_DIRECTORY, TaskFilter, task_query
from truthset.storage import Database
from truthset.storage import tables as t

#: The formats an export can be written in. (The training formats of issue 10 join this list.)
FORMATS = ("jsonl",)

EXPORT_BLOCK = 2000  # rows fetched from the database at a time, and lines rendered per write
_COLUMNS = ("id", "unique_id", "batch_id", "status", "data", "metadata", "result", "confidence", "completed_at")


def check_format(name: str) -> str:
    """The export format ``name``, or a 422 naming the formats there are (never silently JSONL)."""
    if name not in FORMATS:
        raise InvalidInput(
            f"format: {name!r} is not an export format; the formats are: {', '.join(FORMATS)}",
            details={"field": "format", "formats": list(FORMATS)},
        )
    return name


def export_rows(
    db: Database,
    principal: Principal,
    project_id: str,
    *,
    status: TaskStatus | None = TaskStatus.COMPLETED,
    batch_id: str | None = None,
    min_confidence: float | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per task: ids, data, metadata, status, the result and its confidence.

    The permission and existence checks run at the first ``next()``; every row comes from the
    snapshot taken by the first read, whatever is committed while the caller iterates.
    """
    require(principal, Action.READ_TASKS)
    get_project(db, principal, project_id)
    filters = TaskFilter(project_id=project_id, status=status, batch_id=batch_id, min_confidence=min_confidence)
    columns = [t.tasks.c[name] for name in _COLUMNS]
    query = task_query(principal, filters, *columns).order_by(t.tasks.c.id)
    with db.snapshot() as conn:
        result = conn.execution_options(yield_per=EXPORT_BLOCK).execute(query)
        for task_id, unique_id, batch, task_status, data, metadata, result_, confidence, completed_at in result:
            yield {
                "task_id": task_id,
                "unique_id": unique_id,
                "batch_id": batch,
                "status": task_status,
                "data": data,
                "metadata": metadata,
                "answer": (result_ or {}).get("answer"),
                "confidence": confidence,
                "result": result_,
                "completed_at": completed_at.isoformat() + "Z" if completed_at else None,
            }


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    """Write ``rows`` to ``out`` as JSON lines, a block of lines per write; returns the count."""
    count = 0
    block: list[bytes] = []
    for row in rows:
        block.append(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        if len(block) == EXPORT_BLOCK:
            out.write(b"".join(block))
            count += len(block)
            block.clear()
    out.write(b"".join(block))
    return count + len(block)


def spool_jsonl(rows: Iterable[dict[str, Any]]) -> IO[bytes]:
    """``rows`` written as JSONL to a temporary file, rewound; the caller closes (deletes) it.

    The snapshot is read at the database's pace and sent from the file at the client's: a slow
    client never holds the read transaction open (on SQLite an open reader keeps the WAL from being
    restarted), nor the whole export in memory. Errors (a permission, a missing project, a full
    disk) are raised here, before anything is sent.
    """
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (returned open: the caller sends, then closes it)
    try:
        with full_disk_is_storage_full(SPOOL_DIRECTORY):
            write_jsonl(rows, spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool

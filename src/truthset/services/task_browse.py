"""The task browser's query: its filters, full-text search and sorts, with keyset pages.

One query serves the web UI's task browser, ``GET /api/v1/tasks``, the SDK and the CLI. Every sort
pages on ``(sort value, id)`` through an index (see ``storage/tables.py`` and migration 0008), so a
page costs the same at the first task and the millionth. The full-text search has one meaning and
two implementations: SQLite's FTS5 table ``tasks_fts`` (kept in sync by triggers) and PostgreSQL's
``to_tsvector`` GIN index; both index the string values of a task's ``data``, not its keys.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Select, bindparam, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from truthset.domain import Principal, TaskStatus
from truthset.errors import InvalidInput
from truthset.services.policy import Action, require
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

if TYPE_CHECKING:
    from truthset.services.tasks import TaskFilter

#: The sorts offered: a name, or ``-name`` for descending. ``created`` is id order (ids sort by time).
SORT_COLUMNS = {"created": "id", "updated": "updated_at", "confidence": "confidence", "priority": "priority"}
SORTS = tuple(name for key in SORT_COLUMNS for name in (key, f"-{key}"))
#: The index that pages a project's tasks in each sort's order (SQLite is told; PostgreSQL finds it).
SORT_INDEXES = {
    "updated": "ix_tasks_project_updated",
    "confidence": "ix_tasks_project_confidence",
    "priority": "ix_tasks_project_priority",
}
_ID = re.compile(r"[0-9a-f]{24}")
#: The same within one status: (project_id, status, value, id).
STATUS_SORT_INDEXES = {
    "updated": "ix_tasks_status_updated",
    "confidence": "ix_tasks_status_confidence",
    "priority": "ix_tasks_status_priority",
}
#: The longest search text taken (a bound on the work a query asks of the index).
MAX_SEARCH = 200


def batch_choices(db: Database, principal: Principal, project_id: str, limit: int) -> list[dict[str, Any]]:
    """A project's batches (id and name only: no progress counts, which cost a scan per batch)."""
    require(principal, Action.READ_TASKS)
    query = repo.scoped(t.batches, principal.organization_id, t.batches.c.id, t.batches.c.name)
    query = query.where(t.batches.c.project_id == project_id).order_by(t.batches.c.id).limit(limit)
    with db.read() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", details={"field": "sort"})
    return sort


def apply_filters(query: Select, filters: TaskFilter, organization_id: str, *, drive: bool | None = None) -> Select:
    """Add the browser's filters (confidence ceiling, worker, gold, unreviewed, search) to ``query``.

    ``drive`` (SQLite): see :func:`search_drives`; None leaves the plan to SQLite."""
    c = t.tasks.c
    if filters.max_confidence is not None:
        query = query.where(c.confidence <= filters.max_confidence)
    if filters.gold is not None:
        gold = str(TaskStatus.GOLD)
        query = query.where(c.status == gold if filters.gold else c.status != gold)
    if filters.unreviewed:
        query = query.where(c.review_status.is_(None))
    if filters.worker_id is not None:
        answered = repo.scoped(t.responses, organization_id, t.responses.c.task_id).where(
            t.responses.c.worker_id == filters.worker_id
        )
        # the worker's own responses, not the organization's (SQLite's statistics may prefer those)
        answered = repo.prefer_index(answered, t.responses, "ix_responses_worker_task")
        query = query.where(c.id.in_(answered))
    if filters.search:
        query = query.where(_search_clause(filters.search, drive))
    return query


def plans_itself(filters: TaskFilter) -> bool:
    """Whether the database should pick the plan (a worker's tasks start from their own index)."""
    return filters.worker_id is not None


#: Up to this many matches, a SQLite search starts from the FTS index's matches (read them, sort
#: them); past it, it walks the sort's index and checks each task against the FTS index (each check
#: costs ~50 us, so it pays only when matches are dense). Measured at 1M tasks: benchmarks/task_browser.
DRIVE_LIMIT = 15_000


def search_drives(conn: Connection, filters: TaskFilter) -> bool | None:
    """For a SQLite search: whether its matches are few enough to start from (see DRIVE_LIMIT).

    Counts at most DRIVE_LIMIT + 1 matches in the FTS index, across organizations: only the plan
    depends on it, never the tasks listed (the outer query is organization-scoped).
    """
    if not filters.search or conn.dialect.name != "sqlite":
        return None
    words = fts5_query(" ".join(filters.search[:MAX_SEARCH].split()))
    if not words:
        return None
    found = conn.exec_driver_sql(
        "SELECT count(*) FROM (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ? LIMIT ?)", (words, DRIVE_LIMIT + 1)
    ).scalar_one()
    return int(found) <= DRIVE_LIMIT


def _search_clause(search: str, drive: bool | None) -> ColumnElement[bool]:
    words = search[:MAX_SEARCH].split()
    if not words:
        raise InvalidInput("search needs at least one word", details={"field": "search"})
    return TextSearch(" ".join(words), drive)


class TextSearch(ColumnElement[bool]):
    """``the task's data contains these words``: FTS5 on SQLite, a tsvector match on PostgreSQL."""

    inherit_cache = False  # the words become a parameter only when compiled: never reuse a compiled form
    # untyped: a Boolean-typed element would be rendered "... = 1" on SQLite, hiding it from the planner

    def __init__(self, words: str, drive: bool | None = None) -> None:
        self.words = words
        self.drive = drive


@compiles(TextSearch, "sqlite")
def _search_sqlite(element: TextSearch, compiler: Any, **kw: Any) -> str:
    words = compiler.process(bindparam("search_words", fts5_query(element.words)), **kw)
    # the FTS table holds every organization's rows: the outer query's organization_id scopes them
    if element.drive is False:  # dense matches: check each task met in the sort's index
        return f"EXISTS (SELECT 1 FROM tasks_fts WHERE tasks_fts MATCH {words} AND tasks_fts.rowid = tasks.rowid)"
    return f"tasks.rowid IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH {words})"


@compiles(TextSearch, "postgresql")
def _search_postgresql(element: TextSearch, compiler: Any, **kw: Any) -> str:
    words = compiler.process(bindparam("search_words", element.words), **kw)
    # the same expression as the GIN index ix_tasks_fts (migration 0008), or the index goes unused
    return f"to_tsvector('simple'::regconfig, tasks.data::jsonb) @@ plainto_tsquery('simple'::regconfig, {words})"


def fts5_query(words: str) -> str:
    """The FTS5 query for plain words: each word quoted (no FTS5 syntax gets through), all required."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words.split())


def sorted_page(
    conn: Connection, query: Select, sort: str, *, cursor: str | None, limit: int
) -> tuple[list[dict], str | None]:
    """One keyset page of ``query`` in ``sort`` order; the cursor holds the last row's (value, id)."""
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    column = t.tasks.c[SORT_COLUMNS[name]]
    if name == "confidence":
        query = query.where(column.is_not(None))  # only tasks with a result have a confidence
    if cursor:
        value, last_id = decode_cursor(cursor, name)
        key = tuple_(column, t.tasks.c.id)
        query = query.where(key < tuple_(value, last_id) if descending else key > tuple_(value, last_id))
    order = (column.desc(), t.tasks.c.id.desc()) if descending else (column, t.tasks.c.id)
    rows = [dict(r) for r in conn.execute(query.order_by(*order).limit(limit + 1)).mappings()]
    next_cursor = encode_cursor(rows[limit - 1][column.name], rows[limit - 1]["id"]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def sort_index(filters: TaskFilter, sort: str) -> str | None:
    """The index that serves a sorted listing (only within a project: the browser's case)."""
    name = sort.lstrip("-")
    if filters.project_id is None or filters.unique_id is not None or name not in SORT_INDEXES:
        return None
    if filters.status is not None or filters.gold:  # gold only: the status "gold"
        return STATUS_SORT_INDEXES[name]
    if filters.review_status is not None:  # the reviewed tasks are a sample: read them all, sort them
        return "ix_tasks_review"
    return SORT_INDEXES[name]


def check_id_cursor(cursor: str | None) -> None:
    """Creation order pages on the id alone: its cursor is an id (24 hex digits)."""
    if cursor is not None and not _ID.fullmatch(cursor):
        raise InvalidInput("cursor is not a next_cursor of this sort", details={"field": "query.cursor"})


def encode_cursor(value: Any, last_id: str) -> str:
    raw = orjson.dumps([value.isoformat() if isinstance(value, datetime) else value, last_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, name: str) -> tuple[Any, str]:
    try:
        value, last_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if name == "updated":
            value = datetime.fromisoformat(value)
        elif not isinstance(value, int | float) or isinstance(value, bool) or not isinstance(last_id, str):
            raise ValueError(value)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not a next_cursor of this sort", details={"field": "query.cursor"}) from exc
    return value, last_id

"""Queries. Repositories take a connection and never commit: services own the transaction.

Every read of tenant data starts from :func:`scoped`, which filters by organization, so a row of
another organization is simply not found.
"""

from __future__ import annotations

import functools
import sqlite3
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Integer,
    Select,
    String,
    Table,
    TextClause,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from truthset.storage import tables as t
from truthset.storage.prepared import Prepared


class json_text(FunctionElement):
    """``json_text(column, key)``: the value of a top-level key of a JSON column as JSON text.

    Strings give their content, numbers their digits, booleans ``true``/``false``, null and a
    missing key give NULL: the same on every database, so ``metadata.flag=true`` or
    ``metadata.n=5`` filter alike (SQLite's ``json_extract`` alone gives 1 for true and a number
    that never equals text).
    """

    type = String()
    inherit_cache = True


#: In a document's JSON text, an escaped backslash ``\\`` (kept) or a ``\u0000`` escape (dropped),
#: matched left to right: ``\\u0000`` (a backslash, then "u0000": no NUL) stays whole. The SQL
#: literals are E'' strings, which read the same whatever ``standard_conforming_strings`` says.
_JSON_NUL_ESCAPE = r"E'(\\\\\\\\)|\\\\u0000'"


@compiles(json_text)
def _json_text_postgresql(element: json_text, compiler: Any, **kw: Any) -> str:
    """``->>`` on a ``json`` column, which fails for a whole document holding a ``\\u0000`` escape.

    Input refuses NUL now (schemas.check_json), but an earlier version stored some: PostgreSQL
    cannot de-escape such a document into text, so one row would fail every metadata filter of
    its organization. Those rare documents (found by a cheap substring test first) are read with
    their NUL escapes removed.
    """
    column, key = (compiler.process(clause, **kw) for clause in element.clauses)
    document = f"CAST({column} AS TEXT)"
    cleaned = f"CAST(regexp_replace({document}, {_JSON_NUL_ESCAPE}, E'\\\\1', 'g') AS JSON)"
    return f"(CASE WHEN strpos({document}, E'\\\\u0000') > 0 THEN {cleaned} ->> {key} ELSE {column} ->> {key} END)"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: Any, **kw: Any) -> str:
    column, key = (compiler.process(clause, **kw) for clause in element.clauses)
    path = f"'$.\"' || {key} || '\"'"  # a quoted label: keys may hold dots and spaces
    return (
        f"CASE json_type({column}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        f"ELSE CAST(json_extract({column}, {path}) AS TEXT) END"
    )


def scoped(table: Table, organization_id: str, *columns: Any) -> Select:
    """The one organization-scoped query helper: ``SELECT ... FROM table WHERE organization_id = ?``."""
    query = select(*columns) if columns else select(table)
    return query.where(table.c.organization_id == organization_id)


def prefer_index(query: Select, table: Table, index: str | None) -> Select:
    """Tell SQLite which index pages a query (PostgreSQL plans from its own statistics).

    SQLite has no statistics until ANALYZE, and sampled ones mislead it: it then pages a batch's
    tasks through the organization's index, 1000x slower at millions of rows. The index that
    matches the filters is known here, so say so.
    """
    return query.with_hint(table, f"INDEXED BY {index}", "sqlite") if index else query


# Statements run on every request are built once per shape and run as :class:`Prepared` statements:
# building a statement, and SQLAlchemy's per-execution work, cost more CPU than SQLite takes to run it.


@functools.cache
def _get_statement(table: Table, lock: bool, key_share: bool = False) -> Prepared:
    query = scoped(table, bindparam("organization_id")).where(table.c.id == bindparam("object_id"))
    # FOR UPDATE locks the row on PostgreSQL; SQLite renders nothing (its writers are serialised)
    if lock:
        return Prepared(query.with_for_update())
    # FOR KEY SHARE: the weakest row lock, the one a foreign key check takes; many holders at once,
    # and only FOR UPDATE (or a delete) waits for them
    return Prepared(query.with_for_update(read=True, key_share=True) if key_share else query)


@functools.cache
def _insert_statement(table: Table, columns: tuple[str, ...]) -> Prepared:
    return Prepared(insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in columns}))


@functools.cache
def _change_statement(table: Table, columns: tuple[str, ...]) -> Prepared:
    values = {name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns}
    where = (table.c.organization_id == bindparam("organization_id"), table.c.id == bindparam("object_id"))
    return Prepared(update(table).where(*where).values(values))


def get(
    conn: Connection, table: Table, organization_id: str, object_id: str, *, lock: bool = False, key_share: bool = False
) -> dict | None:
    """One row of the organization. ``lock``: FOR UPDATE until the commit; ``key_share``: FOR KEY SHARE
    (the row cannot be locked FOR UPDATE, so not changed by a writer that locks it so, until the commit)."""
    statement = _get_statement(table, lock, key_share)
    return statement.first(conn, {"organization_id": organization_id, "object_id": object_id})


_MEMO = "truthset.transaction_memo"


def transaction_memo(conn: Connection) -> dict[Any, Any]:
    """A dict that lives as long as the connection's current transaction (empty in the next one).

    For reads a hot path repeats within one transaction (the same rows each time: nothing else can
    change them before the commit but this transaction itself): a submit emits two webhook events,
    and on SQLite the writer thread runs up to 64 submits in one transaction. Code that writes what
    is memoised calls :func:`forget`. Outside a transaction every call gets a fresh dict.
    """
    transaction = conn.get_transaction()
    if transaction is None:
        return {}
    held = conn.info.get(_MEMO)
    if held is None or held[0]() is not transaction:
        held = (weakref.ref(transaction), {})
        conn.info[_MEMO] = held
    return held[1]


def forget(conn: Connection, key: Any) -> None:
    """Drop ``key`` from the transaction's memo (after writing what it holds)."""
    transaction_memo(conn).pop(key, None)


def add(conn: Connection, table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """Insert one row; columns left out take their default. Returns the row as inserted."""
    row = {**_defaults(table, tuple(values)), **values}
    _insert_statement(table, tuple(row)).run(conn, row)
    return dict(values)


@functools.cache
def _defaults(table: Table, given: tuple[str, ...]) -> dict[str, Any]:
    """Scalar defaults of the columns not in ``given`` (per table and column set: every submit asks).
    The dict is shared: callers copy it, never change it."""
    return {
        column.name: column.default.arg  # type: ignore[union-attr]
        for column in table.columns
        if column.name not in given and column.default is not None and column.default.is_scalar
    }


def insert_prepared(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    skip_conflicts_on: Sequence[str] = (),
    skip_any_conflict: bool = False,
) -> int:
    """Bulk insert without per-row SQLAlchemy processing (the bulk task import's hot path).

    ``rows`` are tuples in ``columns`` order, already in the driver's form: JSON columns as JSON
    text (``orjson.dumps(...).decode()``), datetimes through :func:`driver_datetime`.
    With ``skip_conflicts_on`` (the columns of a unique constraint), a row that clashes with a stored
    one (or one a concurrent transaction commits meanwhile) is skipped, not an error;
    ``skip_any_conflict`` skips a clash with any unique index (two, partial ones included).
    Returns how many rows were inserted.
    """
    if not rows:
        return 0
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
    postgres = dialect.name == "postgresql"
    names = ", ".join(quote(c) for c in columns)
    conflict = ""
    if skip_conflicts_on:
        conflict = f" ON CONFLICT ({', '.join(quote(c) for c in skip_conflicts_on)}) DO NOTHING"
    elif skip_any_conflict:
        conflict = " ON CONFLICT DO NOTHING"
    if postgres and len(rows) >= _COPY_FROM_ROWS:
        return _insert_copied(conn, table, columns, rows, conflict)
    if dialect.name == "sqlite" and len(rows) > 1:
        return _insert_sqlite_multirow(conn, table, columns, rows, conflict)
    values = ", ".join(
        f"CAST({mark} AS JSON)" if postgres and isinstance(table.c[name].type, JSON) else mark for name in columns
    )
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({values}){conflict}"
    return int(conn.exec_driver_sql(sql, list(rows)).rowcount)


#: Rows from which a PostgreSQL bulk insert goes through COPY (see :func:`_insert_copied`).
_COPY_FROM_ROWS = 64
#: The most rows in one SQLite INSERT statement (and below SQLite's limit on bound parameters).
_SQLITE_ROWS_PER_STATEMENT = 2000


def _insert_sqlite_multirow(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple], conflict: str
) -> int:
    """Rows inserted by multi-row ``INSERT ... VALUES (...), (...)`` statements, not one per row.

    Why: a table with a trigger into an FTS5 index (tasks: ``tasks_fts``) makes SQLite open a
    statement savepoint for every statement, and FTS5 flushes its pending terms to a new segment
    at each savepoint, so one statement per row wrote one tiny segment per row and spent most of a
    bulk import merging them (7,000 rows per CPU second; 60,000 in statements of 2,000 rows).
    """
    quote = conn.dialect.identifier_preparer.quote
    driver = conn.connection.driver_connection
    limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if driver is not None else 999
    per = max(1, min(_SQLITE_ROWS_PER_STATEMENT, limit // len(columns)))
    row_marks = "(" + ", ".join("?" * len(columns)) + ")"
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
    inserted = 0
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        sql = head + ", ".join([row_marks] * len(part)) + conflict
        inserted += int(conn.exec_driver_sql(sql, tuple(value for row in part for value in row)).rowcount)
    return inserted


def _insert_copied(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple], conflict: str) -> int:
    """Rows inserted on PostgreSQL by ``COPY`` into a temporary table of the same columns, then one
    ``INSERT ... SELECT`` (which keeps ``ON CONFLICT``: COPY itself cannot skip a clash).

    Why: COPY's rows skip the per-statement work of an insert each (a quarter of the server's time
    in a bulk task import) and the client's per-row protocol messages. The staging table lives
    until the commit (``ON COMMIT DROP``: a pooled connection keeps nothing, and other transactions
    of that connection pay nothing for it).
    """
    quote = conn.dialect.identifier_preparer.quote
    stage = quote(f"stage_{table.name}")
    names = ", ".join(quote(c) for c in columns)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {quote(table.name)}) ON COMMIT DROP"
    )
    conn.exec_driver_sql(f"TRUNCATE {stage}")  # an earlier bulk insert of this transaction left its rows
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    moved = f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {stage}{conflict}"
    return int(conn.exec_driver_sql(moved).rowcount)


def driver_datetime(conn: Connection, value: datetime) -> Any:
    """A datetime as the driver stores it (a string on SQLite, unchanged on PostgreSQL)."""
    process = DateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process else value


def change(conn: Connection, table: Table, organization_id: str, object_id: str, **values: Any) -> None:
    """Update columns of one row of an organization."""
    params = {"organization_id": organization_id, "object_id": object_id}
    params.update({f"v_{name}": value for name, value in values.items()})
    _change_statement(table, tuple(values)).run(conn, params)


def page(
    conn: Connection, query: Select, table: Table, *, cursor: str | None, limit: int, descending: bool = False
) -> tuple[list[dict], str | None]:
    """Keyset pagination on ``id``: stays fast however deep the page (no OFFSET)."""
    if cursor:
        query = query.where(table.c.id < cursor if descending else table.c.id > cursor)
    query = query.order_by(table.c.id.desc() if descending else table.c.id).limit(limit + 1)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    next_cursor = rows[limit - 1]["id"] if len(rows) > limit else None
    return rows[:limit], next_cursor


# --- accounts ----------------------------------------------------------------------------------


_MEMBER_BY_KEY_HASH = (
    select(
        t.api_keys.c.id.label("api_key_id"),
        t.api_keys.c.organization_id,
        t.api_keys.c.revoked_at,
        t.api_keys.c.last_used_at,
        t.members.c.id.label("member_id"),
        t.members.c.role,
        t.members.c.disabled_at,
        t.workers.c.id.label("worker_id"),
    )
    .join(t.members, t.members.c.id == t.api_keys.c.member_id)
    .join(t.workers, t.workers.c.member_id == t.members.c.id)
    .where(t.api_keys.c.key_hash == bindparam("key_hash"))
)


def member_by_key_hash(conn: Connection, key_hash: str) -> dict | None:
    """Authentication: the one lookup that is not organization-scoped, since the key says who."""
    row = conn.execute(_MEMBER_BY_KEY_HASH, {"key_hash": key_hash}).mappings().first()
    return dict(row) if row else None


def worker_for_member(conn: Connection, organization_id: str, member_id: str) -> dict | None:
    row = conn.execute(scoped(t.workers, organization_id).where(t.workers.c.member_id == member_id)).mappings().first()
    return dict(row) if row else None


def count_owners(conn: Connection, organization_id: str) -> int:
    query = scoped(t.members, organization_id, func.count()).where(
        t.members.c.role == "owner", t.members.c.disabled_at.is_(None)
    )
    return int(conn.execute(query).scalar_one())


# --- tasks -------------------------------------------------------------------------------------


def existing_unique_ids(conn: Connection, organization_id: str, unique_ids: Iterable[str]) -> dict[str, str]:
    """Map each of ``unique_ids`` that already exists to its task id."""
    return {unique_id: task_id for unique_id, task_id, _ in _tasks_by_unique_id(conn, organization_id, unique_ids)}


def unique_ids_elsewhere(
    conn: Connection, organization_id: str, project_id: str, unique_ids: Iterable[str]
) -> dict[str, str]:
    """Map each of ``unique_ids`` that a task of another project of the organization has to that
    project's id (a ``unique_id`` names one task across an organization, as in Scale's API)."""
    found = _tasks_by_unique_id(conn, organization_id, unique_ids, not_in_project=project_id)
    return {unique_id: project for unique_id, _, project in found}


def unique_id_query(dialect: str, *, exclude_project: bool = False) -> TextClause:
    """The query of :func:`_tasks_by_unique_id`: ``:ids``, ``:org`` and, excluding, ``:project``."""
    if dialect == "postgresql":
        ids = "unnest(CAST(:ids AS varchar[])) AS u(unique_id) JOIN"
    else:  # CROSS JOIN: SQLite's planner would otherwise scan the organization's tasks
        ids = "(SELECT value AS unique_id FROM json_each(:ids)) AS u CROSS JOIN"
    return text(
        f"SELECT t.unique_id, t.id, t.project_id FROM {ids} tasks t "
        "ON t.organization_id = :org AND t.unique_id = u.unique_id"
        + (" WHERE t.project_id <> :project" if exclude_project else "")
    )


def _tasks_by_unique_id(
    conn: Connection, organization_id: str, unique_ids: Iterable[str], *, not_in_project: str | None = None
) -> list[tuple[str, str, str]]:
    """(unique_id, task id, project id) of the organization's tasks with one of ``unique_ids``
    (and not in project ``not_in_project``, if given).

    The ids go in as one parameter (a PostgreSQL array, a JSON array on SQLite), joined on the
    (organization_id, unique_id) index. An IN list of 900 parameters made PostgreSQL scan the table
    once per query while a bulk import's own new rows had no statistics yet (100k tasks took minutes
    instead of seconds), and on SQLite it cost more to render and bind than the probes themselves.
    """
    query = unique_id_query(conn.dialect.name, exclude_project=not_in_project is not None)
    wanted = list(unique_ids)
    found: list[tuple[str, str, str]] = []
    for start in range(0, len(wanted), 10_000):
        part = wanted[start : start + 10_000]
        params = {"ids": part if conn.dialect.name == "postgresql" else orjson.dumps(part).decode()}
        params |= {"org": organization_id, "project": not_in_project}
        found.extend((row.unique_id, row.id, row.project_id) for row in conn.execute(query, params))
    return found


def status_counts(conn: Connection, organization_id: str, column: Any, value: str) -> dict[str, int]:
    query = (
        scoped(t.tasks, organization_id, t.tasks.c.status, func.count())
        .where(column == value)
        .group_by(t.tasks.c.status)
    )
    return {status: int(n) for status, n in conn.execute(query)}


_OPEN_TASK_OF_BATCH = Prepared(
    scoped(t.tasks, bindparam("organization_id"), t.tasks.c.id)
    .where(
        t.tasks.c.batch_id == bindparam("batch_id"),
        or_(t.tasks.c.status == "staged", t.tasks.c.status == "pending"),  # not IN: no expanding parameter
    )
    .limit(1)
)


def batch_has_open_tasks(conn: Connection, organization_id: str, batch_id: str) -> bool:
    params = {"organization_id": organization_id, "batch_id": batch_id}
    return _OPEN_TASK_OF_BATCH.first(conn, params) is not None


# --- queue -------------------------------------------------------------------------------------


_EXPIRE_LEASES = Prepared(
    update(t.assignments)
    .where(
        t.assignments.c.project_id == bindparam("p_project_id"),
        t.assignments.c.status == "active",
        t.assignments.c.expires_at < bindparam("p_now"),
    )
    .values(status="expired", ended_at=bindparam("p_now"))
    .returning(t.assignments.c.task_id)
)
_RETURN_LEASES = Prepared(
    update(t.tasks)
    .where(t.tasks.c.id == bindparam("p_task_id"))
    .values(lease_count=t.tasks.c.lease_count - bindparam("p_leases"))
)


def expire_leases(conn: Connection, project_id: str, now: datetime) -> int:
    """Return expired leases of a project to the queue. Returns how many expired."""
    expired = [row["task_id"] for row in _EXPIRE_LEASES.rows(conn, {"p_project_id": project_id, "p_now": now})]
    per_task: dict[str, int] = {}
    for task_id in expired:
        per_task[task_id] = per_task.get(task_id, 0) + 1
    return_leases(conn, project_id, per_task)
    return len(expired)


def return_leases(conn: Connection, project_id: str, per_task: Mapping[str, int]) -> None:
    """Give ``per_task[task_id]`` lease slots back to each task, and move the queue epoch on.

    The one way a slot comes back (an expired, released or skipped lease): the task may be eligible
    again for workers whose frontier had passed it (see tables.projects).
    """
    for task_id in sorted(per_task):  # a fixed lock order keeps PostgreSQL free of deadlocks
        _RETURN_LEASES.run(conn, {"p_task_id": task_id, "p_leases": per_task[task_id]})
    if per_task:
        bump_queue_epoch(conn, project_id)


#: The queue's order, the one ``ix_tasks_queue`` holds: highest priority, lowest rank, oldest.
QUEUE_ORDER = (t.tasks.c.priority.desc(), t.tasks.c.queue_rank, t.tasks.c.id)


def _queue_conditions(start: str) -> list[Any]:
    """Which task a worker may be leased next (:func:`_lease_first` leases the first in queue order).

    The best task: pending, still short of workers (responses + live leases < overlap), never
    leased to, skipped by or answered by this worker (every response has an assignment, even one
    given without a lease), highest priority, then lowest ``queue_rank`` (0 unless the policy orders
    by uncertainty: services/active_learning.py), then oldest. On PostgreSQL the subquery
    locks its row with SKIP LOCKED, so concurrent callers take different tasks instead of queueing
    on one; SQLite renders no FOR UPDATE, its writers being serialised by BEGIN IMMEDIATE.
    ``start``: "top" searches the whole queue; "same_priority" only the tasks of priority
    ``p_after_priority`` from (rank, id) ``(p_after_rank, p_after_id)`` on, a row-value comparison
    both SQLite and PostgreSQL seek on the index with; "lower_priority" the tasks of a lower
    priority. Each is one seek on the ``ix_tasks_queue`` index (an OR of the two would scan it).
    """
    worker = bindparam("p_worker_id")
    seen = (
        select(t.assignments.c.id)
        .where(
            t.assignments.c.task_id == t.tasks.c.id,
            t.assignments.c.worker_id == worker,
            # not IN (...): an IN list is re-rendered into the SQL on every execution
            t.assignments.c.status != "released",
            t.assignments.c.status != "expired",
        )
        .exists()
    )
    conditions = [
        t.tasks.c.project_id == bindparam("p_project_id"),
        t.tasks.c.status == "pending",
        t.tasks.c.response_count + t.tasks.c.lease_count < t.tasks.c.overlap,
        ~seen,
    ]
    if start == "same_priority":
        after = tuple_(bindparam("p_after_rank", type_=Integer), bindparam("p_after_id", type_=String))
        conditions += [
            t.tasks.c.priority == bindparam("p_after_priority"),
            tuple_(t.tasks.c.queue_rank, t.tasks.c.id) >= after,
        ]
    elif start == "lower_priority":
        conditions.append(t.tasks.c.priority < bindparam("p_after_priority"))
    return conditions


def _lease_first(conditions: list[Any]) -> Any:
    """Take one lease on the first task in queue order (priority, rank, id) that meets ``conditions``,
    returning the task: the one statement the normal and the gold queue lease with.

    The subquery locks its row with SKIP LOCKED on PostgreSQL (a row another transaction holds is
    passed over, never waited for); SQLite renders no FOR UPDATE, its writers being serialised.
    """
    best = (
        select(t.tasks.c.id)
        .where(*conditions)
        .order_by(*QUEUE_ORDER)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(t.tasks).where(t.tasks.c.id == best).values(lease_count=t.tasks.c.lease_count + 1).returning(*t.tasks.c)
    )


_LEASE_NEXT = Prepared(_lease_first(_queue_conditions("top")))
_LEASE_NEXT_SAME_PRIORITY = Prepared(_lease_first(_queue_conditions("same_priority")))
_LEASE_NEXT_LOWER_PRIORITY = Prepared(_lease_first(_queue_conditions("lower_priority")))
# the same search without locking: what the worker could take once the rows other requests are
# writing are free again
_ELIGIBLE_TASK = Prepared(select(t.tasks.c.id).where(*_queue_conditions("top")).limit(1))


def lease_next_task(
    conn: Connection, project_id: str, worker_id: str, *, after: tuple[int, int, str] | None = None
) -> dict | None:
    """Take one lease on the next task for ``worker_id`` (see :func:`_queue_conditions`).

    ``after`` = (priority, queue_rank, id) starts the search at that task in queue order, for a
    caller that knows every task before it is ineligible for this worker; without it the search
    starts at the top.
    """
    params = {"p_project_id": project_id, "p_worker_id": worker_id}
    if after is None:
        return _LEASE_NEXT.first(conn, params)
    params.update(p_after_priority=after[0], p_after_rank=after[1], p_after_id=after[2])
    return _LEASE_NEXT_SAME_PRIORITY.first(conn, params) or _LEASE_NEXT_LOWER_PRIORITY.first(conn, params)


def eligible_task_exists(conn: Connection, project_id: str, worker_id: str) -> bool:
    """Whether some task of the project could be leased to the worker, counting rows locked by others.

    On PostgreSQL the lease passes over rows other transactions hold (SKIP LOCKED), and a row a
    submit is writing may still have a free slot for this worker: when the lease finds nothing,
    this read (no lock, the last committed state) tells "nothing left" from "try again".
    """
    return _ELIGIBLE_TASK.first(conn, {"p_project_id": project_id, "p_worker_id": worker_id}) is not None


_BUMP_QUEUE_EPOCH = Prepared(
    update(t.projects)
    .where(t.projects.c.id == bindparam("p_project_id"))
    .values(queue_epoch=t.projects.c.queue_epoch + 1)
)


def bump_queue_epoch(conn: Connection, project_id: str) -> None:
    """Record that a task some worker passed over may now be eligible for them (see tables.projects)."""
    _BUMP_QUEUE_EPOCH.run(conn, {"p_project_id": project_id})


_CLOSE_LEASE = Prepared(
    update(t.assignments)
    .where(
        t.assignments.c.task_id == bindparam("p_task_id"),
        t.assignments.c.worker_id == bindparam("p_worker_id"),
        t.assignments.c.status == "active",
    )
    .values(status=bindparam("p_status"), ended_at=bindparam("p_now"))
    .returning(t.assignments.c.id)
)


def close_active_lease(conn: Connection, task_id: str, worker_id: str, status: str, now: datetime) -> str | None:
    """End the worker's live lease on a task, if any; returns its assignment id."""
    params = {"p_task_id": task_id, "p_worker_id": worker_id, "p_status": status, "p_now": now}
    row = _CLOSE_LEASE.first(conn, params)
    return None if row is None else row["id"]


_COUNT_RESPONSE = Prepared(
    update(t.tasks)
    .where(t.tasks.c.id == bindparam("p_task_id"))
    .values(
        response_count=t.tasks.c.response_count + 1,
        lease_count=t.tasks.c.lease_count - bindparam("p_leases"),
        updated_at=bindparam("p_now"),
    )
    .returning(t.tasks.c.response_count, t.tasks.c.lease_count)
)


def count_response(conn: Connection, task_id: str, *, leased: bool, now: datetime) -> tuple[int, int]:
    """Add a response to a task's count (and give back its lease); returns the new counts."""
    row = _COUNT_RESPONSE.first(conn, {"p_task_id": task_id, "p_leases": int(leased), "p_now": now})
    assert row is not None, f"task {task_id} vanished inside its own transaction"
    return int(row["response_count"]), int(row["lease_count"])


_PRIOR_RESPONSES = Prepared(
    select(t.responses).where(
        t.responses.c.worker_id == bindparam("p_worker_id"),
        or_(t.responses.c.task_id == bindparam("p_task_id"), t.responses.c.idempotency_key == bindparam("p_key")),
    )
)


def prior_responses(conn: Connection, worker_id: str, task_id: str, key: str | None) -> list[dict]:
    """The worker's response to this task and the one sent with this Idempotency-Key, if any."""
    params = {"p_worker_id": worker_id, "p_task_id": task_id, "p_key": key}
    return _PRIOR_RESPONSES.rows(conn, params)


def response_by_idempotency_key(conn: Connection, worker_id: str, key: str) -> dict | None:
    query = select(t.responses).where(t.responses.c.worker_id == worker_id, t.responses.c.idempotency_key == key)
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


# A response row comes with its worker's name (``worker_name``): scoring tells a model's versions apart
# by it (``results.newest_predictions``).
_WITH_WORKER_NAME = t.responses.join(t.workers, t.workers.c.id == t.responses.c.worker_id)

_RESPONSES_OF_TASK = Prepared(
    prefer_index(
        # without the hint SQLite walked the organization's index, reading every response it has
        select(t.responses, t.workers.c.name.label("worker_name"))
        .select_from(_WITH_WORKER_NAME)
        .where(t.responses.c.organization_id == bindparam("organization_id"))
        .where(t.responses.c.task_id == bindparam("task_id"))
        .order_by(t.responses.c.id),
        t.responses,
        "ix_responses_task",
    )
)


def responses_of_task(conn: Connection, organization_id: str, task_id: str) -> list[dict]:
    return _RESPONSES_OF_TASK.rows(conn, {"organization_id": organization_id, "task_id": task_id})


def responses_of_tasks(conn: Connection, organization_id: str, task_ids: list[str]) -> dict[str, list[dict]]:
    """The responses of several tasks in one query (what scoring reads: id, task, worker and its name,
    answer and, for a model's prediction, its scores), per task in order; one query per task was half
    a refit."""
    r = t.responses.c
    query = (
        select(r.id, r.task_id, r.worker_id, t.workers.c.name.label("worker_name"), r.answer, r.scores)
        .select_from(_WITH_WORKER_NAME)
        .where(r.organization_id == organization_id, r.task_id.in_(task_ids))
        .order_by(r.task_id, r.id)
    )
    found: dict[str, list[dict]] = {}
    for row in conn.execute(query).mappings():
        found.setdefault(row["task_id"], []).append(dict(row))
    return found


_LATEST_MODEL_VERSIONS = Prepared(
    select(t.quality_models.c.question, func.max(t.quality_models.c.version).label("version"))
    .where(
        t.quality_models.c.organization_id == bindparam("organization_id"),
        t.quality_models.c.project_id == bindparam("project_id"),
    )
    .group_by(t.quality_models.c.question)
)


def latest_model_versions(
    conn: Connection, organization_id: str, project_id: str, *, memo: bool = False
) -> dict[str, int]:
    """The newest fitted worker-model version of each question of a project (run on every scoring).

    ``memo``: read once per transaction (the submits a SQLite batch runs together share it); a
    refit stores a new version in a transaction of its own, and forgets it there.
    """
    key = ("latest_model_versions", organization_id, project_id)
    memo_ = transaction_memo(conn) if memo else {}
    if (versions := memo_.get(key)) is None:
        params = {"organization_id": organization_id, "project_id": project_id}
        versions = {row["question"]: int(row["version"]) for row in _LATEST_MODEL_VERSIONS.rows(conn, params)}
        memo_[key] = versions
    return dict(versions)


def model_figures(conn: Connection, organization_id: str, project_id: str, versions: dict[str, int]) -> list[dict]:
    """What was stored with each given worker-model version (question -> version) of a project: its
    method, sizes, fit time and creation, without the state; in question order."""
    m = t.quality_models.c
    columns = (m.question, m.version, m.method, m.n_responses, m.n_tasks, m.n_workers, m.fit_seconds, m.created_at)
    query = scoped(t.quality_models, organization_id, *columns).where(
        m.project_id == project_id, m.question.in_(list(versions))
    )
    rows = [dict(row._mapping) for row in conn.execute(query.order_by(m.question, m.version))]
    return [row for row in rows if versions[row["question"]] == row["version"]]


def model_state(conn: Connection, organization_id: str, project_id: str, question: str, version: int) -> bytes:
    """The stored state (an ``.npz`` archive) of one worker-model version."""
    query = scoped(t.quality_models, organization_id, t.quality_models.c.state).where(
        t.quality_models.c.project_id == project_id,
        t.quality_models.c.question == question,
        t.quality_models.c.version == version,
    )
    return conn.execute(query).scalar_one()


# --- gold and a worker's standing on a project -------------------------------------------------


def _lease_gold_statement() -> Any:
    """Lease a gold task of a project that this worker has never been served, returning the task.

    Gold has no overlap: any number of workers may hold it at once, so no slot is checked. Any
    assignment at all (a released one too) means the worker has seen it. Served by the
    ``ix_tasks_queue`` index like the normal queue.

    SKIP LOCKED all the same, for the lock order: the caller holds the worker's standing row, and a
    submit to a gold task holds the task's row while it scores the answer into that standing. A
    lease that waited for a gold row while holding a standing closes a cycle as soon as a worker
    has two calls in flight (PostgreSQL then aborts one as a deadlock), so it takes another gold
    task instead (see :func:`unseen_gold_exists` for when none is free).
    """
    had = (
        select(t.assignments.c.id)
        .where(t.assignments.c.task_id == t.tasks.c.id, t.assignments.c.worker_id == bindparam("p_worker_id"))
        .exists()
    )
    return _lease_first([t.tasks.c.project_id == bindparam("p_project_id"), t.tasks.c.status == "gold", ~had])


_LEASE_GOLD = Prepared(_lease_gold_statement())
_UNSEEN_GOLD = Prepared(
    select(t.tasks.c.id)
    .where(
        t.tasks.c.project_id == bindparam("p_project_id"),
        t.tasks.c.status == "gold",
        ~select(t.assignments.c.id)
        .where(t.assignments.c.task_id == t.tasks.c.id, t.assignments.c.worker_id == bindparam("p_worker_id"))
        .exists(),
    )
    .limit(1)
)


def lease_gold_task(conn: Connection, project_id: str, worker_id: str) -> dict | None:
    """Take one lease on a gold task the worker has never had (see :func:`_lease_gold_statement`)."""
    return _LEASE_GOLD.first(conn, {"p_project_id": project_id, "p_worker_id": worker_id})


def unseen_gold_exists(conn: Connection, project_id: str, worker_id: str) -> bool:
    """Whether the project has a gold task the worker never had, locked by others or not.

    After :func:`lease_gold_task` found none, this tells "no gold left for this worker" from "the
    gold left is being answered by others at this instant" (their row locks last one submit).
    """
    return _UNSEEN_GOLD.first(conn, {"p_project_id": project_id, "p_worker_id": worker_id}) is not None


_WORKER_HAD_TASK = Prepared(
    select(t.assignments.c.id)
    .where(t.assignments.c.task_id == bindparam("p_task_id"), t.assignments.c.worker_id == bindparam("p_worker_id"))
    .limit(1)
)


def worker_had_task(conn: Connection, task_id: str, worker_id: str) -> bool:
    """Whether the task was ever leased to (or answered by) the worker."""
    return _WORKER_HAD_TASK.first(conn, {"p_task_id": task_id, "p_worker_id": worker_id}) is not None


_STANDING_QUERY = select(t.project_workers).where(
    t.project_workers.c.organization_id == bindparam("p_organization_id"),
    t.project_workers.c.project_id == bindparam("p_project_id"),
    t.project_workers.c.worker_id == bindparam("p_worker_id"),
)
_STANDING = {True: Prepared(_STANDING_QUERY.with_for_update()), False: Prepared(_STANDING_QUERY)}

_STANDING_COLUMNS = (
    "id", "organization_id", "project_id", "worker_id", "status", "reason", "tasks_served", "gold_served",
    "gold_answers", "gold_correct", "updated_at",
)  # fmt: skip


def standing(
    conn: Connection, organization_id: str, project_id: str, worker_id: str, *, lock: bool = True
) -> dict | None:
    """A worker's row in ``project_workers`` (``lock``: locked until the commit on PostgreSQL), or None."""
    params = {"p_organization_id": organization_id, "p_project_id": project_id, "p_worker_id": worker_id}
    return _STANDING[lock].first(conn, params)


def add_standing(conn: Connection, row: Mapping[str, Any]) -> None:
    """Insert a worker's standing unless a concurrent call did first (then that row stands)."""
    values = {**row, "updated_at": driver_datetime(conn, row["updated_at"])}
    insert_prepared(
        conn,
        t.project_workers,
        _STANDING_COLUMNS,
        [tuple(values[c] for c in _STANDING_COLUMNS)],
        skip_conflicts_on=("project_id", "worker_id"),
    )


def standings_of_project(conn: Connection, organization_id: str, project_id: str) -> list[dict]:
    query = scoped(t.project_workers, organization_id).where(t.project_workers.c.project_id == project_id)
    return [dict(row) for row in conn.execute(query).mappings()]

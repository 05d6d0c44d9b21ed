"""A Parquet export on PostgreSQL: each block of tasks read as Arrow columns (ADBC), not JSON lines.

Why: on PostgreSQL, rendering each task as a JSON line (``_arrow_lines``) and parsing it back with
pyarrow cost the database 21 us and the exporting process 20 us a task, so a Parquet export ran at
about 46,000 tasks/s on two cores. Here each block is two queries whose typed columns the ADBC
PostgreSQL driver (Apache Arrow's database connectivity: PostgreSQL's binary COPY read into Arrow
arrays in C) hands over as Arrow tables: the tasks, with their stored ``data`` and ``result`` as
text, and their responses in task order. The members the spec shapes (``data``, ``answer``,
``confidences``, ``methods``) are read from those texts by pyarrow's JSON reader, straight from
the column's buffer; only members holding JSON kept as text (a conversation, a ranking) and the
rare ``reviews`` are put together by the database. The responses become each task's list by
their counts.

Same snapshot, filters and checks as the other exports: the plan (the blocks' id ranges and the
count) comes from the export's :meth:`~truthset.storage.Database.snapshot` transaction, which
publishes its snapshot (``pg_export_snapshot()``) for the readers' ADBC connections to adopt. A
test checks the file against the one built in Python from ``export_rows``.

Not for SQLite: ADBC's SQLite driver carries its own copy of SQLite, and two copies of SQLite in
one process release each other's POSIX locks on the database file (sqlite.org/howtocorrupt.html,
2.2.1), a risk to the annotations the server writes meanwhile.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from sqlalchemy import Select, Text, bindparam, cast, literal_column
from sqlalchemy.dialects.postgresql.base import PGDialect

from truthset.domain import Principal
from truthset.services import export_readers
from truthset.services.formats import LineBlock, _arrow_lines
from truthset.services.formats._sql import Dialect, same_tenant
from truthset.services.formats.parquet import TIME, _Layout
from truthset.services.pacing import Pacer
from truthset.services.policy import Action, require
from truthset.services.projects import get_project
from truthset.services.tasks import task_query
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.engine import SNAPSHOT_ID

#: SQL with $1, $2... parameters, as ADBC's PostgreSQL driver binds them
_DIALECT = PGDialect(paramstyle="numeric_dollar")
_PG = Dialect(postgres=True)


def blocks(
    db: Database,
    principal: Principal,
    project_id: str,
    task_filter: Any,
    layout: _Layout,
    block_size: int,
    on_total: Callable[[int], Any] | None = None,
) -> Iterator[LineBlock]:
    """The export's tasks as blocks of ``block_size`` tasks, each read into a table of
    ``layout.schema`` (:attr:`LineBlock.parsed`), in id order, by :data:`export_readers.READERS`
    connections sharing the export's snapshot."""
    require(principal, Action.READ_TASKS)
    get_project(db, principal, project_id)
    tasks = _tasks_query(principal, task_filter, layout)
    conninfo = db.libpq_conninfo()
    with db.snapshot(lasting=True) as conn, ExitStack() as stack:
        conn.exec_driver_sql("SET LOCAL jit = off")  # see export.export_line_blocks
        ranges, total = export_readers.plan(conn, tasks, block_size)
        if on_total is not None:
            on_total(total)
        snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
        readers = [
            stack.enter_context(closing(_Reader(conninfo, snapshot))) for _ in range(max(1, export_readers.READERS))
        ]
        render = functools.partial(_render, statements=_Statements(tasks, layout), layout=layout)
        yield from export_readers.blocks(readers, render, ranges, Pacer(db), postgres=True)


def _tasks_query(principal: Principal, task_filter: Any, layout: _Layout) -> Select:
    """The chosen tasks' typed columns, their stored ``data`` (as text, each ending with a newline),
    and one JSON text (likewise) of their reviews and of the members the spec shapes that hold
    JSON kept as text (which the database quotes: pyarrow's reader cannot read an object into a
    string). The members of only typed values are read here from ``data`` and ``result``: each
    ``->`` on a ``json`` column parses the whole document again, and the three on ``result`` took
    two fifths of the database's time."""
    quoted = [
        pair
        for pair in _arrow_lines.shaped_members(_PG, layout.fields, layout.questions)
        if not _typed(layout, pair[0])
    ]
    shaped = _PG.object(*quoted, ("reviews", _PG.reviews()))
    c = t.tasks.c
    return task_query(
        principal,
        task_filter,
        c.id,
        c.unique_id,
        c.batch_id,
        c.status,
        c.review_status,
        c.completed_at,
        c.updated_at,
        c.confidence,
        # the stored data, when the spec's fields are all typed: read here (else in ``shaped``)
        literal_column("tasks.data::text || chr(10)" if _typed(layout, "data") else "NULL").label("data"),
        cast(c.metadata, Text).label("metadata"),
        cast(c.result, Text).label("result"),
        literal_column(f"{shaped} || chr(10)").label("shaped"),
    )


def _typed(layout: _Layout, member: str) -> bool:
    """Whether every value of the shaped member ``member`` has an Arrow type (none is JSON text)."""
    members = layout.fields if member == "data" else layout.questions if member == "answer" else []
    return all(kind is not None for _, kind in members)


def _responses_query(tasks: Select, layout: _Layout, low: bool, high: bool) -> Select:
    """The responses of the tasks of ``tasks`` in task then response order, those with an id
    after the parameter ``low`` and up to ``high`` when they are given."""
    r, w = t.responses.alias("r"), t.workers.alias("w")
    answer = _arrow_lines.struct_sql(_PG, "r.answer", layout.questions)
    review = f"NULLIF({_PG.review_of_response()}, 'null')"  # null for none: few responses have one
    query = (
        tasks.with_only_columns(
            r.c.task_id,
            r.c.id,
            r.c.worker_id,
            w.c.kind.label("worker_kind"),
            w.c.name.label("worker_name"),
            literal_column(f"{answer} || chr(10)").label("answer"),
            r.c.created_at,
            r.c.duration_ms,
            literal_column(review).label("review"),
        )
        .join(r, r.c.task_id == t.tasks.c.id)
        .outerjoin(w, w.c.id == r.c.worker_id)
        .where(literal_column(same_tenant("r")))
    )
    # The range on the responses' task index only: PostgreSQL reads the block's responses by it, and
    # each one's task by its primary key. With the range on the tasks too it estimated one row on each
    # side, and for some blocks walked a thousand tasks for each response (1.6 s instead of 0.03).
    if low:
        query = query.where(r.c.task_id > bindparam("low"))
    if high:
        query = query.where(r.c.task_id <= bindparam("high"))
    return query.order_by(r.c.task_id, r.c.id)


def _tasks_in_range(tasks: Select, low: bool, high: bool) -> Select:
    """The tasks of ``tasks`` in id order, those after the parameter ``low`` and up to ``high``
    when they are given."""
    ids = t.tasks.c.id
    ranged = tasks.where(ids > bindparam("low")) if low else tasks
    return (ranged.where(ids <= bindparam("high")) if high else ranged).order_by(ids)


class _Statements:
    """A block's two queries, compiled once per shape of range (open at either end or not): the
    same text for every block, with the range's ids as parameters."""

    def __init__(self, tasks: Select, layout: _Layout) -> None:
        self._tasks, self._layout = tasks, layout
        self._compiled: dict[tuple[bool, bool], tuple[tuple[str, list[str], dict[str, Any]], ...]] = {}

    def of(self, low: str | None, high: str | None) -> list[tuple[str, list[Any]]]:
        """The SQL and parameters of the tasks' and the responses' query for the range (low, high]."""
        shape = (low is not None, high is not None)
        if shape not in self._compiled:  # two readers may both compile a shape first: the same result
            queries = (_tasks_in_range(self._tasks, *shape), _responses_query(self._tasks, self._layout, *shape))
            self._compiled[shape] = tuple(_compiled(query) for query in queries)
        values = {"low": low, "high": high}
        return [
            (sql, [values[n] if n in values else fixed[n] for n in names])
            for sql, names, fixed in self._compiled[shape]
        ]


def _compiled(query: Select) -> tuple[str, list[str], dict[str, Any]]:
    """``query``'s SQL with $1, $2... parameters, the parameters' names in order, and their values."""
    compiled = query.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    return compiled.string, list(compiled.positiontup or ()), dict(compiled.params)


class _Reader:
    """An ADBC connection in a read-only transaction that adopted the export's snapshot."""

    def __init__(self, conninfo: str, snapshot: str) -> None:
        import adbc_driver_postgresql.dbapi as adbc  # here: only a Parquet export on PostgreSQL needs it

        if not SNAPSHOT_ID.fullmatch(snapshot):  # it goes into a statement as a literal
            raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
        self._connection = adbc.connect(conninfo, autocommit=True)  # libpq takes either form
        self._cursor = self._connection.cursor()
        for statement in (
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            f"SET TRANSACTION SNAPSHOT '{snapshot}'",
            "SET LOCAL jit = off",
            # a plan for each block's range, made knowing its ids: a prepared statement's (ADBC
            # prepares them) generic plan is made for any range, which could be the whole table
            "SET LOCAL plan_cache_mode = force_custom_plan",
        ):
            self._cursor.execute(statement)

    def table(self, sql: str, parameters: list[Any]) -> pa.Table:
        self._cursor.execute(sql, parameters or None)
        return self._cursor.fetch_arrow_table()

    def close(self) -> None:
        try:
            self._cursor.execute("COMMIT")
        finally:
            self._cursor.close()
            self._connection.close()


def _render(
    reader: _Reader, low: str | None, high: str | None, *, statements: _Statements, layout: _Layout
) -> LineBlock:
    """One block: its tasks and their responses read as Arrow, put together as a table."""
    (tasks_sql, tasks_parameters), (responses_sql, responses_parameters) = statements.of(low, high)
    block = reader.table(tasks_sql, tasks_parameters)
    responses = reader.table(responses_sql, responses_parameters)
    shaped = _json_column(block.column("shaped"), pa.struct(_shaped_fields(layout)))
    data = _json_column(block.column("data"), layout.data_type) if _typed(layout, "data") else shaped.field("data")
    results = _json_column(_lines(block.column("result")), _result_type(layout))
    answer = results.field("answer") if _typed(layout, "answer") else shaped.field("answer")
    table = pa.table(
        {
            "task_id": block.column("id"),
            "unique_id": block.column("unique_id"),
            "batch_id": block.column("batch_id"),
            "status": block.column("status"),
            "review_status": block.column("review_status"),
            "completed_at": block.column("completed_at"),
            "updated_at": block.column("updated_at"),
            "confidence": block.column("confidence"),
            "data": data,
            "answer": answer,
            "confidences": results.field("confidence"),
            "methods": results.field("methods"),
            "metadata": block.column("metadata"),
            "result": block.column("result"),
            "responses": _responses(block.column("id"), responses, layout),
            "reviews": shaped.field("reviews"),
        }
    )
    return LineBlock(block.num_rows, b"", table.cast(layout.schema))


def _shaped_fields(layout: _Layout) -> list[pa.Field]:
    """The members of :func:`_tasks_query`'s ``shaped`` JSON."""
    quoted = [layout.schema.field(name) for name in ("data", "answer") if not _typed(layout, name)]
    return [*quoted, layout.schema.field("reviews")]


def _result_type(layout: _Layout) -> pa.StructType:
    """The members of a stored result that the Parquet row has as columns (``answer``,
    ``confidence`` as ``confidences``, ``methods``)."""
    return pa.struct(
        [
            pa.field("answer", layout.answer_type),
            pa.field("confidence", layout.schema.field("confidences").type),
            pa.field("methods", layout.schema.field("methods").type),
        ]
    )


def _lines(texts: pa.ChunkedArray) -> pa.Array:
    """JSON texts (nulls as empty objects), each followed by a newline: what :func:`_json_column` reads."""
    return pc.binary_join_element_wise(pc.fill_null(_array(texts), "{}"), "", "\n")


def _responses(task_ids: pa.ChunkedArray, rows: pa.Table, layout: _Layout) -> pa.Array:
    """Each task's responses as a list of structs, from ``rows`` (in task order)."""
    kind = layout.response_type
    members = {
        "id": rows.column("id"),
        "worker_id": rows.column("worker_id"),
        "worker_kind": rows.column("worker_kind"),
        "worker_name": rows.column("worker_name"),
        "answer": _json_column(rows.column("answer"), layout.answer_type),
        "created_at": rows.column("created_at").cast(TIME),
        "duration_ms": rows.column("duration_ms").cast(pa.int64()),
        "review": _nullable_json_column(rows.column("review"), kind.field("review").type),
    }
    items = pa.StructArray.from_arrays(
        [_array(members[field.name]).cast(field.type) for field in kind], fields=list(kind)
    )
    counted = pc.value_counts(rows.column("task_id"))
    at = pc.index_in(task_ids, value_set=counted.field("values"))
    counts = pc.fill_null(pc.take(counted.field("counts"), at), 0)
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(counts).combine_chunks()])
    return pa.LargeListArray.from_arrays(offsets, items).cast(pa.list_(kind))


def _json_column(texts: pa.ChunkedArray | pa.Array, kind: pa.StructType) -> pa.StructArray:
    """Texts of JSON objects, each ending with a newline (never null), as a struct column of
    ``kind``: read in place by pyarrow's JSON reader, or, when a value does not fit its type (an
    answer stored under an older spec), converted in Python with null where it does not fit."""
    array = _array(texts)
    if len(array) == 0:
        return pa.array([], kind)
    first, last, data = _text_bytes(array)
    options = pajson.ParseOptions(explicit_schema=pa.schema(list(kind)), unexpected_field_behavior="ignore")
    reading = pajson.ReadOptions(use_threads=False, block_size=max(last - first + 1, 1 << 20))
    try:
        table = pajson.read_json(
            pa.BufferReader(data.slice(first, last - first)), parse_options=options, read_options=reading
        )
        return pa.StructArray.from_arrays(
            [table.column(f.name).combine_chunks().cast(f.type) for f in kind], fields=list(kind)
        )
    except pa.ArrowInvalid:
        values = [_arrow_lines.coerce(orjson.loads(text), kind) for text in array.to_pylist()]
        return pa.array(values, kind)


def _text_bytes(array: pa.Array) -> tuple[int, int, pa.Buffer]:
    """Where the values of a string array (no nulls) start and end in its data buffer, and the buffer."""
    width = 8 if pa.types.is_large_string(array.type) else 4
    offsets = memoryview(array.buffers()[1]).cast("q" if width == 8 else "i")
    return offsets[array.offset], offsets[array.offset + len(array)], array.buffers()[2]


def _nullable_json_column(texts: pa.ChunkedArray, kind: pa.StructType) -> pa.Array:
    """JSON objects' texts or nulls (few: only reviewed tasks' responses have any) as a struct column."""
    array = _array(texts)
    if array.null_count == len(array):
        return pa.nulls(len(array), kind)
    return pa.array([None if text is None else orjson.loads(text) for text in array.to_pylist()], kind)


def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column

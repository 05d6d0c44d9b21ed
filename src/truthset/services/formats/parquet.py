"""Parquet: one row per task, typed columns from the project's spec, written by pyarrow in record
batches (one per block of tasks), so memory holds one block however big the export.

The schema (docs/formats.md has it in full): ``task_id, unique_id, batch_id, status,
review_status`` (strings), ``completed_at, updated_at`` (UTC timestamps), ``confidence`` (double);
``data``, a struct with one member per field of the spec; ``answer``, a struct with one member per
question, and ``confidences`` and ``methods`` likewise; ``metadata`` and ``result`` (JSON text);
``responses``, a list of structs (``id, worker_id, worker_kind, worker_name, answer`` (the same
struct as ``answer``), ``created_at``, ``duration_ms``, ``review``); ``reviews``, a list of structs.
Answers of ``label`` and ``text`` questions are strings, ``labels`` lists of strings, ``rating`` and
``number`` doubles; other types (spans, boxes, rankings...) and the ``conversation`` and
``responses`` fields are JSON text, which every reader can parse. An answer that does not fit its
question's column (written under an older spec) is null there and kept whole in ``result``.
Readable by pyarrow, pandas, DuckDB, Spark and ``datasets.load_dataset("parquet", ...)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from truthset.questions import asked_questions
from truthset.services.formats import LineBlock, LineSql, _arrow_lines

ROWS_PER_BATCH = 2000
_WRITE_BUFFER = 1 << 20
TIME = pa.timestamp("us", tz="UTC")
JSON_TEXT = pa.string()  # JSON documents as text (Parquet's JSON logical type is not read everywhere)

_QUESTION_TYPES: dict[str, pa.DataType] = {
    "label": pa.string(),
    "text": pa.string(),
    "labels": pa.list_(pa.string()),
    "rating": pa.float64(),
    "number": pa.float64(),
}
_FIELD_TYPES: dict[str, pa.DataType] = {"text": pa.string(), "html": pa.string(), "image": pa.string()}
_REVIEW = pa.struct([("id", pa.string()), ("verdict", pa.string()), ("reviewer_id", pa.string())])
_REVIEWS = pa.list_(
    pa.struct(
        [
            ("id", pa.string()),
            ("reviewer_id", pa.string()),
            ("verdict", pa.string()),
            ("reason", pa.string()),
            ("response_id", pa.string()),
            ("created_at", TIME),
        ]
    )
)


def _fits(kind: pa.DataType | None) -> Callable[[Any], Any]:
    """How a value goes into a column of ``kind``: as it is when it fits, else null (kept in
    ``result``); ``None``: JSON kept as text."""
    if kind is None:
        return _json
    if kind == pa.string():
        return lambda v: v if isinstance(v, str) else None
    if kind == pa.float64():
        return lambda v: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
    if kind == pa.list_(pa.string()):
        return lambda v: v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None
    return _json


class _Layout:
    """The project's columns: one member per field and per question, with their Arrow types."""

    def __init__(self, spec: dict[str, Any]) -> None:
        # (name, Arrow type), None for JSON kept as text (a string column too, but written as JSON);
        # a question asked for each candidate of a responses field is one per candidate, <name>-<i>
        self.fields = [(f["name"], _FIELD_TYPES.get(f["type"])) for f in spec["fields"]]
        self.questions = [(name, _QUESTION_TYPES.get(kind)) for name, kind in asked_questions(spec)]
        self.data_type = pa.struct([(name, kind or JSON_TEXT) for name, kind in self.fields])
        self.answer_type = pa.struct([(name, kind or JSON_TEXT) for name, kind in self.questions])
        self._field_fit = [(name, _fits(kind)) for name, kind in self.fields]
        self._answer_fit = [(name, _fits(kind)) for name, kind in self.questions]
        response = pa.struct(
            [
                ("id", pa.string()),
                ("worker_id", pa.string()),
                ("worker_kind", pa.string()),
                ("worker_name", pa.string()),
                ("answer", self.answer_type),
                ("created_at", TIME),
                ("duration_ms", pa.int64()),
                ("review", _REVIEW),
            ]
        )
        names = [name for name, _ in self.questions]
        self.schema = pa.schema(
            [
                ("task_id", pa.string()),
                ("unique_id", pa.string()),
                ("batch_id", pa.string()),
                ("status", pa.string()),
                ("review_status", pa.string()),
                ("completed_at", TIME),
                ("updated_at", TIME),
                ("confidence", pa.float64()),
                ("data", self.data_type),
                ("answer", self.answer_type),
                ("confidences", pa.struct([(name, pa.float64()) for name in names])),
                ("methods", pa.struct([(name, pa.string()) for name in names])),
                ("metadata", JSON_TEXT),
                ("result", JSON_TEXT),
                ("responses", pa.list_(response)),
                ("reviews", _REVIEWS),
            ]
        )
        self.response_type = response

    def data(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else {name: fit(value.get(name)) for name, fit in self._field_fit}

    def answer(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            return None
        return {name: fit(value.get(name)) for name, fit in self._answer_fit}


_number = _fits(pa.float64())
_text = _fits(pa.string())


def _times(values: list[str | None]) -> pa.Array:
    return pa.array(values, pa.string()).cast(TIME)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _list_of_structs(rows: list[dict[str, Any]], key: str, kind: pa.StructType, fit: dict[str, Any]) -> pa.Array:
    """The list column ``key`` of ``rows``, built member by member (one Arrow array per member, not
    one Python conversion per item); ``fit`` converts a member's values where needed."""
    offsets = [0]
    members: dict[str, list[Any]] = {field.name: [] for field in kind}
    for row in rows:
        for item in row.get(key) or ():
            for name, values in members.items():
                values.append(item.get(name))
        offsets.append(offsets[-1] + len(row.get(key) or ()))
    arrays = []
    for field in kind:
        values = members[field.name]
        if field.type == TIME:
            arrays.append(_times(values))
        else:
            convert = fit.get(field.name)
            arrays.append(pa.array([convert(v) for v in values] if convert else values, field.type))
    children = pa.StructArray.from_arrays(arrays, fields=list(kind))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), children)


def record_batch(layout: _Layout, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """One block of export rows as a record batch of ``layout.schema``."""
    results = [row["result"] or {} for row in rows]
    names = [name for name, _ in layout.questions]
    schema = layout.schema
    columns = [
        pa.array([row["task_id"] for row in rows], pa.string()),
        pa.array([row["unique_id"] for row in rows], pa.string()),
        pa.array([row["batch_id"] for row in rows], pa.string()),
        pa.array([row["status"] for row in rows], pa.string()),
        pa.array([row.get("review_status") for row in rows], pa.string()),
        _times([row["completed_at"] for row in rows]),
        _times([row.get("updated_at") for row in rows]),
        pa.array([row["confidence"] for row in rows], pa.float64()),
        pa.array([layout.data(row["data"]) for row in rows], schema.field("data").type),
        pa.array([layout.answer(row["answer"]) for row in rows], layout.answer_type),
        pa.array(
            [_per_question(r.get("confidence"), names, _number) for r in results], schema.field("confidences").type
        ),
        pa.array([_per_question(r.get("methods"), names, _text) for r in results], schema.field("methods").type),
        pa.array([_json(row["metadata"]) for row in rows], JSON_TEXT),
        pa.array([_json(row["result"]) for row in rows], JSON_TEXT),
        _list_of_structs(rows, "responses", layout.response_type, {"answer": layout.answer}),
        _list_of_structs(rows, "reviews", _REVIEWS.value_type, {}),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _per_question(values: Any, names: list[str], fit: Callable[[Any], Any]) -> dict[str, Any] | None:
    return {name: fit(values.get(name)) for name in names} if isinstance(values, dict) else None


class ParquetWriter:
    media_type = "application/vnd.apache.parquet"
    extension = "parquet"
    #: on PostgreSQL the blocks come as Arrow tables of :meth:`layout`'s schema (services/export_arrow.py)
    arrow_on_postgres = True

    def layout(self, project: dict[str, Any]) -> _Layout:
        return _Layout(project["spec"])

    def line_sql(self, project: dict[str, Any], postgres: bool) -> LineSql:
        """The database renders each task as a JSON line of this format's schema (see _arrow_lines),
        and the export's reader threads read each block into a table (:func:`read_block`), which
        :meth:`write` then writes."""
        layout = _Layout(project["spec"])
        line = _arrow_lines.line_sql(layout.fields, layout.questions, postgres)
        return LineSql(line, functools.partial(read_block, layout))

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any] | LineBlock], out: BinaryIO) -> int:
        layout = _Layout(project["spec"])
        count = 0
        # pyarrow writes each page through the file's Python write(): buffered here, it calls it once a MiB
        stream = pa.BufferedOutputStream(pa.PythonFile(out, mode="w"), buffer_size=_WRITE_BUFFER)
        with pq.ParquetWriter(stream, layout.schema, compression="zstd") as writer:
            block: list[dict[str, Any]] = []
            for row in rows:
                if isinstance(row, LineBlock):  # the database's lines (line_sql): a record batch a block
                    if row.count:
                        writer.write_table(row.parsed if row.parsed is not None else read_block(layout, row))
                    count += row.count
                    continue
                block.append(row)
                if len(block) == ROWS_PER_BATCH:
                    writer.write_table(_table(layout, block))
                    count += len(block)
                    block = []
            if block or not count:  # an empty export is still a file with the schema
                writer.write_table(_table(layout, block))
                count += len(block)
        stream.detach()  # the rest written, and ``out`` left open: it is the caller's
        return count


def _table(layout: _Layout, block: list[dict[str, Any]]) -> pa.Table:
    """One block of row dicts as a table."""
    return pa.Table.from_batches([record_batch(layout, block)], schema=layout.schema)


def read_block(layout: _Layout, block: LineBlock) -> pa.Table:
    """One block of JSON lines in this format's shape (from the database, ``line_sql``) read by pyarrow."""
    options = pajson.ParseOptions(explicit_schema=layout.schema, unexpected_field_behavior="ignore")
    # One parse of the whole block in this thread: pyarrow's default (1 MiB blocks, a thread pool)
    # spent a third more CPU on a block of 2,000 lines, and the export's process is one of many.
    reading = pajson.ReadOptions(use_threads=False, block_size=max(len(block.text) + 1, 1 << 20))
    try:
        # a BufferReader reads the bytes in place: a Python file would be read through Python calls
        table = pajson.read_json(pa.BufferReader(block.text), parse_options=options, read_options=reading)
    except pa.ArrowInvalid:  # a value of the wrong JSON type the SQL did not catch: the careful way
        row_type = pa.struct(list(layout.schema))
        rows = [_arrow_lines.coerce(orjson.loads(line), row_type) for line in block.text.split(b"\n")]
        return pa.Table.from_pylist(rows, schema=layout.schema)
    return table.select(layout.schema.names).cast(layout.schema)


WRITER = ParquetWriter()

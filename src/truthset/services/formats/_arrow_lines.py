"""The SQL that renders each task as one JSON line shaped like the Parquet export's schema, so that
pyarrow's JSON reader (C++) builds the record batches: Python never touches a task.

Why: building a million tasks' columns (each with three responses) in Python took ten times as long
as the database took to read them. A typed member is read as stored: a value must fit its
column (pyarrow refuses a block holding a value of the wrong type, which is then converted in
Python: null where it does not fit, as ever; the whole value stays in ``result``); stored JSON is
spliced as it is; what the schema keeps as JSON text is quoted as a string. SQLite's JSON1 and
PostgreSQL's json operators, one builder for both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from truthset.services.formats._sql import RESPONSES_OF_TASK, Dialect


def struct_sql(d: Dialect, document: str, members: list[tuple[str, pa.DataType | None]]) -> str:
    """The JSON object of a struct column from the JSON ``document`` (null when the document is).

    ``members``: (name, Arrow type), the type None for JSON kept as text. Members typed in Arrow
    are read by pyarrow from the stored JSON as it is (a whole document is copied when every
    member is typed: pyarrow skips the keys the schema has not); only members
    kept as JSON text are taken out one by one, to be quoted. A stored value of the wrong JSON type
    makes pyarrow refuse the block, which is then converted in Python (see ``coerce``).
    """
    if all(kind is not None for _, kind in members):
        return d.json(document)
    pairs = [(name, d.json(d.get(document, name)) if kind is not None else d.as_text(d.get(document, name)))
             for name, kind in members]  # fmt: skip
    return f"CASE WHEN {document} IS NULL THEN 'null' ELSE {d.object(*pairs)} END"


def line_sql(
    fields: list[tuple[str, pa.DataType | None]], questions: list[tuple[str, pa.DataType | None]], postgres: bool
) -> str:
    """SQL (a column of ``FROM tasks``) giving each task's JSON line in the Parquet schema's shape."""
    d = Dialect(postgres)
    response = d.response(struct_sql(d, "r.answer", questions))
    return d.object(
        ("task_id", d.own("tasks.id")),
        ("unique_id", d.text("tasks.unique_id")),
        ("batch_id", d.ours("tasks.batch_id")),
        ("status", d.own("tasks.status")),
        ("review_status", d.ours("tasks.review_status")),
        ("completed_at", d.time("tasks.completed_at")),
        ("updated_at", d.own_time("tasks.updated_at")),
        ("confidence", d.number("tasks.confidence")),
        *shaped_members(d, fields, questions),
        ("metadata", d.as_text("tasks.metadata")),
        ("result", d.as_text("tasks.result")),
        ("responses", d.array(response, RESPONSES_OF_TASK, "r.id")),
        ("reviews", d.reviews()),
    )


def shaped_members(
    d: Dialect, fields: list[tuple[str, pa.DataType]], questions: list[tuple[str, pa.DataType]]
) -> list[tuple[str, str]]:
    """The members of a task's Parquet row that the spec shapes: ``data``, ``answer``,
    ``confidences`` and ``methods``, as (name, SQL giving its JSON) pairs."""
    names = [name for name, _ in questions]
    return [
        ("data", struct_sql(d, "tasks.data", fields)),
        ("answer", struct_sql(d, d.get("tasks.result", "answer"), questions)),
        ("confidences", struct_sql(d, d.get("tasks.result", "confidence"), [(n, pa.float64()) for n in names])),
        ("methods", struct_sql(d, d.get("tasks.result", "methods"), [(n, pa.string()) for n in names])),
    ]


def coerce(value: Any, kind: pa.DataType) -> Any:
    """``value`` (parsed JSON) made to fit ``kind``, null where it does not: the careful path for a
    block pyarrow's reader refused."""
    if value is None:
        return None
    if pa.types.is_struct(kind):
        if not isinstance(value, dict):
            return None
        return {field.name: coerce(value.get(field.name), field.type) for field in kind}
    if pa.types.is_list(kind):  # all or nothing, as the Python conversion: a list half nulls says wrong things
        items = [coerce(item, kind.value_type) for item in value] if isinstance(value, list) else None
        return None if items is None or any(x is None for x in items) else items
    if pa.types.is_string(kind):
        return value if isinstance(value, str) else None
    if pa.types.is_timestamp(kind):
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return value

"""SQL text that renders JSON objects in the database (the JSONL and Parquet exports' lines)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

ISO_FORMAT_PG = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'  # to_char's pattern for the export's times
#: SQLite's and PostgreSQL's limits on a function's arguments are 127 and 100: past this, a chain of ||.
MAX_FORMAT_ARGS = 99


class Quoted(NamedTuple):
    """A value of :func:`sql_object` that is a JSON string: SQL giving text that is never NULL and
    has nothing to escape (an id, a status or a time of truthset's own making), then ``suffix``.
    The format writes the quotes (and the suffix) itself: a ``'"' || value || '"'`` for each of a
    response's id, worker and time was a tenth of the rendering of a Parquet export's line."""

    sql: str
    suffix: str = ""


def sql_object(function: str, pairs: Sequence[tuple[str, str | Quoted]]) -> str:
    """SQL giving a JSON object's text from (key, SQL giving the value's JSON text, or a
    :class:`Quoted` value) pairs.

    One call of ``function`` (SQLite's ``printf``, PostgreSQL's ``format``) per object rather than a
    chain of ``||``: each ``||`` copies the text built so far, and the chain made a JSONL line's
    rendering on SQLite a fifth slower. Every value must be non-NULL text (``%s`` would write NULL
    as nothing). Keys are truthset's own names or a spec's names (letters, digits, ``_``, ``-``):
    nothing to escape but ``%``, for the format.
    """
    if len(pairs) > MAX_FORMAT_ARGS:
        parts = [f"""'{"," if i else "{"}"{key}":' || {_text(value)}""" for i, (key, value) in enumerate(pairs)]
        return " || ".join(parts) + " || '}'"
    template = "{" + ",".join(f'"{_escape(key)}":{_spec(value)}' for key, value in pairs) + "}"
    arguments = ", ".join(value.sql if isinstance(value, Quoted) else value for _, value in pairs)
    return f"{function}('{template}', {arguments})"


def _escape(text: str) -> str:
    return text.replace("%", "%%")


def _spec(value: str | Quoted) -> str:
    return f'"%s{_escape(value.suffix)}"' if isinstance(value, Quoted) else "%s"


def _text(value: str | Quoted) -> str:
    """SQL giving the value's JSON text (a chain of ``||``, for an object past the format's limit)."""
    return f"""('"' || {value.sql} || '{value.suffix}"')""" if isinstance(value, Quoted) else value


def same_tenant(alias: str) -> str:
    """SQL: the row ``alias`` (a task's response or review) is of the task's organization.

    Written so that it filters rows but cannot be an index condition (``|| ''``): on tables that
    were never analyzed (a bulk load minutes ago, before autovacuum's first ANALYZE) PostgreSQL's
    planner otherwise ANDed the task index with the organization index, i.e. read every response
    of the organization for each task: 53 s instead of 3 s for 200,000 tasks. The task id alone
    finds a task's few rows.
    """
    return f"({alias}.organization_id || '') = tasks.organization_id"


#: the FROM clause of a subquery over a task's responses (``r``) with their workers (``w``), correlated
#: to the ``tasks`` row of the outer query
RESPONSES_OF_TASK = (
    f"FROM responses r LEFT JOIN workers w ON w.id = r.worker_id WHERE r.task_id = tasks.id AND {same_tenant('r')}"
)


class Dialect:
    """The pieces of an export line's SQL, on SQLite (JSON1, ``printf``) or PostgreSQL (``format``):
    one builder of each line for both databases (the JSONL line in ``services/export.py``, the
    Parquet line in ``_arrow_lines.py``)."""

    def __init__(self, postgres: bool) -> None:
        self.pg = postgres

    def get(self, document: str, key: str) -> str:
        """The member ``key`` of the JSON ``document`` as JSON (SQL NULL when missing)."""
        return f"({document} -> '{key}')" if self.pg else f"({document} -> '$.{key}')"

    def as_text(self, value: str) -> str:
        """A JSON value (or stored JSON text) as a JSON string holding its text (null stays null)."""
        return f"COALESCE(to_json(({value})::text)::text, 'null')" if self.pg else f"json_quote('' || {value})"

    def json(self, value: str) -> str:
        """A JSON value as JSON text, null when missing."""
        return f"COALESCE(({value})::text, 'null')" if self.pg else f"COALESCE({value}, 'null')"

    def text(self, column: str) -> str:
        """A text column (anything people typed) as a JSON string or null."""
        return f"COALESCE(to_json({column})::text, 'null')" if self.pg else f"COALESCE(json_quote({column}), 'null')"

    def ours(self, column: str) -> str:
        """An id, status or kind of truthset's own (nothing to escape) as a JSON string or null."""
        return f"""COALESCE('"' || {column} || '"', 'null')"""

    def own(self, column: str) -> Quoted:
        """Like :meth:`ours`, for a column that is never NULL (the format quotes it)."""
        return Quoted(column)

    def own_time(self, column: str) -> Quoted:
        """Like :meth:`time`, for a column that is never NULL."""
        if self.pg:
            return Quoted(f"to_char({column}, '{ISO_FORMAT_PG}')")
        return Quoted(f"replace({column}, ' ', 'T')", "Z")

    def time(self, column: str) -> str:
        if self.pg:
            return f"""COALESCE('"' || to_char({column}, '{ISO_FORMAT_PG}') || '"', 'null')"""
        return f"""COALESCE('"' || replace({column}, ' ', 'T') || 'Z"', 'null')"""

    def number(self, column: str) -> str:
        return f"COALESCE(({column})::text, 'null')" if self.pg else f"COALESCE(json_quote({column}), 'null')"

    def object(self, *pairs: tuple[str, str | Quoted]) -> str:
        """A JSON object from (key, SQL giving the value's JSON text, never NULL) pairs."""
        return sql_object("format" if self.pg else "printf", pairs)

    def array(self, item: str, rows: str, order: str) -> str:
        if self.pg:
            return f"COALESCE((SELECT '[' || string_agg({item}, ',' ORDER BY {order}) || ']' {rows}), '[]')"
        ordered = f"SELECT {item} AS item {rows} ORDER BY {order}"  # group_concat keeps its order
        return f"COALESCE((SELECT '[' || group_concat(item, ',') || ']' FROM ({ordered})), '[]')"

    def response(self, answer: str, *more: tuple[str, str]) -> str:
        """A response ``r`` (with its worker ``w``) as a JSON object: ``answer`` the SQL of its
        answer's JSON, ``more`` the members a format adds before its ``review``."""
        return self.object(
            ("id", self.own("r.id")),
            ("worker_id", self.own("r.worker_id")),
            ("worker_kind", self.ours("w.kind")),
            ("worker_name", self.text("w.name")),
            ("answer", answer),
            ("created_at", self.own_time("r.created_at")),
            ("duration_ms", self.number("r.duration_ms")),
            *more,
            ("review", self.review_of_response()),
        )

    def review_of_response(self) -> str:
        """A response ``r``'s review as JSON, 'null' for none: the fix that made it, else its task's
        first review after it (as ``export_rows`` finds it); read only for a task that was reviewed."""
        review = self.object(
            ("id", self.own("v.id")), ("verdict", self.own("v.verdict")), ("reviewer_id", self.own("v.reviewer_id"))
        )
        return f"""CASE WHEN tasks.review_status IS NULL THEN 'null' ELSE COALESCE(
        (SELECT {review} FROM reviews v WHERE v.task_id = r.task_id AND v.response_id = r.id LIMIT 1),
        (SELECT {review} FROM reviews v WHERE v.task_id = r.task_id AND v.id > r.id ORDER BY v.id LIMIT 1),
        'null') END"""

    def reviews(self) -> str:
        """A task's reviews as a JSON array, in order ('[]' for a task that was never reviewed)."""
        item = self.object(
            ("id", self.own("v.id")),
            ("reviewer_id", self.own("v.reviewer_id")),
            ("verdict", self.own("v.verdict")),
            ("reason", self.text("v.reason")),
            ("response_id", self.ours("v.response_id")),
            ("created_at", self.own_time("v.created_at")),
        )
        rows = f"FROM reviews v WHERE v.task_id = tasks.id AND {same_tenant('v')}"
        return f"CASE WHEN tasks.review_status IS NULL THEN '[]' ELSE {self.array(item, rows, 'v.id')} END"

"""SQL text that renders JSON objects in the database (the JSONL and Parquet exports' lines)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

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

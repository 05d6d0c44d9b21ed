"""SQL text that renders JSON objects in the database (the JSONL and Parquet exports' lines)."""

from __future__ import annotations

from collections.abc import Sequence

#: SQLite's and PostgreSQL's limits on a function's arguments are 127 and 100: past this, a chain of ||.
MAX_FORMAT_ARGS = 99


def sql_object(function: str, pairs: Sequence[tuple[str, str]]) -> str:
    """SQL giving a JSON object's text from (key, SQL giving the value's JSON text) pairs.

    One call of ``function`` (SQLite's ``printf``, PostgreSQL's ``format``) per object rather than a
    chain of ``||``: each ``||`` copies the text built so far, and the chain made a JSONL line's
    rendering on SQLite a fifth slower. Every value must be non-NULL text (``%s`` would write NULL
    as nothing). Keys are truthset's own names or a spec's names (letters, digits, ``_``, ``-``):
    nothing to escape but ``%``, for the format.
    """
    if len(pairs) > MAX_FORMAT_ARGS:
        parts = [f"""'{"," if i else "{"}"{key}":' || {value}""" for i, (key, value) in enumerate(pairs)]
        return " || ".join(parts) + " || '}'"
    template = "{" + ",".join(f'"{key.replace("%", "%%")}":%s' for key, _ in pairs) + "}"
    return f"{function}('{template}', {', '.join(value for _, value in pairs)})"


def same_tenant(alias: str) -> str:
    """SQL: the row ``alias`` (a task's response or review) is of the task's organization.

    Written so that it filters rows but cannot be an index condition (``|| ''``): on tables that
    were never analyzed (a bulk load minutes ago, before autovacuum's first ANALYZE) PostgreSQL's
    planner otherwise ANDed the task index with the organization index, i.e. read every response
    of the organization for each task: 53 s instead of 3 s for 200,000 tasks. The task id alone
    finds a task's few rows.
    """
    return f"({alias}.organization_id || '') = tasks.organization_id"

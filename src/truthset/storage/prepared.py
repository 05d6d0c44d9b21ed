"""Hot-path statements, compiled once per database dialect and run straight on the driver's cursor.

Why not ``conn.execute``: for a cached statement SQLAlchemy still spends about 80 µs of Python per
execution (cache key, events, result metadata), several times what SQLite takes to run it, and the
annotation loop (the queue: the product's own core) runs a dozen statements per response. Here the
SQL is still SQLAlchemy's, compiled for the connection's dialect, and the values still go through
SQLAlchemy's own bind and result processors of each column type, so the rows are the ones
``conn.execute`` would return; only the per-execution machinery is skipped. Statements must not use
expanding (``IN``) parameters. Use :class:`Prepared` for statements run on every request, and plain
``conn.execute`` everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any]


@dataclass
class _Compiled:
    dialect: Dialect
    sql: str
    positional: tuple[str, ...] | None  # parameter order for positional drivers (sqlite3), else None
    defaults: dict[str, Any]  # values of the statement's own literals (the caller gives the rest)
    binds: tuple[tuple[str, Processor], ...]  # parameters whose type converts the value
    columns: tuple[str, ...]  # result keys, in order
    types: tuple[Any, ...]  # the dialect's type of each result column
    # result positions whose type converts the value; known once the driver has described a result
    results: tuple[tuple[int, Processor], ...] | None = None


class Prepared:
    """One SQLAlchemy Core statement, ready to run on any dialect without per-call compilation."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run the statement and return every result row as a dict."""
        compiled, cursor = self._run(conn, params)
        try:
            return [self._row(compiled, row, cursor) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Run the statement and return its first row (the rest is discarded), or None."""
        compiled, cursor = self._run(conn, params)
        try:
            row = cursor.fetchone()
            return None if row is None else self._row(compiled, row, cursor)
        finally:
            cursor.close()

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a statement without results; returns the number of rows it changed."""
        _compiled, cursor = self._run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = self._compiled.get(conn.dialect.name) or self._compile(conn.dialect)
        values = {**compiled.defaults, **params}
        for name, process in compiled.binds:
            values[name] = process(values[name])
        arguments = values if compiled.positional is None else [values[name] for name in compiled.positional]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, arguments)
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            # the exception SQLAlchemy would raise (IntegrityError, OperationalError, ...), so callers
            # handle one family of database errors whichever way a statement ran
            raise DBAPIError.instance(compiled.sql, arguments, exc, conn.dialect.loaded_dbapi.Error) from exc
        return compiled, cursor

    @staticmethod
    def _row(compiled: _Compiled, row: Any, cursor: Any) -> dict[str, Any]:
        if compiled.results is None:
            compiled.results = _result_processors(compiled, cursor.description)
        if compiled.results:
            row = list(row)
            for index, process in compiled.results:
                row[index] = process(row[index])
        return dict(zip(compiled.columns, row, strict=True))

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiler = self.statement.compile(dialect=dialect)
        binds, defaults = {}, {}
        for bind, name in compiler.bind_names.items():  # a name used twice appears twice
            if bind.expanding:
                raise ValueError(f"a prepared statement cannot expand parameter {name!r}")
            if not bind.required:
                defaults[name] = bind.effective_value
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds[name] = process
        columns = list(getattr(self.statement, "exported_columns", ()))
        compiled = _Compiled(
            dialect=dialect,
            sql=compiler.string,
            positional=tuple(compiler.positiontup) if compiler.positional else None,  # type: ignore[arg-type]
            defaults=defaults,
            binds=tuple(binds.items()),
            columns=tuple(column.key for column in columns),
            types=tuple(column.type.dialect_impl(dialect) for column in columns),
        )
        self._compiled[dialect.name] = compiled
        return compiled


def _result_processors(compiled: _Compiled, description: Any) -> tuple[tuple[int, Processor], ...]:
    """Each column type's result processor; some depend on the type the driver reports (PostgreSQL)."""
    found = []
    for index, (impl, described) in enumerate(zip(compiled.types, description, strict=True)):
        process = impl.result_processor(compiled.dialect, described[1])
        if process is not None:
            found.append((index, process))
    return tuple(found)

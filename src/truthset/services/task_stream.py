"""Bulk import bodies read as they stream in: the lines of JSONL, the items of a JSON array.

Both turn an iterable of byte chunks (a request body, a file) into numbered items without ever
holding the body, and both bound what one item may cost: a JSONL line longer than the per-task
limit is skipped to its end without being kept (the import reports it by line number); a JSON
array is parsed incrementally by ijson (yajl's C parser), and an array item that is still not
complete after that many bytes ends the import, since a parser cannot skip an item it is inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import ijson
import orjson

from truthset.errors import InvalidInput, TooLarge

#: The most bytes handed to the JSON parser at once, so that an over-long item is noticed promptly.
_PARSER_SLICE = 64 * 1024


@dataclass(frozen=True, slots=True)
class TooLong:
    """Stands for a line longer than ``limit`` bytes, which was skipped rather than kept."""

    limit: int


@dataclass(frozen=True, slots=True)
class Bad:
    """Stands for an item a reader could not make a task of (a CSV row, a Parquet row, an archive
    entry), with what is wrong: the import reports it by number, or skips it with ``on_error=skip``."""

    message: str


@dataclass(frozen=True, slots=True)
class Item:
    """A parsed item of a JSON array, with about how many bytes of the body it took (memory budgets)."""

    value: Any
    size: int


class LineSplitter:
    """JSONL lines from byte chunks, in time linear in the body and memory bounded by ``max_line``.

    Each byte is searched for a newline once: the search runs over the new chunk only, never over
    what is buffered (the old splitter appended each chunk to what was pending and split it all
    again, which made one long line quadratic). A line that grows past ``max_line`` is dropped as
    it arrives and reported as :class:`TooLong` once its newline comes. Blank lines are numbered
    but not yielded.
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.number = 0  # the number of the last complete line
        self._pending = bytearray()  # the start of the current line, from earlier chunks
        self._too_long = False

    def feed(self, chunk: bytes) -> list[tuple[int, bytes | TooLong]]:
        lines: list[tuple[int, bytes | TooLong]] = []
        *complete, last = chunk.split(b"\n")  # one pass in C over the new bytes only
        if complete:
            first, *others = complete
            self._keep(first)
            self._emit(lines, self._take())
            for line in others:  # whole lines within this chunk: no buffer, no copy
                self._emit(lines, line if len(line) <= self.max_line else TooLong(self.max_line))
        self._keep(last)
        return lines

    def end(self) -> list[tuple[int, bytes | TooLong]]:
        """The last line, when the body does not end with a newline."""
        lines: list[tuple[int, bytes | TooLong]] = []
        if self._pending or self._too_long:
            self._emit(lines, self._take())
        return lines

    def _keep(self, piece: bytes) -> None:
        """Add to the line in progress, or drop it once it is longer than ``max_line``."""
        if self._too_long:
            return
        if len(self._pending) + len(piece) > self.max_line:
            self._too_long = True
            self._pending = bytearray()  # let the memory go: this line will only be reported
            return
        self._pending += piece

    def _take(self) -> bytes | TooLong:
        line: bytes | TooLong = TooLong(self.max_line) if self._too_long else bytes(self._pending)
        self._pending = bytearray()
        self._too_long = False
        return line

    def _emit(self, lines: list[tuple[int, bytes | TooLong]], line: bytes | TooLong) -> None:
        self.number += 1
        if type(line) is TooLong or (line and not line.isspace()):
            lines.append((self.number, line))


def jsonl_items(chunks: Iterable[bytes], max_line: int) -> Iterator[tuple[int, bytes | TooLong]]:
    """Numbered non-blank lines of a JSONL body (numbers count blank lines too, as editors do)."""
    splitter = LineSplitter(max_line)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.end()


def json_array_items(chunks: Iterable[bytes], max_item: int) -> Iterator[tuple[int, Item]]:
    """Numbered items of a JSON array body, parsed incrementally (memory stays flat).

    Integers stay exact (an out-of-range one is then refused by the task checks, naming its item)
    and fractions come as ``Decimal``, stored as floats. A body that is not a JSON array answers
    422; an item longer than about ``max_item`` bytes answers 413 naming it.
    """
    found: list[Any] = ijson.sendable_list()
    parser = ijson.items_coro(found, "item")
    number = 0
    since_item = 0  # bytes fed since the last item completed
    started = False
    try:
        for chunk in chunks:
            if not started:
                chunk = chunk.lstrip()
                if not chunk:
                    continue
                if not chunk.startswith(b"["):
                    raise InvalidInput("a JSON body must be an array of tasks", details={"field": "body"})
                started = True
            for offset in range(0, len(chunk), _PARSER_SLICE):
                piece = chunk[offset : offset + _PARSER_SLICE]
                parser.send(piece)
                since_item += len(piece)
                if found:
                    size = max(1, since_item // len(found))
                    for item in found:
                        number += 1
                        yield number, Item(item, size)
                    del found[:]
                    since_item = 0
                elif since_item > max_item + _PARSER_SLICE:
                    raise TooLarge(
                        f"item {number + 1} of the JSON array is longer than {max_item} bytes; nothing was stored",
                        details={"field": "body", "item": number + 1, "limit": max_item},
                    )
        if not started:
            raise InvalidInput("a JSON body must be an array of tasks", details={"field": "body"})
        parser.close()
    except ijson.JSONError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "incomplete"
        raise InvalidInput(f"the body is not valid JSON: {reason}", details={"field": "body"}) from None
    for item in found:
        number += 1
        yield number, Item(item, since_item)


# --- rows of columns (CSV, Parquet, a dataset's flat JSON records) as task objects ------------------

#: Columns that are task keys, not data fields
RESERVED_COLUMNS = ("unique_id", "priority", "overlap")
_METADATA_PREFIX = "metadata."


def _cell(value: str) -> Any:
    """A CSV cell: a JSON list or object when it is written as one (``[...]``, ``{...}``), else text."""
    if value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # text that merely starts with a bracket
    return value


def task_from_columns(row: dict[str, Any], fields: frozenset[str], *, text: bool) -> dict[str, Any]:
    """A task from one row of named columns: a CSV row (``text``: every value a cell to read), a
    Parquet row, or a flat JSON record (a dataset's line without ``data``).

    ``unique_id``, ``priority`` and ``overlap`` columns are lifted out; ``metadata.<key>`` columns
    and the columns that are not fields of the project's spec go to metadata (a dataset's extra
    columns, such as ids or labels, travel with the task); the spec's fields are the data.
    """
    task: dict[str, Any] = {"data": {}, "metadata": {}}
    for column, value in row.items():
        if column in RESERVED_COLUMNS:
            if value not in (None, ""):
                task[column] = _whole_number(value) if text and column != "unique_id" else value
        elif column.startswith(_METADATA_PREFIX):
            task["metadata"][column[len(_METADATA_PREFIX) :]] = _cell(value) if text else value
        elif column in fields:
            task["data"][column] = _cell(value) if text else value
        else:
            task["metadata"][column] = _cell(value) if text else value
    return task


def _whole_number(value: str) -> Any:
    # not a whole number: kept as written, so the check names the field (priority: ...) and the line
    return int(value) if value.strip().lstrip("+-").isdigit() else value

"""JSONL: one JSON object per task, exactly the export row (docs/formats.md), with full provenance."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, Any, BinaryIO

import orjson

from truthset.services.formats import LineBlock

LINES_PER_WRITE = 2000  # lines rendered per write: few, large writes


def write_lines(rows: Iterable[dict[str, Any] | LineBlock], out: IO[bytes]) -> int:
    """Write ``rows`` to ``out`` as JSON lines, a block of lines per write; returns the count.

    A row is a dict, or a block of lines the database already rendered as JSON text (see
    ``json_lines``), written as it is.
    """
    count = 0
    block: list[bytes] = []
    for row in rows:
        if isinstance(row, LineBlock):
            if row.count:
                out.write(row.text)
                out.write(b"\n")
            count += row.count
            continue
        block.append(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        if len(block) == LINES_PER_WRITE:
            out.write(b"".join(block))
            count += len(block)
            block.clear()
    out.write(b"".join(block))
    return count + len(block)


class JsonlWriter:
    media_type = "application/x-ndjson"
    extension = "jsonl"
    #: rows may be blocks of the database's own JSON text of each row (export.export_line_blocks):
    #: written as they are
    json_lines = True
    #: each task is written whole (its result and every response): an export cannot pick questions
    writes_whole_tasks = True

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any] | LineBlock], out: BinaryIO) -> int:  # type: ignore[override]
        return write_lines(rows, out)


WRITER = JsonlWriter()

"""JSONL: one JSON object per task, exactly the export row (docs/formats.md), with full provenance."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, Any, BinaryIO

import orjson

LINES_PER_WRITE = 2000  # lines rendered per write: few, large writes


def write_lines(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    """Write ``rows`` to ``out`` as JSON lines, a block of lines per write; returns the count."""
    count = 0
    block: list[bytes] = []
    for row in rows:
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
    #: rows may hold the stored JSON as orjson.Fragment: it is written as it is, never parsed
    raw_json = True

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO) -> int:
        return write_lines(rows, out)


WRITER = JsonlWriter()

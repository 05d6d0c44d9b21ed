"""CSV: one row per task, for spreadsheets and quick looks (JSONL or Parquet keep more structure).

Columns: ``task_id, unique_id, batch_id, status, completed_at, updated_at, review_status,
confidence``; then ``data.<field>`` for each field of the project's spec; for each question
``answer.<question>``, ``confidence.<question>`` and ``method.<question>``; then ``metadata``,
``response_count`` and ``responses``. A text or number is written as is, nothing (null) as an empty
cell, and a list or object (a ``labels`` answer, a conversation, ``metadata``, ``responses``) as JSON
in its cell. Written with Python's csv module (RFC 4180 quoting), UTF-8, ``\\r\\n`` line ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from truthset.questions import asked_questions

ROWS_PER_WRITE = 2000
_TASK_COLUMNS = (
    "task_id", "unique_id", "batch_id", "status", "completed_at", "updated_at", "review_status", "confidence",
)  # fmt: skip


def cell(value: Any) -> Any:
    """A value as a CSV cell: scalars as they are, None empty, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def header(project: dict[str, Any]) -> list[str]:
    spec = project["spec"]
    fields = [f"data.{field['name']}" for field in spec["fields"]]
    questions = [name for name, _ in asked_questions(spec)]  # <name>-<i> for each candidate (for_each)
    per_question = [f"{part}.{name}" for name in questions for part in ("answer", "confidence", "method")]
    return [*_TASK_COLUMNS, *fields, *per_question, "metadata", "response_count", "responses"]


def _line(row: dict[str, Any], fields: list[str], questions: list[str]) -> list[Any]:
    result = row["result"] or {}
    answer = result.get("answer") or {}
    confidence = result.get("confidence") or {}
    methods = result.get("methods") or {}
    data = row["data"] or {}
    line = [cell(row[column]) for column in _TASK_COLUMNS]
    line.extend(cell(data.get(name)) for name in fields)
    for name in questions:
        line.extend((cell(answer.get(name)), cell(confidence.get(name)), cell(methods.get(name))))
    responses = row.get("responses") or []
    line.extend((cell(row["metadata"]), len(responses), cell(responses)))
    return line


class CsvWriter:
    media_type = "text/csv; charset=utf-8"
    extension = "csv"

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO) -> int:
        fields = [field["name"] for field in project["spec"]["fields"]]
        questions = [name for name, _ in asked_questions(project["spec"])]
        buffer = io.StringIO()  # a block of lines is rendered here, then written to ``out`` at once
        writer = csv.writer(buffer)
        writer.writerow(header(project))
        count = 0
        block: list[list[Any]] = []
        for row in rows:
            block.append(_line(row, fields, questions))
            if len(block) == ROWS_PER_WRITE:
                count += self._flush(writer, buffer, block, out)
        return count + self._flush(writer, buffer, block, out)

    @staticmethod
    def _flush(writer: Any, buffer: io.StringIO, block: list[list[Any]], out: BinaryIO) -> int:
        writer.writerows(block)
        out.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        written = len(block)
        block.clear()
        return written


WRITER = CsvWriter()

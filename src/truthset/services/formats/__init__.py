"""Export formats: a registry of writers, one module per format, imported when first asked for.

A writer turns the export's rows (the dicts of :func:`truthset.services.export.export_rows`, whose
shape docs/formats.md documents) into one file. It is any object with

- ``media_type``: the file's content type (``application/x-ndjson``, ``text/csv``...);
- ``extension``: the file name's ending, without the dot (``jsonl``, ``csv``, ``parquet``, ``zip``);
- ``write(project, rows, out) -> int``: write every row to the binary file ``out`` as they come
  (never all in memory) and return how many tasks it wrote;
- optionally ``raw_json = True``: the writer only re-serialises JSON values, so the rows may hold
  ``data``, ``metadata`` and responses' ``answer`` as the stored JSON text (:class:`orjson.Fragment`);
- optionally ``json_lines = True``: the rows may be :class:`LineBlock` s of each row's JSON text,
  rendered by the database (:func:`truthset.services.export.export_line_blocks`; the JSONL writer);
- optionally ``line_sql(project, postgres) -> LineSql``: SQL rendering each task as the text the
  writer wants (the Parquet writer's JSON lines in its schema's shape), and what the export's
  reader threads make of each block; the rows are then :class:`LineBlock` s of those texts;
- optionally ``arrow_on_postgres = True`` and ``layout(project)``: on PostgreSQL the rows are
  :class:`LineBlock` s whose ``parsed`` is an Arrow table of ``layout(project).schema``, read by
  :mod:`truthset.services.export_arrow` (the Parquet writer);
- optionally ``writes_whole_tasks = True``: the writer writes each task whole whatever the spec
  says (JSONL), so an export cannot narrow it to some questions (``questions``: see
  :func:`truthset.services.export.only_questions`; the others write the questions of the spec
  they are given);
- optionally ``check(project) -> None``: raise :class:`~truthset.errors.InvalidInput` when the
  format cannot be written for this project (no question it can write), saying why; the export is
  then refused (422) before any job is queued.

Each format's module exposes its writer as ``WRITER``. :data:`MODULES` maps a format's name to its
module: formats join by adding a line there (modules are imported lazily, so a format's library,
pyarrow say, is loaded only when that format is used).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, NamedTuple, Protocol

from truthset.errors import InvalidInput

__all__ = ["MODULES", "LineBlock", "LineSql", "Writer", "canonical", "check_format", "get", "names"]

#: format name -> the module holding its ``WRITER``
MODULES: dict[str, str] = {
    "jsonl": "truthset.services.formats.jsonl",
    "csv": "truthset.services.formats.csv",
    "parquet": "truthset.services.formats.parquet",
    "coco": "truthset.services.formats.coco",
    "yolo": "truthset.services.formats.yolo",
    "voc": "truthset.services.formats.voc",
    "conll": "truthset.services.formats.conll",
    "spacy": "truthset.services.formats.spacy",
    "spacy_json": "truthset.services.formats.spacy_json",
    "preferences": "truthset.services.formats.preferences",
    "label_studio": "truthset.services.formats.label_studio",
}


class LineBlock(NamedTuple):
    """``count`` tasks' lines as the database rendered them, in id order: UTF-8, each line but the
    last followed by a newline (a line never holds one: its JSON escapes them). One block of an
    export, handed to the writer whole: per line, Python would cost more than the database.

    ``parsed``: what the writer's ``LineSql.read`` made of the block in the reader thread (the text
    is then dropped)."""

    count: int
    text: bytes
    parsed: Any = None


class LineSql(NamedTuple):
    """How the database renders an export's blocks for a writer (its ``line_sql``).

    ``line``: SQL (a column over ``tasks``) giving each task's line. ``read``: run on each block by
    the thread that rendered it, its result handed on in :attr:`LineBlock.parsed`: so the blocks
    are parsed by the reader threads at once, beside the writing (pyarrow's JSON reader releases
    the GIL), not one after the other by the writing thread."""

    line: str
    read: Callable[[LineBlock], Any] | None = None


class Writer(Protocol):
    media_type: str
    extension: str

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO) -> int:
        """Write ``rows`` to ``out``; return how many tasks were written."""
        ...


def names() -> list[str]:
    """Every format an export can be written in, in a stable order."""
    return list(MODULES)


def canonical(name: str) -> str:
    """A format's name as :data:`MODULES` spells it: imports spell ``label-studio`` with a hyphen,
    and a user who exports what they imported should not have to know the difference."""
    return name.strip().lower().replace("-", "_")


def get(name: str) -> Writer:
    """The writer of format ``name``, or a 422 naming the formats there are (never silently JSONL)."""
    module = MODULES.get(canonical(name))
    if module is None:
        raise InvalidInput(
            f"format: {name!r} is not an export format; the formats are: {', '.join(MODULES)}",
            details={"field": "format", "formats": names()},
        )
    return importlib.import_module(module).WRITER  # type: ignore[no-any-return]


def check_format(name: str, project: dict[str, Any] | None = None) -> Writer:
    """The writer of ``name``, after its ``check`` of ``project`` (when it has one and a project is given)."""
    writer = get(name)
    check = getattr(writer, "check", None)
    if project is not None and check is not None:
        check(project)
    return writer

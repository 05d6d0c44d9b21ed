"""Holds an export mid-file in a ``truthset worker`` process (imported before the CLI starts).

With ``EXPORT_GATE`` naming a folder, the JSONL writer of this process writes its first rows (the
database's blocks of lines, here one task each), then
creates ``<folder>/writing-<pid>`` and waits until ``<folder>/go`` exists: the test kills the
worker while it waits (a crash mid-export), or lets it finish.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from truthset.services import export
from truthset.services.formats import jsonl

FOLDER = os.environ.get("EXPORT_GATE")
_write = jsonl.WRITER.write


def _held(rows: Iterator[dict[str, Any]], folder: Path) -> Iterator[dict[str, Any]]:
    for i, row in enumerate(rows):
        if i == 3:
            (folder / f"writing-{os.getpid()}").touch()
            idle = threading.Event()
            while not (folder / "go").exists():
                idle.wait(0.02)  # polling for a file the test creates, not timing anything
        yield row


def gated_write(project: dict[str, Any], rows: Iterator[dict[str, Any]], out: Any) -> int:
    return _write(project, _held(rows, Path(FOLDER)) if FOLDER else rows, out)


jsonl.WRITER.write = gated_write  # type: ignore[method-assign]
if FOLDER:
    export.EXPORT_BLOCK = 1  # a block a task, so the first rows are not the whole export

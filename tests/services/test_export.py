"""Export reads one snapshot: what changes while it runs does not show in it."""

from __future__ import annotations

import io
import threading
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING

import orjson
import pytest

from truthset.services import export, pacing, tasks
from truthset.storage import Database

if TYPE_CHECKING:
    from conftest import Org


def test_export_shows_the_state_at_its_start_while_tasks_change(db: Database, org: Org) -> None:
    project = org.make_project()
    made = org.make_tasks(project["id"], 2500)  # more than one block of rows
    rows = export.export_rows(db, org.owner.principal, project["id"], status=None)
    first = next(rows)
    # meanwhile, through the services: a late task is canceled and a new one is created
    tasks.cancel_task(db, org.owner.principal, made[-1]["id"])
    org.make_task(project["id"], "created during the export")
    rest = list(rows)
    exported = [first, *rest]
    assert [row["task_id"] for row in exported] == [task["id"] for task in made]
    assert {row["status"] for row in exported} == {"pending"}
    # a new export sees the changes
    after = list(export.export_rows(db, org.owner.principal, project["id"], status=None))
    assert len(after) == 2501 and after[2499]["status"] == "canceled"


def test_write_jsonl_writes_one_line_per_row_in_blocks() -> None:
    rows = [{"task_id": str(i), "answer": None} for i in range(export.EXPORT_BLOCK * 2 + 3)]
    out = io.BytesIO()
    assert export.write_jsonl(iter(rows), out) == len(rows)
    assert [orjson.loads(line) for line in out.getvalue().splitlines()] == rows


def test_lines_rendered_by_several_readers_are_one_snapshot_in_order(
    db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines come from several connections sharing the export's snapshot
    (services/export_readers.py), block by block: still one state, in id order, all of it."""
    monkeypatch.setattr(export, "EXPORT_BLOCK", 4)  # 23 tasks: 6 blocks over 2 readers
    project = org.make_project()
    made = org.make_tasks(project["id"], 23)
    lines = export.export_lines(db, org.owner.principal, project["id"], filters=export.ExportFilter(status=None))
    first = next(lines)
    readers = [thread for thread in threading.enumerate() if thread.name.startswith("export-reader")]
    assert len(readers) == 2
    tasks.cancel_task(db, org.owner.principal, made[-1]["id"])
    org.make_task(project["id"], "created during the export")
    exported = [orjson.loads(line) for line in [first, *lines]]
    assert [row["task_id"] for row in exported] == [task["id"] for task in made]
    assert {row["status"] for row in exported} == {"pending"}
    rows = list(export.export_rows(db, org.owner.principal, project["id"], status=None))
    assert len(rows) == 24 and rows[22]["status"] == "canceled"


def test_an_export_stopped_early_leaves_no_reader_running(
    db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "EXPORT_BLOCK", 2)
    project = org.make_project()
    org.make_tasks(project["id"], 30)
    lines = export.export_lines(db, org.owner.principal, project["id"], filters=export.ExportFilter(status=None))
    next(lines)
    lines.close()  # a cancelled job stops reading
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("export-reader")]


def test_the_readers_pause_after_each_block_only_while_the_annotation_loop_is_busy(
    db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a server that also serves annotators the readers are background work (services/pacing.py)."""
    monkeypatch.setattr(export, "EXPORT_BLOCK", 5)  # 20 tasks: 4 blocks
    project = org.make_project()
    org.make_tasks(project["id"], 20)
    paused: list[float] = []
    clocks = SimpleNamespace(sleep=paused.append, monotonic=time.monotonic, thread_time=time.thread_time)
    monkeypatch.setattr(pacing, "time", clocks)  # the pacer's sleeps only, not every thread's
    filters = export.ExportFilter(status=None)
    assert len(list(export.export_lines(db, org.owner.principal, project["id"], filters=filters))) == 20
    assert paused == []  # nobody annotating: full speed
    monkeypatch.setattr(Database, "loop_busy_since", lambda self, moment: True)
    assert len(list(export.export_lines(db, org.owner.principal, project["id"], filters=filters))) == 20
    assert len(paused) == 4 and all(pause >= 0 for pause in paused)

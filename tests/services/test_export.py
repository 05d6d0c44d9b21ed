"""Export reads one snapshot: what changes while it runs does not show in it."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import orjson

from truthset.services import export, tasks
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

"""Prepared statements return exactly what ``conn.execute`` returns, and fail the same way."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id
from truthset.storage.prepared import Prepared

if TYPE_CHECKING:
    from conftest import Org


def _task_row(org: Org, project_id: str, **values: object) -> dict:
    now = datetime(2026, 11, 22, 1, 2, 3, 456789)
    return {
        "id": new_id(),
        "organization_id": org.id,
        "project_id": project_id,
        "batch_id": None,
        "unique_id": None,
        "status": "pending",
        "priority": 0,
        "overlap": 3,
        "response_count": 0,
        "lease_count": 0,
        "data": {"text": "héllo", "nested": [1, 2.5, None, True]},
        "metadata": {"k": "v"},
        "result": None,
        "confidence": 0.25,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
        **values,
    }


def test_rows_equal_those_of_conn_execute(org: Org) -> None:
    """JSON, datetimes, floats, NULLs and integers come back converted exactly as SQLAlchemy does."""
    project = org.make_project()
    row = _task_row(org, project["id"])
    with org.db.write() as conn:
        conn.execute(insert(t.tasks), row)
    query = select(t.tasks).where(t.tasks.c.id == bindparam("task_id"), t.tasks.c.status == "pending")
    with org.db.read() as conn:
        expected = [dict(r) for r in conn.execute(query, {"task_id": row["id"]}).mappings()]
        prepared = Prepared(query)
        assert prepared.rows(conn, {"task_id": row["id"]}) == expected
        assert prepared.first(conn, {"task_id": row["id"]}) == expected[0]
        assert prepared.first(conn, {"task_id": "missing"}) is None
    assert expected[0]["data"] == row["data"] and expected[0]["confidence"] == 0.25


def test_insert_and_update_convert_parameters(org: Org) -> None:
    """The repository helpers built on Prepared store JSON and datetimes as conn.execute reads them."""
    project = org.make_project()
    row = _task_row(org, project["id"], confidence=None)
    when = datetime(2027, 1, 2, 3, 4, 5, 6)
    with org.db.write() as conn:
        repo.add(conn, t.tasks, row)
        repo.change(conn, t.tasks, org.id, row["id"], result={"label": "a"}, completed_at=when, status="completed")
    with org.db.read() as conn:
        stored = conn.execute(select(t.tasks).where(t.tasks.c.id == row["id"])).mappings().one()
    assert stored["data"] == row["data"]
    assert stored["result"] == {"label": "a"} and stored["status"] == "completed"
    assert stored["completed_at"] == when
    assert stored["confidence"] is None


def test_add_fills_column_defaults(org: Org) -> None:
    project = org.make_project()
    with org.db.read() as conn:
        assert repo.get(conn, t.projects, org.id, project["id"])["description"] == ""


def test_run_returns_the_row_count(org: Org) -> None:
    project = org.make_project()
    rows = [_task_row(org, project["id"]) for _ in range(3)]
    with org.db.write() as conn:
        conn.execute(insert(t.tasks), rows)
        bump = Prepared(
            update(t.tasks).where(t.tasks.c.project_id == bindparam("p")).values(priority=t.tasks.c.priority + 1)
        )
        assert bump.run(conn, {"p": project["id"]}) == 3
        assert bump.run(conn, {"p": "none"}) == 0


def test_driver_errors_become_sqlalchemy_errors(org: Org) -> None:
    """Callers catch sqlalchemy.exc.IntegrityError whichever way the statement ran."""
    project = org.make_project()
    row = _task_row(org, project["id"])
    with org.db.write() as conn:
        repo.add(conn, t.tasks, row)
    with pytest.raises(IntegrityError), org.db.write() as conn:
        repo.add(conn, t.tasks, row)
    with org.db.read() as conn:  # the failed transaction changed nothing
        assert conn.execute(select(t.tasks.c.id).where(t.tasks.c.project_id == project["id"])).all() == [(row["id"],)]


def test_expanding_parameters_are_refused(org: Org) -> None:
    prepared = Prepared(select(t.tasks.c.id).where(t.tasks.c.status.in_(["pending", "staged"])))
    with pytest.raises(ValueError, match="cannot expand"), org.db.read() as conn:
        prepared.rows(conn, {})

"""Repositories: the organization-scoped helper, keyset pages, unique_id lookups, lease expiry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from truthset.schemas import ResponseCreate
from truthset.services import queue, tasks
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

if TYPE_CHECKING:
    from conftest import Org


def test_scoped_and_get_never_cross_organizations(org: Org, other_org: Org) -> None:
    project = org.make_project()
    with org.db.read() as conn:
        assert repo.get(conn, t.projects, org.id, project["id"])["id"] == project["id"]
        assert repo.get(conn, t.projects, other_org.id, project["id"]) is None
        assert conn.execute(repo.scoped(t.projects, other_org.id)).all() == []
        assert [r.id for r in conn.execute(repo.scoped(t.projects, org.id, t.projects.c.id))] == [project["id"]]


def test_change_is_scoped_too(org: Org, other_org: Org) -> None:
    project = org.make_project(name="before")
    with org.db.write() as conn:
        repo.change(conn, t.projects, other_org.id, project["id"], name="hijacked")
    with org.db.read() as conn:
        assert repo.get(conn, t.projects, org.id, project["id"])["name"] == "before"


def test_page_ascending_and_descending(org: Org) -> None:
    made = [org.make_project()["id"] for _ in range(7)]
    query = repo.scoped(t.projects, org.id)
    for descending, expected in ((False, made), (True, made[::-1])):
        seen: list[str] = []
        cursor = None
        while True:
            with org.db.read() as conn:
                rows, cursor = repo.page(conn, query, t.projects, cursor=cursor, limit=3, descending=descending)
            seen.extend(r["id"] for r in rows)
            if cursor is None:
                break
        assert seen == expected
    with org.db.read() as conn:
        rows, cursor = repo.page(conn, query, t.projects, cursor=None, limit=7)
    assert len(rows) == 7 and cursor is None


def test_existing_unique_ids_in_chunks(org: Org) -> None:
    project = org.make_project()
    wanted = [f"u{i}" for i in range(2100)]
    items = [(i, {"data": {"text": "x"}, "unique_id": u}) for i, u in enumerate(wanted[::2], 1)]
    assert tasks.import_tasks(org.db, org.owner.principal, project["id"], items).created == 1050
    with org.db.read() as conn:
        found = repo.existing_unique_ids(conn, org.id, wanted)
        assert repo.existing_unique_ids(conn, "f" * 24, wanted) == {}
    assert set(found) == set(wanted[::2])
    assert len(set(found.values())) == 1050


def test_unique_constraints(org: Org) -> None:
    project = org.make_project(overlap=2)
    task = org.make_task(project["id"], unique_id="once")
    worker = org.add_member()
    queue.submit(org.db, worker.principal, task["id"], ResponseCreate(answer={"sentiment": "neutral"}))
    with org.db.read() as conn:
        response = dict(conn.execute(select(t.responses)).mappings().one())
        task_row = dict(conn.execute(select(t.tasks)).mappings().one())
    with pytest.raises(IntegrityError), org.db.write() as conn:
        repo.add(conn, t.responses, {**response, "id": "r" * 24})  # same task and worker
    with pytest.raises(IntegrityError), org.db.write() as conn:
        repo.add(conn, t.tasks, {**task_row, "id": "t" * 24})  # same organization and unique_id


def _lease(db: Database, org: Org, project_id: str, task_id: str, worker_id: str, expires: datetime) -> str:
    assignment_id = new_id()
    with db.write() as conn:
        repo.add(
            conn,
            t.assignments,
            {
                "id": assignment_id,
                "organization_id": org.id,
                "project_id": project_id,
                "task_id": task_id,
                "worker_id": worker_id,
                "status": "active",
                "created_at": utcnow(),
                "expires_at": expires,
                "ended_at": None,
            },
        )
        conn.execute(t.tasks.update().where(t.tasks.c.id == task_id).values(lease_count=t.tasks.c.lease_count + 1))
    return assignment_id


def test_expire_leases_gives_each_slot_back_once(org: Org) -> None:
    project = org.make_project(overlap=3)
    first, second = org.make_tasks(project["id"], 2)
    workers = [org.add_member().worker_id for _ in range(3)]
    now = utcnow()
    past, future = now - timedelta(seconds=5), now + timedelta(minutes=5)
    _lease(org.db, org, project["id"], first["id"], workers[0], past)
    _lease(org.db, org, project["id"], first["id"], workers[1], past)
    live = _lease(org.db, org, project["id"], first["id"], workers[2], future)
    _lease(org.db, org, project["id"], second["id"], workers[0], past)
    with org.db.write() as conn:
        assert repo.expire_leases(conn, project["id"], now) == 3
    with org.db.write() as conn:
        assert repo.expire_leases(conn, project["id"], now) == 0  # already expired
    with org.db.read() as conn:
        counts = dict(conn.execute(select(t.tasks.c.id, t.tasks.c.lease_count)).all())
        statuses = dict(conn.execute(select(t.assignments.c.id, t.assignments.c.status)).all())
    assert counts == {first["id"]: 1, second["id"]: 0}
    assert statuses[live] == "active"
    assert sorted(statuses.values()) == ["active", "expired", "expired", "expired"]


def test_lease_next_task_takes_the_best_task_it_may_and_counts_the_lease(org: Org) -> None:
    project = org.make_project(overlap=2)
    low, high = org.make_task(project["id"], priority=1), org.make_task(project["id"], priority=9)
    worker, other, third = (org.add_member().worker_id for _ in range(3))
    _lease(org.db, org, project["id"], high["id"], worker, utcnow() + timedelta(minutes=1))
    with org.db.write() as conn:
        leased = repo.lease_next_task(conn, project["id"], worker)  # high is the worker's already
        assert (leased["id"], leased["lease_count"]) == (low["id"], 1)
    with org.db.write() as conn:
        leased = repo.lease_next_task(conn, project["id"], other)
        assert (leased["id"], leased["lease_count"]) == (high["id"], 2)  # priority first
    with org.db.write() as conn:
        assert repo.lease_next_task(conn, project["id"], other)["id"] == low["id"]
        assert repo.lease_next_task(conn, project["id"], third) is None  # both full


def test_sqlite_runs_the_index_a_query_prefers(db: Database) -> None:
    """prefer_index renders INDEXED BY on SQLite (SQLAlchemy alone drops table hints there), and the
    queries that name one use it; PostgreSQL plans from its statistics and gets no hint."""
    by_batch = repo.scoped(t.tasks, "org").where(t.tasks.c.batch_id == "b")
    query = repo.prefer_index(by_batch, t.tasks, "ix_tasks_batch_id")
    sql = str(query.compile(dialect=db.engine.dialect))
    assert ("INDEXED BY ix_tasks_batch_id" in sql) is db.is_sqlite
    if not db.is_sqlite:
        return
    with db.read() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ("org", "b")).all()
        assert "ix_tasks_batch_id" in str(plan)
        responses = repo._RESPONSES_OF_TASK._compile(conn.dialect).sql
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + responses, ("org", "task")).all()
        assert "ix_responses_task" in str(plan)  # not a walk over the organization's responses


def test_bulk_insert_counts_what_it_stored_and_keeps_search_in_step(org: Org) -> None:
    """insert_prepared's bulk paths (multi-row statements on SQLite, COPY on PostgreSQL): rows that
    clash are skipped and not counted, two bulk inserts in one transaction both land, and the
    full-text index knows every inserted task (SQLite's trigger fires for each row)."""
    project = org.make_project()
    first = [(i, {"data": {"text": f"alpha{i} common"}, "unique_id": f"u{i}"}) for i in range(2500)]
    report = tasks.import_tasks(org.db, org.owner.principal, project["id"], first)
    assert (report.created, report.existing) == (2500, 0)
    again = [(i, {"data": {"text": f"beta{i} common"}, "unique_id": f"u{i}"}) for i in range(2400, 2600)]
    report = tasks.import_tasks(org.db, org.owner.principal, project["id"], again)
    assert (report.created, report.existing) == (100, 100)
    columns = ("id", "organization_id", "project_id", "unique_id", "data", "metadata", "priority", "status",
               "overlap", "response_count", "lease_count", "created_at", "updated_at")  # fmt: skip
    with org.db.write() as conn:
        now = repo.driver_datetime(conn, utcnow())
        rows = [
            (new_id(), org.id, project["id"], f"x{i}", '{"text": "gamma"}', "{}", 0, "pending", 1, 0, 0, now, now)
            for i in range(150)
        ]
        assert repo.insert_prepared(conn, t.tasks, columns, rows[:100], skip_any_conflict=True) == 100
        assert repo.insert_prepared(conn, t.tasks, columns, rows[50:], skip_any_conflict=True) == 50
    with org.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.tasks)).scalar_one() == 2750
    for words, expected in (("gamma", 150), ("beta2500", 1), ("alpha2499", 1)):
        filters = tasks.TaskFilter(project_id=project["id"], search=words)
        found, _ = tasks.list_tasks(org.db, org.owner.principal, filters, cursor=None, limit=200)
        assert len(found) == expected, words

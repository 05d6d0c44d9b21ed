"""Database.submit: service calls batched into one SQLite transaction, each failing on its own."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow


def _add_org(db: Database, name: str) -> str:
    org_id = new_id()
    with db.write() as conn:
        repo.add(conn, t.organizations, {"id": org_id, "name": name, "created_at": utcnow()})
    return org_id


def _names(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(t.organizations.c.name)).scalars())


def test_submit_runs_the_call_and_returns_its_result(db: Database) -> None:
    org_id = db.submit(_add_org, db, "one").result(timeout=10)
    with db.read() as conn:
        assert conn.execute(select(t.organizations.c.name).where(t.organizations.c.id == org_id)).scalar() == "one"


def test_a_failing_call_undoes_only_its_own_block(db: Database) -> None:
    """Calls share a transaction on SQLite, yet a failure rolls back that call's write block alone."""
    gate = threading.Event()

    def blocker() -> None:
        gate.wait(10)  # holds the writer so that the next calls queue up into one batch

    def failing() -> None:
        with db.write() as conn:
            repo.add(conn, t.organizations, {"id": new_id(), "name": "doomed", "created_at": utcnow()})
            raise ValueError("no")

    first = db.submit(blocker)
    futures = [db.submit(_add_org, db, f"org{i}") for i in range(5)]
    doomed = db.submit(failing)
    futures += [db.submit(_add_org, db, f"org{i}") for i in range(5, 10)]
    gate.set()
    first.result(timeout=10)
    assert all(len(f.result(timeout=10)) == 24 for f in futures)
    with pytest.raises(ValueError, match="no"):
        doomed.result(timeout=10)
    assert _names(db) == {f"org{i}" for i in range(10)}
    if db.is_sqlite:
        assert db._batch_writer is not None and db._batch_writer.batches <= 3  # batched, not 12 transactions


def test_a_later_failing_block_keeps_the_earlier_one(db: Database) -> None:
    """Two write blocks in one call commit like two transactions: the first stays if the second fails."""

    def two_blocks() -> None:
        _add_org(db, "kept")
        with db.write() as conn:
            repo.add(conn, t.organizations, {"id": new_id(), "name": "dropped", "created_at": utcnow()})
            raise RuntimeError("second block fails")

    with pytest.raises(RuntimeError):
        db.submit(two_blocks).result(timeout=10)
    assert _names(db) == {"kept"}


def test_a_database_error_fails_only_its_call(db: Database) -> None:
    """An IntegrityError inside one call's block leaves the batch's transaction usable for the rest."""
    org_id = _add_org(db, "first")

    def duplicate() -> None:
        with db.write() as conn:
            repo.add(conn, t.organizations, {"id": org_id, "name": "again", "created_at": utcnow()})

    failed = db.submit(duplicate)
    after = db.submit(_add_org, db, "after")
    with pytest.raises(IntegrityError):
        failed.result(timeout=10)
    after.result(timeout=10)
    assert _names(db) == {"first", "after"}


def test_durable_calls_are_answered_after_the_sync(tmp_path: Path) -> None:
    """With the default FULL durability a durable call's answer waits for the group commit's fsync;
    a call whose writes were all durable=False (a lease) is answered without one."""
    db = Database(f"sqlite:///{tmp_path / 'durable.db'}")
    db.create_all()
    group = db._group_commit
    assert group is not None
    try:
        before = group.syncs

        def lease_like() -> str:
            org_id = new_id()
            with db.write(durable=False) as conn:
                repo.add(conn, t.organizations, {"id": org_id, "name": "lease", "created_at": utcnow()})
            return org_id

        db.submit(lease_like).result(timeout=10)
        assert group.syncs == before
        db.submit(_add_org, db, "durable").result(timeout=10)
        assert group.syncs == before + 1
    finally:
        db.dispose()


def test_dispose_stops_the_writer(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'stop.db'}")
    db.create_all()
    db.submit(_add_org, db, "x").result(timeout=10)
    db.dispose()
    assert not any(thread.name.startswith("truthset-writer") for thread in threading.enumerate())


def test_a_call_that_submits_another_runs_it_inline(db: Database) -> None:
    def outer() -> str:
        return db.submit(_add_org, db, "inner").result(timeout=5)

    assert len(db.submit(outer).result(timeout=10)) == 24
    assert _names(db) == {"inner"}

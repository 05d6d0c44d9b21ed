"""Database failures that are no bug become domain errors: a full disk StorageFull (HTTP 507), a lost
race or a database server going away Busy (HTTP 503); and a full disk never acknowledges a write
that SQLite rolled back."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError

from truthset.errors import Busy, StorageFull
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.engine import translate
from truthset.storage.ids import new_id, utcnow


def _add_org(db: Database, name: str) -> str:
    with db.write() as conn:
        repo.add(conn, t.organizations, {"id": new_id(), "name": name, "created_at": utcnow()})
    return name


def _names(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(t.organizations.c.name)).scalars())


def _cap_database_size(db: Database) -> dict[str, int]:
    """From now on the database file may not grow: SQLite answers SQLITE_FULL, as on a full disk.

    Returns the cap: raise ``cap["pages"]`` and dispose the pool to free the space again.
    """
    with db.read() as conn:
        cap = {"pages": conn.exec_driver_sql("PRAGMA page_count").scalar()}

    @event.listens_for(db.engine, "connect")
    def _cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={cap['pages']}")

    db.engine.pool.dispose()  # the connections opened before do not have the cap
    return cap


def test_a_full_disk_mid_batch_fails_every_call_of_the_batch_and_acknowledges_none(tmp_path: Path) -> None:
    """SQLITE_FULL in one statement rolls back SQLite's whole transaction: the calls batched with it
    lost their writes too, so none of them may be answered as stored."""
    db = Database(f"sqlite:///{tmp_path / 'truthset.db'}", sqlite_synchronous="NORMAL")
    try:
        db.create_all()
        _add_org(db, "before")
        cap = _cap_database_size(db)
        running, gate = threading.Event(), threading.Event()

        def hold_the_writer() -> bool:  # so that the next three calls queue up and run as one batch
            running.set()
            return gate.wait(timeout=60)

        blocker = db.submit(hold_the_writer)
        assert running.wait(timeout=60)
        calls = [db.submit(_add_org, db, name) for name in ("small one", "x" * 200_000, "small two")]
        gate.set()
        assert blocker.result(timeout=60)
        for call in calls:
            with pytest.raises(StorageFull, match="disk is full"):
                call.result(timeout=60)
        assert _names(db) == {"before"}
        cap["pages"] = 1 << 20  # space freed: the same writer thread goes on
        db.engine.pool.dispose()
        assert db.submit(_add_org, db, "after").result(timeout=60) == "after"
        assert _names(db) == {"before", "after"}
    finally:
        db.dispose()


def _wrapped(error: Exception) -> DBAPIError:
    return DBAPIError.instance("SELECT 1", {}, error, psycopg.Error)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (psycopg.errors.DiskFull("could not extend file: No space left on device"), StorageFull),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), Busy),
        (psycopg.errors.CrashShutdown("terminating connection because of crash"), Busy),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), Busy),
        (psycopg.errors.TooManyConnections("sorry, too many clients already"), Busy),
        (psycopg.errors.ConnectionFailure("connection failure"), Busy),
        (psycopg.OperationalError("server closed the connection unexpectedly"), Busy),
        (psycopg.OperationalError("connection failed: Connection refused"), Busy),
        (psycopg.errors.DeadlockDetected("deadlock detected"), Busy),
        (psycopg.errors.UniqueViolation("duplicate key"), None),
        (psycopg.errors.UndefinedTable("relation does not exist"), None),
    ],
)
def test_postgresql_failures_that_are_no_bug_are_translated(error: Exception, expected: type | None) -> None:
    translated = translate(_wrapped(error))
    assert type(translated) is expected if expected else translated is None


def test_a_sync_that_finds_the_disk_full_refuses_the_write_and_the_next_one_is_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fdatasync may report ENOSPC (delayed allocation): the write is not acknowledged as durable,
    and the thread that syncs for the annotation loop keeps serving."""
    db = Database(f"sqlite:///{tmp_path / 'truthset.db'}")  # synchronous=FULL: group commit
    real_fdatasync = os.fdatasync
    failures = [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))]

    def fdatasync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fdatasync(fd)

    try:
        db.create_all()
        monkeypatch.setattr(os, "fdatasync", fdatasync)
        with pytest.raises(StorageFull, match="disk is full"):
            db.submit(_add_org, db, "unsynced").result(timeout=60)
        assert db.submit(_add_org, db, "synced").result(timeout=60) == "synced"
        with pytest.raises(StorageFull):  # the same on the path outside the batch writer
            failures.append(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            _add_org(db, "unsynced too")
    finally:
        db.dispose()

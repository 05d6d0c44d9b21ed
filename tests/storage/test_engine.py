"""The engine and its transactions, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from truthset.errors import Busy
from truthset.storage import Database
from truthset.storage import tables as t


def _org_row(org_id: str = "0" * 24, name: str = "acme") -> dict:
    return {"id": org_id, "name": name, "created_at": datetime(2024, 1, 1, 12, 30, 15, 123456)}


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.organizations)).scalar_one())


def test_write_commits_and_an_error_rolls_back(db: Database) -> None:
    with db.write() as conn:
        conn.execute(insert(t.organizations).values(**_org_row()))
    assert _count(db) == 1
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute(insert(t.organizations).values(**_org_row("1" * 24)))
        raise RuntimeError("boom")
    assert _count(db) == 1
    with pytest.raises(IntegrityError), db.write() as conn:
        conn.execute(insert(t.organizations).values(**_org_row("2" * 24)))
        conn.execute(insert(t.organizations).values(**_org_row()))  # duplicate primary key
    assert _count(db) == 1


def test_datetimes_and_json_round_trip(db: Database) -> None:
    row = _org_row()
    payload = {"text": "héllo ✓ 世界", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    with db.write() as conn:
        conn.execute(insert(t.organizations).values(**row))
        conn.execute(
            insert(t.media).values(
                id="m" * 24,
                organization_id=row["id"],
                sha256="a" * 64,
                content_type="x",
                size=1,
                filename="f",
                created_at=row["created_at"],
            )
        )
        conn.execute(
            insert(t.projects).values(
                id="p" * 24, organization_id=row["id"], name="p", description="", instructions="",
                spec=payload, quality={"overlap": 2}, lease_seconds=60,
                created_at=row["created_at"], updated_at=row["created_at"], archived_at=None,
            )
        )  # fmt: skip
    with db.read() as conn:
        created = conn.execute(select(t.organizations.c.created_at)).scalar_one()
        spec = conn.execute(select(t.projects.c.spec)).scalar_one()
    assert created == row["created_at"] and created.tzinfo is None
    assert spec == payload


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError), db.write() as conn:
        conn.execute(
            insert(t.members).values(
                id="m" * 24, organization_id="9" * 24, email="a@b.c", name="a", role="owner",
                created_at=datetime(2024, 1, 1),
            )
        )  # fmt: skip


# --- SQLite specifics ------------------------------------------------------------------------------


def test_sqlite_is_wal_and_durable_writes_wait_for_a_wal_sync(tmp_path: Path) -> None:
    """The default (FULL) commits without fsync and syncs the WAL before a durable write returns."""
    db = Database(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'x.db'}")  # creates the directory
    db.create_all()
    group = db._group_commit
    assert group is not None
    try:
        with db.read() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL: the group syncs
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000  # the lock timeout, in ms
        before = group.syncs
        with db.write(durable=False) as conn:
            conn.execute(insert(t.organizations).values(id="a" * 24, name="a", created_at=datetime(2024, 1, 1)))
        assert group.syncs == before  # a lease-like write is not synced on its own
        with db.write() as conn:
            conn.execute(insert(t.organizations).values(id="b" * 24, name="b", created_at=datetime(2024, 1, 1)))
        assert group.syncs == before + 1  # ...but the next durable write syncs both
        assert group._synced == group._commits
        with pytest.raises(RuntimeError), db.write():
            raise RuntimeError("rolled back")
        assert group.syncs == before + 1  # nothing committed, nothing to sync
    finally:
        db.dispose()
    normal = Database(f"sqlite:///{tmp_path / 'n.db'}", sqlite_synchronous="NORMAL")
    try:
        assert normal._group_commit is None  # the user chose speed over durability
        with normal.read() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1
    finally:
        normal.dispose()


def test_group_commit_covers_concurrent_writers_with_fewer_syncs(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'g.db'}")
    db.create_all()
    group = db._group_commit
    assert group is not None
    start = group.syncs

    def write(n: int) -> None:
        with db.write() as conn:
            conn.execute(insert(t.organizations).values(id=f"{n:024d}", name=str(n), created_at=datetime(2024, 1, 1)))
        assert group._synced >= 1  # returned only after a sync covered it

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(200)))
    try:
        with db.read() as conn:
            assert conn.execute(select(func.count()).select_from(t.organizations)).scalar() == 200
        assert group._synced == group._commits
        assert group.syncs - start <= 200
    finally:
        db.dispose()


def test_sqlite_write_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a write transaction holds the lock before its first statement."""
    path = tmp_path / "lock.db"
    db = Database(f"sqlite:///{path}")
    db.create_all()
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with db.write(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the block ends
        other.execute("ROLLBACK")
        with db.read() as conn:
            conn.execute(select(t.organizations)).all()
            other.execute("BEGIN IMMEDIATE")  # a read does not block writers
            other.execute("ROLLBACK")
    finally:
        other.close()
        db.dispose()


def test_a_write_locked_out_by_another_process_fails_as_busy(tmp_path: Path) -> None:
    """SQLite locked by another process past the busy timeout: Busy (HTTP 503, retry), not a 500."""
    path = tmp_path / "busy.db"
    db = Database(f"sqlite:///{path}")
    db.create_all()
    with db.engine.connect() as conn:  # the pool's one connection, made impatient for the test
        conn.exec_driver_sql("PRAGMA busy_timeout=0")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Busy, match="try again"), db.write():
            pass
        other.execute("ROLLBACK")
        with db.write() as conn:  # free again
            conn.execute(select(t.organizations)).all()
    finally:
        other.close()
        db.dispose()


def test_a_postgres_deadlock_fails_as_busy_and_the_other_writer_commits(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite writers never hold locks at once")
    ids = ["a" * 24, "b" * 24]
    with db.write() as conn:
        rows = [{"id": i, "name": i[0], "created_at": datetime(2026, 1, 1)} for i in ids]
        conn.execute(insert(t.organizations), rows)
    both_hold_one = threading.Barrier(2)

    def rename(first: str, second: str) -> str:
        with db.write() as conn:
            conn.execute(update(t.organizations).where(t.organizations.c.id == first).values(name="x"))
            both_hold_one.wait(timeout=10)
            conn.execute(update(t.organizations).where(t.organizations.c.id == second).values(name="x"))
        return "committed"

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(rename, *ids), pool.submit(rename, *reversed(ids))]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=30))
            except Busy:
                outcomes.append("busy")
    assert sorted(outcomes) == ["busy", "committed"]


def test_sqlite_checkpoints_in_the_background_not_in_a_commit(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ckpt.db'}")
    db.create_all()
    checkpointer = db._checkpointer
    assert checkpointer is not None
    try:
        with db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0  # no commit checkpoints
        rows = [{"id": f"{i:024d}", "name": "x" * 500, "created_at": datetime(2026, 1, 1)} for i in range(3000)]
        with db.write() as conn:
            conn.execute(insert(t.organizations), rows)
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the thread runs about once a second after commits
        assert checkpointer.checkpoints >= 1
        raw = sqlite3.connect(tmp_path / "ckpt.db")
        try:
            busy, logged, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert busy == 0 and logged == copied  # everything was already copied back
            assert raw.execute("SELECT count(*) FROM organizations").fetchone()[0] == 3000
        finally:
            raw.close()
        thread = checkpointer._thread
    finally:
        db.dispose()
    # this database's thread (CLI commands run earlier in the process may leave theirs running)
    assert thread is not None and thread.name == "truthset-checkpoint" and not thread.is_alive()


def test_sqlite_wal_stays_bounded_under_nonstop_writes_and_reads(tmp_path: Path) -> None:
    """PASSIVE checkpoints never reset a log that writers keep appending to; the RESTART does."""
    limit = 1024 * 1024
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}", sqlite_synchronous="NORMAL", wal_restart_bytes=limit)
    db.create_all()
    wal = tmp_path / "wal.db-wal"
    stop = threading.Event()
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            _count(db)
            reads += 1

    thread = threading.Thread(target=reader)
    thread.start()
    peak = 0
    try:
        for i in range(3000):  # each commit logs ~17 KB: ~50 MB in all
            with db.write() as conn:
                conn.execute(insert(t.organizations).values(**_org_row(f"{i:024d}", "x" * 2000)))
            peak = max(peak, wal.stat().st_size)
    finally:
        stop.set()
        thread.join()
    try:
        assert reads > 0 and _count(db) == 3000
        # past the limit the thread restarts the log; past 2x the commit itself does; past 4x the
        # commit waits up to a second for readers (a descheduled reader may hold a snapshot > 50 ms).
        # Only a reader that held its snapshot past even that second (a machine so loaded that its
        # thread was not scheduled) lets the log grow further, and then a RESTART was held off.
        checkpointer = db._checkpointer
        assert checkpointer is not None and checkpointer.restarts >= 1
        assert peak <= 4 * limit + 64 * 1024 or checkpointer.held_off > 0, f"the WAL reached {peak / 2**20:.1f} MiB"
    finally:
        db.dispose()


def _write_past(db: Database, wal: Path, size: int, start: int) -> int:
    """Commit ~17 KB rows until the log file is past ``size`` bytes; returns the next row number."""
    i = start
    while wal.stat().st_size <= size if wal.exists() else True:
        with db.write() as conn:
            conn.execute(insert(t.organizations).values(**_org_row(f"{i:024d}", "x" * 2000)))
        i += 1
    return i


def test_sqlite_tries_no_restart_while_a_long_read_is_open(tmp_path: Path) -> None:
    """An export's snapshot makes every RESTART fail: none is tried (each held the write lock for a
    second, every second of an export), and the thread restarts the log as soon as the read ends."""
    limit = 256 * 1024
    db = Database(f"sqlite:///{tmp_path / 'long.db'}", sqlite_synchronous="NORMAL", wal_restart_bytes=limit)
    db.create_all()
    wal = tmp_path / "long.db-wal"
    checkpointer = db._checkpointer
    assert checkpointer is not None
    try:
        with db.snapshot(lasting=True) as reading:
            before = _count_on(reading)
            written = _write_past(db, wal, 6 * limit, 0)
            assert _count_on(reading) == before  # the snapshot still sees the state it started with
            assert checkpointer.held_off == 0  # no commit waited for the reader
            restarts = checkpointer.restarts
        deadline = time.monotonic() + 10
        while checkpointer.restarts == restarts and time.monotonic() < deadline:
            time.sleep(0.05)  # no further commit: the thread catches up by itself
        assert checkpointer.restarts > restarts
        with db.write() as conn:  # the next writer starts the log over, and the file shrinks
            conn.execute(insert(t.organizations).values(**_org_row(f"{written:024d}", "x")))
        assert wal.stat().st_size <= limit
        assert _count(db) == written + 1
    finally:
        db.dispose()


def test_sqlite_waits_longer_between_restarts_a_reader_elsewhere_holds_off(tmp_path: Path) -> None:
    """A reader the checkpointer cannot see (another process) fails the RESTARTs of commits past 4x
    restart_bytes, each after a second's wait: tries come ever further apart, not back to back."""
    limit = 256 * 1024
    path = tmp_path / "other.db"
    db = Database(f"sqlite:///{path}", sqlite_synchronous="NORMAL", wal_restart_bytes=limit)
    db.create_all()
    wal = tmp_path / "other.db-wal"
    checkpointer = db._checkpointer
    assert checkpointer is not None
    elsewhere = sqlite3.connect(path, isolation_level=None)
    try:
        elsewhere.execute("BEGIN")
        elsewhere.execute("SELECT count(*) FROM organizations").fetchone()  # its snapshot is fixed now
        i = _write_past(db, wal, 4 * limit, 0)
        started = time.monotonic()
        while time.monotonic() - started < 4.5:
            with db.write() as conn:
                conn.execute(insert(t.organizations).values(**_org_row(f"{i:024d}", "x")))
            i += 1
        # the commit that passed 4x tried first (and waited 1 s); then, in the 4.5 s, a try 1 s after
        # that one ended and another 2 s after the second ended; back to back there were 6 in all
        assert 1 <= checkpointer.held_off <= 3
    finally:
        elsewhere.close()
        db.dispose()


def _count_on(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.organizations)).scalar_one())


def test_postgres_read_committed(postgres_worker_url: str) -> None:
    db = Database(postgres_worker_url)
    try:
        with db.read() as conn:
            assert conn.execute(text("SHOW transaction_isolation")).scalar() == "read committed"
    finally:
        db.dispose()


def test_postgres_leases_skip_the_commit_flush_and_responses_do_not(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite's equivalent is the group commit above")
    with db.read() as conn:
        server_default = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
    with db.write(durable=False) as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    with db.write() as conn:  # the server's setting (on, unless a test cluster turned it off)
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == server_default
    with db.read() as conn:  # SET LOCAL ended with its transaction
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == server_default


# --- lock deadlines --------------------------------------------------------------------------------


def _impatient(db: Database) -> Database:
    """Another Database on the same database, whose writers wait at most 0.2 s for a lock."""
    return Database(db.url.render_as_string(hide_password=False), sqlite_synchronous="NORMAL", lock_timeout=0.2)


def test_a_write_waiting_for_the_write_lock_ends_busy_at_the_lock_timeout(tmp_path: Path) -> None:
    """SQLite: this process's writers queue on one lock; a writer that would wait past the deadline gets Busy."""
    db = Database(f"sqlite:///{tmp_path / 'locked.db'}", sqlite_synchronous="NORMAL", lock_timeout=0.2)
    db.create_all()
    holding, done = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with db.write():
            holding.set()
            done.wait(timeout=60)

    def write() -> None:
        with db.write() as conn:
            conn.execute(insert(t.organizations).values(**_org_row()))

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        with ThreadPoolExecutor(1) as pool:
            with pytest.raises(Busy, match="try again"):
                pool.submit(write).result(timeout=60)  # a bound for the test only: it used to wait for ever
            # the annotation loop's batched calls wait on the same lock, with the same deadline
            with pytest.raises(Busy, match="try again"):
                db.submit(write).result(timeout=60)
    finally:
        done.set()
        holder.join()
    try:
        write()  # the lock is free again
        assert _count(db) == 1
    finally:
        db.dispose()


def test_a_read_waiting_for_a_pooled_connection_ends_busy_at_the_lock_timeout(db: Database) -> None:
    """Every pooled connection held (pool of 1, no overflow): the next caller gets Busy (503), not a 500."""
    url = db.url.render_as_string(hide_password=False)
    small = Database(url, sqlite_synchronous="NORMAL", lock_timeout=0.2, pool_size=1)
    small.engine.pool._max_overflow = 0  # type: ignore[attr-defined]  # the pool of 1 may not grow
    try:
        with small.read(), ThreadPoolExecutor(1) as pool:

            def read() -> None:
                with small.read() as conn:
                    conn.execute(text("SELECT 1"))

            with pytest.raises(Busy, match="connection is busy"):
                pool.submit(read).result(timeout=60)
    finally:
        small.dispose()


def test_sqlite_busy_timeout_follows_the_lock_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", lock_timeout=2.5)
    try:
        with db.read() as conn:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 2500
    finally:
        db.dispose()


def test_a_postgres_write_waiting_for_a_row_lock_ends_busy_at_the_lock_timeout(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite is covered by the write-lock test")
    with db.write() as conn:
        conn.execute(insert(t.organizations).values(**_org_row()))
    impatient = _impatient(db)
    try:
        with db.engine.connect() as holder, holder.begin():
            holder.execute(select(t.organizations).with_for_update())  # the row is locked until this ends
            with pytest.raises(Busy, match="try again"), impatient.write() as conn:
                conn.execute(update(t.organizations).values(name="renamed"))
        with impatient.write() as conn:  # free again
            conn.execute(update(t.organizations).values(name="renamed"))
    finally:
        impatient.dispose()


def test_snapshots_see_one_state_while_another_process_commits(db: Database) -> None:
    """Database.snapshots: several connections, one state. The writer is another Database (as
    another process would be: not this one's write lock), committing as fast as it can."""
    other = Database(db.url.render_as_string(hide_password=False), sqlite_synchronous="NORMAL")
    stop = threading.Event()

    def write_nonstop() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            with other.write(durable=False) as conn:
                conn.execute(insert(t.organizations).values(**_org_row(f"{number:024d}", f"org {number}")))

    writer = threading.Thread(target=write_nonstop)
    writer.start()
    seen: list[list[int]] = []
    try:
        while len(seen) < 30 or len({counts[0] for counts in seen}) < 5:  # until the writer is well under way
            with db.snapshots(3) as conns:
                first = [conn.execute(select(func.count()).select_from(t.organizations)).scalar_one() for conn in conns]
                time.sleep(0.01)  # the writer commits meanwhile: each connection still sees its snapshot
                again = [conn.execute(select(func.count()).select_from(t.organizations)).scalar_one() for conn in conns]
            seen.append(first + again)
    finally:
        stop.set()
        writer.join()
        other.dispose()
    assert all(len(set(counts)) == 1 for counts in seen), [counts for counts in seen if len(set(counts)) > 1]

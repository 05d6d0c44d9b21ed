"""Database engine and transactions.

Services own transactions: they call :meth:`Database.write` or :meth:`Database.read` and pass the
connection to repositories, which never commit.

SQLite: WAL journal, ``synchronous=FULL`` by default (every acknowledged write reaches the disk), and
write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of
failing half-way with ``database is locked``. PostgreSQL: READ COMMITTED plus explicit row locks
(``FOR UPDATE [SKIP LOCKED]``) where the queue needs them.

Failures that are no bug leave :meth:`Database.write` and :meth:`Database.read` as domain errors
(:func:`translate`): a lost race or a database server going away as ``Busy`` (HTTP 503), a full
disk as ``StorageFull`` (HTTP 507). Anything else stays a DBAPIError: a bug.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool

from truthset.errors import Busy, StorageFull, TruthsetError
from truthset.storage import sqlite_library
from truthset.storage.batching import BatchWriter
from truthset.storage.checkpointer import RESTART_BYTES, Checkpointer
from truthset.storage.files import make_private_dirs, make_private_file, sqlite_file

# PostgreSQL's deadlock, serialization failure and lock timeout: the transaction lost a race, not data
_TRANSIENT_SQLSTATES = {"40P01", "40001", "55P03"}
# PostgreSQL shutting down or restarting (admin, crash, still starting up) or out of connections
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
_DISK_FULL_SQLSTATE = "53100"
_SQLITE_BUSY = 5
_SQLITE_FULL = 13  # "database or disk is full": also what SQLite reports for ENOSPC
SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")  # PostgreSQL's pg_export_snapshot()


def _transient(exc: DBAPIError) -> bool:
    """Whether retrying the same transaction later may well succeed."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return getattr(orig, "sqlite_errorcode", None) == _SQLITE_BUSY  # locked by another process past the busy timeout


def _unreachable(exc: DBAPIError) -> bool:
    """Whether the database server went away (restart, shutdown, network) rather than refused the SQL."""
    if exc.connection_invalidated:
        return True
    if not hasattr(exc.orig, "sqlstate"):  # SQLite: a local file, never "unreachable"
        return False
    sqlstate = exc.orig.sqlstate  # type: ignore[union-attr]
    if sqlstate is None:  # psycopg raised it itself: connection refused, closed, lost
        return isinstance(exc, OperationalError | InterfaceError)
    return sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate.startswith("08")  # 08: connection exception


def _disk_full(exc: DBAPIError) -> bool:
    if getattr(exc.orig, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    return getattr(exc.orig, "sqlstate", None) == _DISK_FULL_SQLSTATE


def translate(exc: DBAPIError) -> TruthsetError | None:
    """The domain error for a database failure that is not a bug (HTTP 503 or 507), else None."""
    if _transient(exc):
        return Busy("the database is busy with a conflicting write; try again")
    if _disk_full(exc):
        return StorageFull("the database's disk is full: nothing was stored; try again once space is freed")
    if _unreachable(exc):
        return Busy("the database is unreachable (restarting?); try again")
    return None


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@contextmanager
def _translated() -> Iterator[None]:
    """Database failures that are no bug (a lost race, a full disk, a server restarting) become
    domain errors (HTTP 503 or 507, with Retry-After); anything else stays what it is."""
    try:
        yield
    except DBAPIError as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc
    except PoolTimeout as exc:  # every pooled connection stayed busy for the whole pool timeout
        raise Busy("every database connection is busy; try again") from exc


def _set_postgres_lock_timeout(engine: Engine, seconds: float) -> None:
    """Every session waits at most ``seconds`` for a row or table lock; then 55P03, which is Busy (503)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # a SET outside any transaction lasts for the session
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {max(1, round(seconds * 1000))}")
        dbapi_connection.autocommit = autocommit


class _SQLiteCompiler(SQLiteCompiler):
    """SQLite's compiler, rendering a table hint (``repositories.prefer_index``) as ``INDEXED BY``.

    SQLAlchemy's own SQLite compiler drops table hints silently.
    """

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


class GroupCommit:
    """Durability for SQLite at the cost of one fsync per group of commits, not one per commit.

    Connections run with ``synchronous=NORMAL``: a commit appends its frames to the WAL file without
    syncing it. Before a durable write is acknowledged, :meth:`wait_durable` makes sure the WAL has
    been fdatasync'ed since that commit: the first waiter syncs everything committed so far, and
    the writers that committed meanwhile find themselves covered and return at once. This gives
    the guarantee of ``synchronous=FULL`` (an acknowledged write survives power loss) while the
    write lock is released before the sync, so the next transaction runs during it.

    fdatasync on our own descriptor of the WAL flushes the file, whoever wrote the pages. When the
    WAL is checkpointed, SQLite (in NORMAL mode) syncs the WAL before and the database after, and it
    may then delete the WAL file when the last connection closes: the inode is checked each time.
    """

    def __init__(self, wal_path: Path) -> None:
        self._wal_path = wal_path
        self._fd: int | None = None
        self._inode: int | None = None
        self._commits = 0  # incremented under the database's write lock
        self._synced = 0
        self._sync_lock = threading.Lock()
        self.syncs = 0  # how many fdatasync calls were made (observability, tests)

    def committed(self) -> int:
        """Call right after a COMMIT, under the write lock. Returns the commit's ticket."""
        self._commits += 1
        return self._commits

    def wait_durable(self, ticket: int) -> None:
        with self._sync_lock:
            if self._synced >= ticket:
                return  # a sync that began after our commit has covered it
            covered = self._commits
            self._sync_wal()
            self._synced = covered

    def _sync_wal(self) -> None:
        try:
            inode = os.stat(self._wal_path).st_ino
        except FileNotFoundError:
            return  # checkpointed into the database file (synced by SQLite) and removed
        if self._fd is None or inode != self._inode:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self._wal_path, os.O_RDONLY)
            self._inode = inode
        os.fdatasync(self._fd)
        self.syncs += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Database:
    """One engine plus the transaction helpers every service uses."""

    def __init__(
        self,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        pool_size: int = 20,
        lock_timeout: float = 10.0,
        wal_restart_bytes: int = RESTART_BYTES,
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.lock_timeout = lock_timeout
        self._write_lock: threading.RLock | None = threading.RLock() if self.is_sqlite else None
        self._group_commit: GroupCommit | None = None
        self._checkpointer: Checkpointer | None = None
        self._batch_writer: BatchWriter | None = None
        self._executor: ThreadPoolExecutor | None = None
        # the annotation loop's calls (see loop_busy_since): how many are waiting or running, and when
        # the loop was last seen (a call submitted or ended)
        self._hot_lock = threading.Lock()
        self._hot_in_flight = 0
        self._hot_seen_at = -1e9
        self._batch = threading.local()  # on the writer thread: the connection of the running batch
        if self.is_sqlite:
            sqlite_library.turn_off_memory_statistics()  # before this process's first connection
            self._batch_writer = BatchWriter(self)
            database = sqlite_file(url)
            on_disk = database is not None
            wal = database.resolve().with_name(database.name + "-wal") if database is not None else None
            if sqlite_synchronous == "FULL" and wal is not None:
                # connections commit without fsync; acknowledged writes wait for a shared one
                self._group_commit = GroupCommit(wal)
                sqlite_synchronous = "NORMAL"
            self.engine = self._sqlite_engine(
                url, sqlite_synchronous, pool_size, lock_timeout, on_disk=on_disk, wal_limit=wal_restart_bytes
            )
            if wal is not None:
                assert self._write_lock is not None
                self._checkpointer = Checkpointer(self.engine, wal, self._write_lock, restart_bytes=wal_restart_bytes)
        else:
            self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="truthset-db")
            self.engine = create_engine(
                url,
                json_serializer=_json_dumps,
                json_deserializer=orjson.loads,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=lock_timeout,  # a request waits no longer for a connection than for a lock
                pool_pre_ping=True,
            )
            _set_postgres_lock_timeout(self.engine, lock_timeout)

    @staticmethod
    def _sqlite_engine(
        url: str, synchronous: str, pool_size: int, lock_timeout: float, *, on_disk: bool, wal_limit: int
    ) -> Engine:
        if on_disk:  # owner-only: it holds password and key hashes (SQLite's -wal/-shm take its mode)
            make_private_dirs(Path(make_url(url).database).parent)  # type: ignore[arg-type]
            make_private_file(Path(make_url(url).database))  # type: ignore[arg-type]
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            poolclass=QueuePool,
            pool_use_lifo=True,  # the most recently used connection: its page cache is warm
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=lock_timeout,
            connect_args={"check_same_thread": False, "timeout": lock_timeout},
        )

        engine.dialect.statement_compiler = _SQLiteCompiler  # this engine's statements only

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (the pysqlite driver would
            # otherwise start deferred transactions behind our back).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={round(lock_timeout * 1000)}")  # another process's write
            # 8 MiB of page cache per connection (SQLite's default is 2 MiB). It was 64 MiB, which a
            # bulk import or an export filled and then kept for as long as the connection lived in
            # the pool: +64 MiB of server memory per such connection.
            cursor.execute("PRAGMA cache_size=-8192")
            if on_disk:
                cursor.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer thread does it
                # a log the Checkpointer restarted shrinks back to the size at which it restarts logs
                cursor.execute(f"PRAGMA journal_size_limit={int(wal_limit)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A read-write transaction, committed when the block ends without error.

        When the block has returned, the commit is on disk (unless ``durable=False``, for writes
        whose loss on power failure is harmless, such as a lease; a later durable commit covers it).
        Inside a call run by :meth:`submit` on SQLite, the block is a SAVEPOINT of the batch's
        transaction instead, and the call is answered once the batch has committed (and synced).
        """
        if (batch := getattr(self._batch, "conn", None)) is not None:
            with _translated(), self._savepoint(batch, durable) as conn:
                yield conn
            return
        options = {"sqlite_begin": "IMMEDIATE"} if self.is_sqlite else {}
        # SQLite has one writer at a time. Queue this process's writers on a lock, which hands over
        # the moment a commit ends, rather than on SQLite's busy handler, which polls with sleeps
        # of up to 100 ms: under 16 concurrent annotators that polling made p99 latency seconds.
        # The busy timeout still orders writers of different processes.
        with _translated(), self._locked(), self.engine.connect().execution_options(**options) as conn:
            with conn.begin():
                if not durable and not self.is_sqlite:
                    # PostgreSQL's own way to acknowledge a commit before its WAL reaches the disk
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                yield conn
            ticket = self._committed()
        if durable:
            self.wait_durable(ticket)  # outside the lock: the next writer goes on

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot); inside a batch, the batch's connection."""
        if (batch := getattr(self._batch, "conn", None)) is not None:
            yield batch
            return
        with _translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def snapshot(self, *, lasting: bool = False) -> Iterator[Connection]:
        """A read-only transaction that sees one state of the database however long it reads.

        For reads that must not mix states (a refit's, an export's). PostgreSQL's READ COMMITTED
        takes a new snapshot per statement, so this runs REPEATABLE READ; a SQLite read transaction
        in WAL mode already keeps the snapshot of its first read. On SQLite the WAL cannot be
        restarted while it is open: ``lasting`` (a read of seconds, an export) tells the
        checkpointer not to try meanwhile (see :mod:`truthset.storage.checkpointer`). A short read
        is not ``lasting``: counting a refit's reads, back to back under load, kept the log from
        restarting between them (41 MiB instead of 17 in the 16-annotator loop).
        """
        options = {} if self.is_sqlite else {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        long_read = self._checkpointer.long_read() if self._checkpointer and lasting else nullcontext()
        with long_read, _translated(), self.engine.connect().execution_options(**options) as conn:
            with conn.begin():
                yield conn
            if self.is_sqlite:
                # a long read filled this pooled connection's page cache (up to cache_size): free it
                # rather than keep it, unused, for as long as the connection lives in the pool
                conn.exec_driver_sql("PRAGMA shrink_memory")

    @contextmanager
    def snapshots(self, count: int) -> Iterator[list[Connection]]:
        """``count`` lasting :meth:`snapshot` transactions that all see one and the same state: one
        long read split over several connections, so over several cores (an export's lines).

        PostgreSQL: the first publishes its snapshot (``pg_export_snapshot()``) and the others
        adopt it (``SET TRANSACTION SNAPSHOT``). SQLite cannot hand a snapshot over
        (``sqlite3_snapshot_open`` is not in Python's driver), but a WAL reader's snapshot is fixed
        by its first read: each takes that read while this process holds the write lock
        (``BEGIN IMMEDIATE``, for a few milliseconds), so no commit can fall between them.
        """
        with ExitStack() as stack:
            conns = [stack.enter_context(self.snapshot(lasting=True)) for _ in range(count)]
            if count > 1 and self.is_sqlite:
                self._share_sqlite_snapshot(conns)
            elif count > 1:
                self._share_postgres_snapshot(conns)
            yield conns

    def _share_sqlite_snapshot(self, conns: list[Connection]) -> None:
        with _translated(), self._locked(), self.engine.connect() as writer:
            held = writer.execution_options(sqlite_begin="IMMEDIATE").begin()  # the write lock, at once
            for conn in conns:
                conn.exec_driver_sql("SELECT count(*) FROM sqlite_master")  # a read: fixes its snapshot
            held.rollback()

    @staticmethod
    def _share_postgres_snapshot(conns: list[Connection]) -> None:
        published = str(conns[0].exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
        if not SNAPSHOT_ID.fullmatch(published):  # it goes into a statement as a literal
            raise RuntimeError(f"unexpected snapshot id {published!r}")
        for conn in conns[1:]:
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{published}'")  # first in its transaction

    def libpq_conninfo(self) -> str:
        """PostgreSQL: the libpq connection string this database's own connections are made with,
        for another libpq client (the ADBC readers of a Parquet export, services/export_arrow.py).

        Why not the URL rendered again: SQLAlchemy leaves a space in a user name as it is, which
        libpq refuses in a URI. The keyword form comes from the very arguments SQLAlchemy hands
        psycopg (host lists, Unix sockets, ``sslmode`` and the other query options included),
        quoted by psycopg; only psycopg's own arguments (its adapters' ``context``) are left out.
        """
        import psycopg.conninfo  # PostgreSQL only: the SQLite default never loads psycopg
        import psycopg.pq

        args, options = self.engine.dialect.create_connect_args(self.engine.url)
        libpq = {option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults()}
        return psycopg.conninfo.make_conninfo(*args, **{k: v for k, v in options.items() if k in libpq})

    def submit(self, function: Callable[..., Any], *args: Any, hot: bool = True) -> Future:
        """Run a service call ``function(*args)`` off the caller's thread; the future gets its result.

        On SQLite the calls go to one writer thread that runs all waiting calls in one transaction
        (:mod:`truthset.storage.batching`); on PostgreSQL, which has concurrent writers, to a pool.
        For short calls: the annotation loop's (``hot``), or one short step of background work such
        as an import's chunk (``hot=False``), which then takes its turn behind the waiting calls.
        """
        if hot:
            with self._hot_lock:
                self._hot_in_flight += 1
                self._hot_seen_at = time.monotonic()
        if self._batch_writer is not None:
            future = self._batch_writer.submit(function, *args)
        else:
            assert self._executor is not None
            future = self._executor.submit(function, *args)
        if hot:
            future.add_done_callback(self._hot_call_ended)
        return future

    def _hot_call_ended(self, _future: Future) -> None:
        with self._hot_lock:
            self._hot_in_flight -= 1
            self._hot_seen_at = time.monotonic()

    def loop_busy_since(self, moment: float) -> bool:
        """Whether the annotation loop had a call waiting or running at any time from ``moment``
        (``time.monotonic()``) to now, in this process: one submitted, one ended, or one in flight."""
        with self._hot_lock:
            return self._hot_in_flight > 0 or self._hot_seen_at >= moment

    def run_batch(self, body: Callable[[], None]) -> int:
        """Run ``body`` with this thread's writes and reads inside one SQLite transaction.

        Returns the commit's group-commit ticket (for :meth:`wait_durable`). Used by the writer thread.
        """
        options = {"sqlite_begin": "IMMEDIATE"}
        with _translated(), self._locked(), self.engine.connect().execution_options(**options) as conn:
            with conn.begin():
                self._batch.conn, self._batch.lost = conn, None
                try:
                    body()
                finally:
                    self._batch.conn = None
                if not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                    # SQLite rolled the whole batch back (a full disk, an I/O error): COMMIT would be
                    # a silent no-op that acknowledged calls whose writes are gone
                    raise self._batch_lost()
            return self._committed()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """This process's SQLite write lock, waited for at most ``lock_timeout`` seconds, else Busy (503).

        A writer that waits longer is better told to retry than left hanging: whatever holds the
        lock (a long transaction, a stuck disk) is not something the waiting request can fix.
        """
        if self._write_lock is None:  # PostgreSQL: row locks, bounded by its lock_timeout
            yield
            return
        if not self._write_lock.acquire(timeout=self.lock_timeout):
            raise Busy(f"the database is busy (waited {self.lock_timeout:g} s for the write lock); try again")
        try:
            yield
        finally:
            self._write_lock.release()

    def _committed(self) -> int:
        """Bookkeeping right after a COMMIT, under the write lock; returns the group-commit ticket."""
        if self._checkpointer is not None:
            self._checkpointer.committed()
        return self._group_commit.committed() if self._group_commit else 0

    def wait_durable(self, ticket: int) -> None:
        """Return once the commit with this ticket is on disk (at once without a group commit).

        A sync that finds the disk full (delayed allocation) raises StorageFull: the write is
        committed but not known to be durable, so it is not acknowledged; a retry with the same
        Idempotency-Key finds it. The next sync tries again.
        """
        if self._group_commit:
            try:
                self._group_commit.wait_durable(ticket)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                raise StorageFull("the database's disk is full: the write could not be synced; try again") from exc

    def _batch_lost(self) -> TruthsetError:
        """The error for every call of a batch SQLite rolled back: the cause's, or Busy (retry)."""
        cause = getattr(self._batch, "lost", None)
        error = translate(cause) if isinstance(cause, DBAPIError) else None
        return error or Busy("the database rolled back this write with others (an I/O error); try again")

    @contextmanager
    def _savepoint(self, conn: Connection, durable: bool) -> Iterator[Connection]:
        driver = conn.connection.driver_connection
        if not driver.in_transaction:  # type: ignore[union-attr]
            # SQLite rolled the whole batch back (an I/O error, a full disk): stop writing outside it
            raise self._batch_lost()
        assert self._batch_writer is not None
        call = self._batch_writer.current()
        if call is not None and durable:
            call.durable = True
        driver.execute("SAVEPOINT write_block")  # type: ignore[union-attr]
        try:
            yield conn
        except BaseException as exc:
            if not driver.in_transaction:  # type: ignore[union-attr]
                self._batch.lost = exc  # SQLite rolled back the whole batch, savepoint included
                raise
            driver.execute("ROLLBACK TO write_block")  # type: ignore[union-attr]
            driver.execute("RELEASE write_block")  # type: ignore[union-attr]
            raise
        driver.execute("RELEASE write_block")  # type: ignore[union-attr]

    def create_all(self) -> None:
        """Create tables straight from metadata (tests); production uses :func:`upgrade`."""
        from truthset.storage.tables import metadata

        metadata.create_all(self.engine)

    def dispose(self) -> None:
        if self._batch_writer is not None:
            self._batch_writer.close()
        if self._executor is not None:
            self._executor.shutdown()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.engine.dispose()
        if self._group_commit:
            self._group_commit.close()

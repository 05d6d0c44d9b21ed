"""Database engine and transactions.

Services own transactions: they call :meth:`Database.write` or :meth:`Database.read` and pass the
connection to repositories, which never commit.

SQLite: WAL journal, ``synchronous=FULL`` by default (every acknowledged write reaches the disk), and
write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of
failing half-way with ``database is locked``. PostgreSQL: READ COMMITTED plus explicit row locks
(``FOR UPDATE [SKIP LOCKED]``) where the queue needs them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Database:
    """One engine plus the transaction helpers every service uses."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 20) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.synchronous = sqlite_synchronous
        self._write_lock: threading.RLock | contextlib.nullcontext = (
            threading.RLock() if self.is_sqlite else contextlib.nullcontext()
        )
        if self.is_sqlite:
            self.engine = self._sqlite_engine(url, sqlite_synchronous, pool_size)
        else:
            self.engine = create_engine(
                url,
                json_serializer=_json_dumps,
                json_deserializer=orjson.loads,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
            )

    @staticmethod
    def _sqlite_engine(url: str, synchronous: str, pool_size: int) -> Engine:
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (the pysqlite driver would
            # otherwise start deferred transactions behind our back).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A read-write transaction, committed when the block ends without error.

        ``durable=False`` (SQLite only) skips the fsync at commit for writes whose loss on power
        failure is harmless, such as a lease: WAL still makes the commit atomic, and the next
        durable commit syncs the log up to and including it.
        """
        options = {"sqlite_begin": "IMMEDIATE"} if self.is_sqlite else {}
        # SQLite has one writer at a time. Queue this process's writers on a lock, which hands over
        # the moment a commit ends, rather than on SQLite's busy handler, which polls with sleeps
        # of up to 100 ms: under 16 concurrent annotators that polling made p99 latency seconds.
        # The busy timeout still orders writers of different processes.
        with self._write_lock, self.engine.connect().execution_options(**options) as conn:
            relaxed = self.is_sqlite and not durable and self.synchronous == "FULL"
            # on the driver connection: SQLAlchemy would wrap the pragma in a transaction, where
            # SQLite refuses to change it
            raw = conn.connection.driver_connection
            if relaxed:
                raw.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    yield conn
            finally:
                if relaxed:
                    raw.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def create_all(self) -> None:
        """Create tables straight from metadata (tests); production uses :func:`upgrade`."""
        from truthset.storage.tables import metadata

        metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

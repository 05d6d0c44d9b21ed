"""SQLite WAL checkpoints in a background thread instead of inside a commit.

By default SQLite checkpoints (copies the write-ahead log back into the database file and syncs
it) in whichever commit pushes the log past 1,000 pages, while that transaction still holds the
write lock: every writer queued behind it waits, which made the annotation loop's slowest calls.
Here connections run with ``wal_autocheckpoint=0`` and this thread runs a PASSIVE checkpoint at
most once per ``interval`` after new commits; PASSIVE never waits for writers or readers, so
writers keep appending while it copies. SQLite still checkpoints on its own when the last
connection closes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from sqlalchemy import Engine

log = logging.getLogger("truthset.storage")


class Checkpointer:
    """The background checkpoint thread of one SQLite database file."""

    def __init__(self, engine: Engine, *, interval: float = 1.0) -> None:
        self._engine = engine
        self._interval = interval
        self._commits = 0  # incremented under the database's write lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.checkpoints = 0  # how many ran (observability, tests)

    def committed(self) -> None:
        """Call after each COMMIT: there is log to copy back."""
        self._commits += 1
        if self._thread is None:
            self._start()

    def checkpoint(self) -> None:
        """Copy what the log holds into the database file now, without waiting for anyone."""
        raw = self._engine.raw_connection()
        try:
            # on the driver connection: outside a transaction, which a checkpoint cannot run in
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
            self.checkpoints += 1
        finally:
            raw.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="truthset-checkpoint", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        done = 0
        while not self._stop.wait(self._interval):
            seen = self._commits
            if seen == done:
                continue
            try:
                self.checkpoint()
                done = seen
            except sqlite3.Error:  # e.g. a full disk: the log keeps everything; try again later
                log.exception("WAL checkpoint failed; retrying in %s s", self._interval)

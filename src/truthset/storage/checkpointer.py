"""SQLite WAL checkpoints in a background thread, and a bound on the log's size under nonstop writes.

By default SQLite checkpoints (copies the write-ahead log back into the database file and syncs
it) in whichever commit pushes the log past 1,000 pages, while that transaction still holds the
write lock: every writer queued behind it waits, which made the annotation loop's slowest calls.
Here connections run with ``wal_autocheckpoint=0`` and this thread runs a PASSIVE checkpoint at
most once per ``interval`` after new commits; PASSIVE never waits for writers or readers, so
writers keep appending while it copies.

PASSIVE alone never bounds the log under continuous load: SQLite starts writing the log from its
beginning again only when a writer begins a transaction right after a checkpoint that copied
every frame, and with writers appending all the time that moment never comes (the log reached
768 MiB after ~16,600 responses). So when the log file passes ``restart_bytes`` the thread takes
the process's write lock (in-process writers wait on it, not on SQLite's polling busy handler),
finishes the copy with a RESTART checkpoint (which waits at most ``busy_ms`` for readers still on
an older snapshot) and lets go: the next writer starts the log over, and ``journal_size_limit``
(set to ``restart_bytes`` on every connection) truncates the file back to that size. Most frames
were already copied by the PASSIVE run just before, so the lock is held for the tail of the copy
and one fsync. Should the thread fall behind (a burst of large commits, a busy machine), the
commit that finds the log past twice ``restart_bytes`` runs the RESTART itself, under the lock it
already holds, which bounds the log whatever the thread's scheduling; past four times, it waits up
to a second (not 50 ms) for readers of an older snapshot to finish.

A long read (an export's snapshot, held for seconds) makes every RESTART fail until it ends: the
log cannot start over while a reader may still need its frames. Tried anyway, the hard RESTART held
the write lock for a second every second of an export and stalled the annotation loop (max
next/submit 5-6 s, a third of the throughput). So this process's long reads are counted
(:meth:`Checkpointer.long_read`) and no RESTART is tried while one is open: the log grows for the
export's duration (PASSIVE still copies what it can) and the thread catches up as soon as the last
one ends. Readers in other processes are not counted: there consecutive failures of the hard
RESTART double the wait before the next (up to a minute), so such a reader costs a few one-second
stalls, not one a second. The 50 ms tries are cheap and stay once an interval.

SQLite still checkpoints on its own when the last connection closes.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("truthset.storage")

#: Log size past which the checkpointer restarts the log (and the size a reset log shrinks back to).
RESTART_BYTES = 16 * 1024 * 1024
_BUSY_MS = 50  # how long a RESTART may wait for readers on an older snapshot while writers wait
_HARD_BUSY_MS = 1000  # the same, once the log is past 4x restart_bytes: the disk matters more now
_MAX_BACKOFF = 60.0  # the longest wait after consecutive failed hard RESTARTs (readers in other processes)


class Checkpointer:
    """The background checkpoint thread of one SQLite database file."""

    def __init__(
        self,
        engine: Engine,
        wal_path: Path,
        write_lock: AbstractContextManager[Any],
        *,
        interval: float = 1.0,
        restart_bytes: int = RESTART_BYTES,
    ) -> None:
        self._engine = engine
        self._wal_path = wal_path
        self._write_lock = write_lock
        self._interval = interval
        self._restart_bytes = restart_bytes
        self._commits = 0  # incremented under the database's write lock
        self._retry_at = 0.0  # monotonic time before which a failed RESTART is not tried again
        self._hard_retry_at = 0.0  # the same for the longer-waiting RESTART past 4x restart_bytes
        self._hard_wait = interval  # the wait after a failed hard RESTART: doubles while they keep failing
        self._long_reads = 0  # this process's open long reads: a RESTART cannot succeed while > 0
        self._long_reads_lock = threading.Lock()
        self._catch_up = False  # the last long read ended: the thread restarts the log at once
        self._checkpointing = threading.Lock()  # one checkpoint at a time in this process
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.checkpoints = 0  # how many PASSIVE ran (observability, tests)
        self.restarts = 0  # how many RESTART completed (observability, tests)
        self.held_off = 0  # how many commits past 4x found a reader on an old snapshot even after a second

    @contextmanager
    def long_read(self) -> Iterator[None]:
        """Around a read transaction that may stay open for seconds: no RESTART is tried meanwhile."""
        with self._long_reads_lock:
            self._long_reads += 1
        try:
            yield
        finally:
            with self._long_reads_lock:
                self._long_reads -= 1
                ended = self._long_reads == 0
            if ended:
                # Commits hold off for an interval, so that the thread copies the frames logged
                # during the read without the write lock, then restarts the log.
                now = time.monotonic()
                self._retry_at = self._hard_retry_at = now + self._interval
                self._hard_wait = self._interval
                self._catch_up = True
                self._wake.set()

    def committed(self) -> None:
        """Call after each COMMIT, under the write lock: there is log to copy back."""
        self._commits += 1
        if self._thread is None:
            self._start()
        size = self.wal_size()
        if size <= self._restart_bytes or self._long_reads:
            return
        now = time.monotonic()
        if size > 4 * self._restart_bytes and now >= self._hard_retry_at:
            # Even the commits' own tries failed (a reader held its snapshot past 50 ms): wait up to
            # a second for readers now, since the disk matters more than this commit's latency.
            if not self._restart_here(_HARD_BUSY_MS):
                self.held_off += 1
                # From the end of this try, and longer after each failure: a reader this process
                # cannot see (another process) would otherwise cost the writers a second, every second.
                self._hard_retry_at = time.monotonic() + self._hard_wait
                self._hard_wait = min(2 * self._hard_wait, max(_MAX_BACKOFF, self._interval))
        elif now >= self._retry_at:
            self._wake.set()  # the thread restarts the log soon
            if size > 2 * self._restart_bytes:
                self._restart_here(_BUSY_MS)  # the thread fell behind: bound the log here

    def _restart_here(self, busy_ms: int) -> bool:
        """A RESTART from a commit, under the lock it holds; a failure must not fail that commit."""
        try:
            return self._restart_log(locked=True, busy_ms=busy_ms)
        except sqlite3.Error:  # the thread retries and logs
            self._retry_at = time.monotonic() + self._interval
            return False

    def wal_size(self) -> int:
        """The log file's size in bytes (0 when there is none)."""
        try:
            return os.stat(self._wal_path).st_size
        except FileNotFoundError:
            return 0

    def checkpoint(self) -> None:
        """Copy what the log holds into the database file now, without waiting for any writer or reader."""
        with self._checkpointing:
            self._pragma("PRAGMA wal_checkpoint(PASSIVE)")
        self.checkpoints += 1

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _restart_log(self, *, locked: bool, busy_ms: int = _BUSY_MS) -> bool:
        """Copy every frame back and have the next writer start the log over; False if readers held on."""
        if not locked:
            with self._write_lock:
                return self._restart_log(locked=True, busy_ms=busy_ms)
        # SQLite fails a checkpoint at once, without its busy handler, while another one runs: so
        # wait here for the thread's PASSIVE run to end (it leaves little to copy)
        if not self._checkpointing.acquire(timeout=busy_ms / 1000):
            self._retry_at = time.monotonic() + self._interval
            return False
        try:
            busy, _, _ = self._pragma("PRAGMA wal_checkpoint(RESTART)", busy_ms=busy_ms)
        finally:
            self._checkpointing.release()
        if busy:
            # A reader kept an old snapshot open: holding the lock again at once would stall every
            # writer for nothing, so wait an interval before the next try.
            self._retry_at = time.monotonic() + self._interval
            return False
        self.restarts += 1
        self._hard_wait = self._interval
        return True

    def _pragma(self, sql: str, *, busy_ms: int | None = None) -> tuple[int, int, int]:
        raw = self._engine.raw_connection()
        try:
            # on the driver connection: outside a transaction, which a checkpoint cannot run in
            driver: Any = raw.driver_connection
            if busy_ms is None:
                return tuple(driver.execute(sql).fetchone())  # type: ignore[return-value]
            (usual_ms,) = driver.execute("PRAGMA busy_timeout").fetchone()
            driver.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            try:
                return tuple(driver.execute(sql).fetchone())  # type: ignore[return-value]
            finally:
                driver.execute(f"PRAGMA busy_timeout={int(usual_ms)}")  # the pooled connection's own
        finally:
            raw.close()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="truthset-checkpoint", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        done = 0
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            seen = self._commits
            if seen == done and not self._catch_up:
                continue
            catch_up, self._catch_up = self._catch_up, False
            try:
                self.checkpoint()  # without the lock: writers go on while most of the log is copied
                if self._may_restart(catch_up):
                    self._restart_log(locked=False)
                done = seen
            except sqlite3.Error:  # e.g. a full disk: the log keeps everything; try again later
                self._retry_at = time.monotonic() + self._interval
                log.exception("WAL checkpoint failed; retrying in %s s", self._interval)

    def _may_restart(self, catch_up: bool) -> bool:
        """Whether the thread should restart the log now that it copied what it could."""
        if self.wal_size() <= self._restart_bytes or self._long_reads:
            return False
        return catch_up or time.monotonic() >= self._retry_at

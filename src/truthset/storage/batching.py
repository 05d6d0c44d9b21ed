"""One writer thread that runs many short service calls in one SQLite transaction.

SQLite has one writer at a time. When 16 annotators lease and submit at once, 16 threads queue on
the write lock, each wakes the next, and each pays for its own BEGIN, COMMIT and connection
checkout: on a 2-core machine that hand-over cost more CPU than the queries. Instead, the
annotation loop's calls are handed to this thread, which takes every call waiting (up to
``max_batch``), runs them one after another inside ONE transaction, commits once, and answers
them. Each ``Database.write`` block inside a call is a SAVEPOINT, so a call that fails undoes only
its own block, exactly as its own transaction would have; the others commit.

Acknowledgements keep their meaning: a call whose blocks were all ``durable=False`` (a lease) is
answered right after the COMMIT; a call that wrote durably is answered by the sync thread once
the group commit's fdatasync covers that COMMIT. While the sync runs, the writer already runs the
next batch.

This is hand-written because it is the product's own core (the queue's throughput); no library
batches SQLAlchemy work for SQLite this way.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truthset.storage.engine import Database


@dataclass
class _Call:
    function: Callable[..., Any]
    args: tuple[Any, ...]
    future: Future = field(default_factory=Future)
    durable: bool = False  # set when one of its write blocks asked for durability
    result: Any = None
    error: BaseException | None = None

    def settle(self) -> None:
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.result)


class BatchWriter:
    """The writer thread (and its sync thread) of one SQLite :class:`Database`."""

    def __init__(self, db: Database, *, max_batch: int = 64) -> None:
        self._db = db
        self._max_batch = max_batch
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._synced: queue.SimpleQueue[tuple[int, list[_Call]] | None] = queue.SimpleQueue()
        self._local = threading.local()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self.batches = 0  # how many transactions ran (observability, tests)

    # --- the interface Database uses ---------------------------------------------------------

    def submit(self, function: Callable[..., Any], *args: Any) -> Future:
        """Run ``function(*args)`` on the writer thread; its result (or error) arrives in the future."""
        if self.current() is not None:  # a call that submits another: run it inline, not deadlock
            future: Future = Future()
            try:
                future.set_result(function(*args))
            except BaseException as exc:
                future.set_exception(exc)
            return future
        self._start()
        call = _Call(function, args)
        self._calls.put(call)
        return call.future

    def current(self) -> _Call | None:
        """The call this thread is running inside a batch, if any."""
        return getattr(self._local, "call", None)

    def close(self) -> None:
        with self._start_lock:
            if not self._threads:
                return
            self._calls.put(None)
            for thread in self._threads:
                thread.join()
            self._threads = []

    # --- the threads ---------------------------------------------------------------------------

    def _start(self) -> None:
        if self._threads:
            return
        with self._start_lock:
            if self._threads:
                return
            # daemon: a process that exits mid-batch never acknowledged that batch, and SQLite
            # rolls the unfinished transaction back on the next open
            self._threads = [
                threading.Thread(target=self._write_loop, name="truthset-writer", daemon=True),
                threading.Thread(target=self._sync_loop, name="truthset-sync", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def _write_loop(self) -> None:
        while True:
            first = self._calls.get()
            if first is None:
                self._synced.put(None)
                return
            calls = [first]
            while len(calls) < self._max_batch:
                try:
                    call = self._calls.get_nowait()
                except queue.Empty:
                    break
                if call is None:
                    self._calls.put(None)  # stop after this batch
                    break
                calls.append(call)
            self._run_batch(calls)

    def _run_batch(self, calls: list[_Call]) -> None:
        try:
            ticket = self._db.run_batch(lambda: self._run_calls(calls))
        except BaseException as exc:  # the COMMIT itself failed: nothing of this batch is stored
            for call in calls:
                call.error, call.result = exc, None
                call.settle()
            return
        self.batches += 1
        waiting = []
        for call in calls:
            if call.durable and call.error is None:
                waiting.append(call)
            else:
                call.settle()
        if waiting:
            self._synced.put((ticket, waiting))

    def _run_calls(self, calls: list[_Call]) -> None:
        for call in calls:
            self._local.call = call
            try:
                call.result = call.function(*call.args)
            except BaseException as exc:  # the caller gets it; the batch goes on
                call.error = exc
            finally:
                self._local.call = None

    def _sync_loop(self) -> None:
        while True:
            item = self._synced.get()
            if item is None:
                return
            ticket, calls = item
            try:
                self._db.wait_durable(ticket)
            except BaseException as exc:  # not known to be on disk: not acknowledged; keep syncing
                for call in calls:
                    call.error, call.result = exc, None
            for call in calls:
                call.settle()

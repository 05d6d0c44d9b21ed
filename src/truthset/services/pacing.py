"""Background work that yields to the annotation loop (see :class:`Pacer`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from truthset.storage import Database


class Pacer:
    """Keeps background work (an import, a refit) to about half of the server's time while the
    annotation loop is busy.

    An import is background work; an annotator waiting for the next task is not. On two cores an
    import running flat out (parsing holds the GIL, storing holds SQLite's writer) pushed the loop's
    p99 latency past 100 ms. So a step during which the loop submitted a call
    (:meth:`Database.hot_call_since`) is followed by a pause as long as the step, which frees the
    GIL, the core and the writer for the calls that follow. A step nobody's call competed with
    needs no pause: alone on the server (or between two bursts of the loop, as when the replay
    simulator runs a refit between batches of submits) background work runs at full speed. Under a
    busy loop, whose calls come every few milliseconds, every step of an import or a refit sees one.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def step(self, clock: Callable[[], float] = time.thread_time) -> Iterator[None]:
        """One step; ``clock`` measures its work: this thread's CPU time (so a wait for the
        client's next bytes costs nothing), or the wall clock for a step another thread does."""
        started, moment = clock(), time.monotonic()
        yield
        if self.db.hot_call_since(moment):
            time.sleep(max(0.0, clock() - started))

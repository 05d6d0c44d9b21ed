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
    p99 latency past 100 ms. So a step during which the loop had a call waiting or running
    (:meth:`Database.loop_busy_since`) is followed by a pause as long as the step, which frees the
    GIL, the core and the writer for those calls. A step the loop did not compete with needs no
    pause: alone on the server, or while the loop waits for the work (the replay simulator runs a
    refit between batches of submits), background work runs at full speed; before, any call in the
    last half second made every step pause, and half of such a refit's time was sleep. Calls in
    flight count, not only calls submitted during the step: a step that holds the GIL keeps the loop
    from submitting new ones (a huge JSON array's import, read in short CPU-bound steps, pushed the
    loop's p99 from about 80 to 120 ms when only new calls counted).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def loop_busy_lately(self, seconds: float = 1.0) -> bool:
        """Whether the annotation loop had a call in the last ``seconds``."""
        return self.db.loop_busy_since(time.monotonic() - seconds)

    @contextmanager
    def step(self, clock: Callable[[], float] = time.thread_time) -> Iterator[None]:
        """One step; ``clock`` measures its work: this thread's CPU time (so a wait for the
        client's next bytes costs nothing), or the wall clock for a step another thread does."""
        started, moment = clock(), time.monotonic()
        yield
        if self.db.loop_busy_since(moment):
            time.sleep(max(0.0, clock() - started))

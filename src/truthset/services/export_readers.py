"""An export's lines rendered by several connections that see one snapshot, each on its own core.

Why: the lines of a JSONL or Parquet export are rendered by the database (SQLite's JSON functions or
PostgreSQL's ``json_build_object`` over correlated subqueries, see :mod:`truthset.services.export`),
and one connection renders on one core: a PostgreSQL backend process, or a SQLite statement (the
driver releases the GIL while SQLite steps). Here the export's transactions share one snapshot
(:meth:`Database.snapshots`): the first cuts the tasks into keyset ranges of ``block`` ids, and
reader ``k`` renders blocks ``k``, ``k + READERS``, ... on its own connection. The blocks are handed
back in id order, each reader at most :data:`QUEUED` blocks ahead, so memory holds at most
``READERS * (QUEUED + 1)`` blocks however big the export, and the lines are exactly those one
connection reads from that snapshot. Each block is a step of a :class:`Pacer`: in a server that
also serves annotators (the embedded set-up runs jobs in-process), the readers yield to them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Select, func, select

from truthset.services.pacing import Pacer
from truthset.storage import tables as t

#: Connections rendering an export at once besides the one that cuts it into blocks (0: that one
#: renders every line itself).
READERS = 2
#: Blocks a reader may have rendered ahead of the one being written.
QUEUED = 2


def lines(conns: list[Connection], query: Select, block: int, pacer: Pacer) -> Iterator[str]:
    """The ``line`` column of ``query`` (unordered) in id order: ``conns`` share one snapshot
    (:meth:`Database.snapshots`), the first cuts the ranges and the others render them."""
    cuts = _cuts(conns[0], query, block)
    ranges = list(zip([None, *cuts], [*cuts, None], strict=True))
    readers = conns[1 : 1 + len(ranges)]
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=QUEUED) for _ in readers]
    threads = [
        threading.Thread(
            target=_read,
            args=(conn, query, ranges[k :: len(readers)], queues[k], stop, pacer),
            name=f"export-reader-{k}",
            daemon=True,
        )
        for k, conn in enumerate(readers)
    ]
    for thread in threads:
        thread.start()
    try:
        for number in range(len(ranges)):
            item = queues[number % len(readers)].get()
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()  # a consumer that stops early (a cancelled job) releases the readers
        for thread in threads:
            thread.join()


def _cuts(conn: Connection, query: Select, block: int) -> list[str]:
    """The id ending each full block of ``block`` matching tasks, in the snapshot of ``conn``
    (an index-only walk of the ids: a fraction of a second per million tasks)."""
    ids = t.tasks.c.id
    numbered = query.with_only_columns(ids, func.row_number().over(order_by=ids).label("n")).subquery()
    cut = select(numbered.c.id).where(numbered.c.n % block == 0).order_by(numbered.c.id)
    return [row[0] for row in conn.execute(cut)]


def _read(
    conn: Connection,
    query: Select,
    ranges: list[tuple[str | None, str | None]],
    out: queue.Queue[Any],
    stop: threading.Event,
    pacer: Pacer,
) -> None:
    """One reader: its ranges rendered on ``conn``, each block's lines put on ``out``."""
    ids = t.tasks.c.id
    try:
        for low, high in ranges:
            part = query if low is None else query.where(ids > low)
            part = part if high is None else part.where(ids <= high)
            with pacer.step():  # this thread's CPU time: SQLite renders in it
                rendered = [text for (text,) in conn.execute(part.order_by(ids))]
            if not _put(out, rendered, stop):
                return
    except BaseException as exc:  # handed to the consumer, which raises it
        _put(out, exc, stop)


def _put(out: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` on ``out`` unless the consumer has stopped; False if it has."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False

"""PostgreSQL: an export's lines rendered by several connections that share one snapshot.

Why: on PostgreSQL the lines of a JSONL or Parquet export are rendered by the database server
(``json_build_object`` over correlated subqueries, see :mod:`truthset.services.export`), and one
connection is one backend process, so one core: the exporting process itself mostly waits. Here the
export's transaction publishes its snapshot (``pg_export_snapshot()``), :data:`READERS` connections
adopt it (``SET TRANSACTION SNAPSHOT``), and reader ``k`` renders blocks ``k``, ``k + READERS``, ...
of the tasks cut into keyset ranges of ``block`` ids (the cuts are read in the same snapshot). The
blocks are handed back in id order, each reader at most :data:`QUEUED` blocks ahead, so memory holds
at most ``READERS * (QUEUED + 1)`` blocks however big the export, and the lines are exactly those one
connection reads from that snapshot.

SQLite has no way to share a snapshot between connections (``sqlite3_snapshot_open`` is not in
Python's driver), and a reader per range with its own snapshot could mix states; there one
connection renders every line.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Select, func, select

from truthset.storage import Database
from truthset.storage import tables as t

#: Connections rendering an export at once (each one backend process of the database server).
READERS = 2
#: Blocks a reader may have rendered ahead of the one being written.
QUEUED = 2
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")


def lines(db: Database, conn: Connection, query: Select, block: int, readers: int = READERS) -> Iterator[str]:
    """The ``line`` column of ``query`` (unordered; ``conn`` holds its REPEATABLE READ snapshot)
    in id order, rendered by ``readers`` connections sharing that snapshot."""
    snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
    if not _SNAPSHOT_ID.fullmatch(snapshot):  # it goes into a statement as a literal
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    cuts = _cuts(conn, query, block)
    ranges = list(zip([None, *cuts], [*cuts, None], strict=True))
    readers = max(1, min(readers, len(ranges)))
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=QUEUED) for _ in range(readers)]
    threads = [
        threading.Thread(
            target=_read,
            args=(db, snapshot, query, ranges[k::readers], queues[k], stop),
            name=f"export-reader-{k}",
            daemon=True,
        )
        for k in range(readers)
    ]
    for thread in threads:
        thread.start()
    try:
        for number in range(len(ranges)):
            item = queues[number % readers].get()
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
    db: Database,
    snapshot: str,
    query: Select,
    ranges: list[tuple[str | None, str | None]],
    out: queue.Queue[Any],
    stop: threading.Event,
) -> None:
    """One reader: its ranges rendered in the shared snapshot, each block's lines put on ``out``."""
    ids = t.tasks.c.id
    try:
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with db.engine.connect().execution_options(**options) as conn, conn.begin():
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # first in the transaction
            conn.exec_driver_sql("SET LOCAL jit = off")  # see export.export_lines
            for low, high in ranges:
                part = query if low is None else query.where(ids > low)
                part = part if high is None else part.where(ids <= high)
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

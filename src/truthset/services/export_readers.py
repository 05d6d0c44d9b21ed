"""An export's lines rendered by several connections that see one snapshot, each on its own core.

Why: the lines of a JSONL or Parquet export are rendered by the database (SQLite's JSON functions or
PostgreSQL's ``json_build_object`` over correlated subqueries, see :mod:`truthset.services.export`),
and one connection renders on one core: a PostgreSQL backend process, or a SQLite statement (the
driver releases the GIL while SQLite steps). Here the export's transactions share one snapshot
(:meth:`Database.snapshots`): the first cuts the tasks into keyset ranges of ``block`` ids (and
counts them), and reader ``k`` renders blocks ``k``, ``k + READERS``, ... on its own connection,
each block as one text that the database joins (:class:`~truthset.services.formats.LineBlock`:
per line, fetching and joining in Python cost the exporting thread more than the database's
rendering). The blocks are handed back in id order, each reader at most :data:`QUEUED` blocks
ahead, so memory holds at most ``READERS * (QUEUED + 1)`` blocks however big the export, and the
lines are exactly those one connection reads from that snapshot. Each block is a step of a
:class:`Pacer`: in a server that also serves annotators (the embedded set-up runs jobs
in-process), the readers yield to them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, LargeBinary, Select, cast, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from truthset.services.formats import LineBlock
from truthset.services.pacing import Pacer
from truthset.storage import tables as t

#: Connections rendering an export at once besides the one that cuts it into blocks (0: that one
#: renders every block itself).
READERS = 2
#: Blocks a reader may have rendered ahead of the one being written.
QUEUED = 2

Range = tuple[str | None, str | None]  # (after this id, up to this id); None: open


def plan(conn: Connection, query: Select, block: int) -> tuple[list[Range], int]:
    """The keyset ranges of ``block`` tasks each that ``query`` matches, and how many it matches,
    in the snapshot of ``conn`` (one walk of the ids: a fraction of a second per million tasks)."""
    ids = t.tasks.c.id
    numbered = query.with_only_columns(
        ids, func.row_number().over(order_by=ids).label("n"), func.count().over().label("total")
    ).subquery()
    marks = select(numbered.c.id, numbered.c.n, numbered.c.total).where(
        (numbered.c.n % block == 0) | (numbered.c.n == numbered.c.total)
    )
    rows = conn.execute(marks.order_by(numbered.c.id)).all()
    cuts = [row.id for row in rows if row.n % block == 0 and row.n < row.total]
    return list(zip([None, *cuts], [*cuts, None], strict=True)), (rows[0].total if rows else 0)


def blocks(conns: list[Connection], query: Select, ranges: list[Range], pacer: Pacer) -> Iterator[LineBlock]:
    """The ``line`` column of ``query`` over ``ranges``, a block a range, in order, rendered by
    ``conns`` (sharing one snapshot: :meth:`Database.snapshots`) at once, one thread each."""
    readers = conns[: len(ranges)]
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
            yield item
    finally:
        stop.set()  # a consumer that stops early (a cancelled job) releases the readers
        for thread in threads:
            thread.join()


def _block(query: Select, low: str | None, high: str | None, postgres: bool) -> Select:
    """One range's lines as one row: their count, and their text joined by newlines in id order
    (as UTF-8 bytes: the driver would decode text only for the writer to encode it again)."""
    ids = t.tasks.c.id
    part = query.add_columns(ids.label("task_order"))
    part = part if low is None else part.where(ids > low)
    part = part if high is None else part.where(ids <= high)
    lines = part.order_by(ids).subquery()  # SQLite: an aggregate keeps its subquery's order
    if postgres:
        joined = func.string_agg(lines.c.line, aggregate_order_by(literal("\n"), lines.c.task_order))
        text = func.convert_to(joined, "UTF8", type_=LargeBinary)
    else:
        text = cast(func.group_concat(lines.c.line, "\n"), LargeBinary)
    return select(func.count(), text)


def _read(
    conn: Connection,
    query: Select,
    ranges: list[Range],
    out: queue.Queue[Any],
    stop: threading.Event,
    pacer: Pacer,
) -> None:
    """One reader: its ranges rendered on ``conn``, each as one block put on ``out``."""
    postgres = conn.dialect.name == "postgresql"
    try:
        for low, high in ranges:
            with pacer.step():  # this thread's CPU time: SQLite renders in it
                count, text = conn.execute(_block(query, low, high, postgres)).one()
            if not _put(out, LineBlock(count, bytes(text or b"")), stop):
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

"""An export's lines rendered by several connections that see one snapshot, each on its own core.

Why: the lines of a JSONL or Parquet export are rendered by the database (SQLite's ``printf`` or
PostgreSQL's ``format`` over correlated subqueries, see :mod:`truthset.services.export`),
and one connection renders on one core: a PostgreSQL backend process, or a SQLite statement (the
driver releases the GIL while SQLite steps). Here the export's transactions share one snapshot
(:meth:`Database.snapshots`): the first cuts the tasks into keyset ranges of ``block`` ids (and
counts them), and reader ``k`` renders blocks ``k``, ``k + READERS``, ... on its own connection,
each block as one text (:class:`~truthset.services.formats.LineBlock`: handed on line by line,
the lines cost the exporting thread more than their rendering cost SQLite). The blocks are handed
back in id order, each reader at most :data:`QUEUED` blocks ahead, so memory holds at most
``READERS * (QUEUED + 1)`` blocks however big the export, and the lines are exactly those one
connection reads from that snapshot. Each block is a step of a :class:`Pacer`: in a server that
also serves annotators (the embedded set-up runs jobs in-process), the readers yield to them. On
PostgreSQL, while the loop is busy, the readers also take turns (one block at a time, pause
included): two backends rendering at once, even paced, took a core from the annotators' backends
and the loop's p99 submit rose from 66-76 ms alone to 125-148 ms; in turns 97-112 ms, the export
about a third slower then (SQLite's readers keep both cores: its loop's p99 submit stayed at 59-82 ms with both).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

from sqlalchemy import Connection, LargeBinary, Select, cast, func, select

from truthset.services.formats import LineBlock
from truthset.services.pacing import Pacer
from truthset.storage import tables as t

#: Connections rendering an export at once besides the one that cuts it into blocks (0: that one
#: renders every block itself).
READERS = 2
#: Blocks a reader may have rendered ahead of the one being written.
QUEUED = 2

Range = tuple[str | None, str | None]  # (after this id, up to this id); None: open
#: makes one range's block on one reader: (reader, low, high) -> block
Render = Callable[[Any, str | None, str | None], LineBlock]


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


def blocks(
    readers: Sequence[Any],
    render: Render,
    ranges: list[Range],
    pacer: Pacer,
    *,
    postgres: bool,
    read: Callable[[LineBlock], Any] | None = None,
) -> Iterator[LineBlock]:
    """The blocks ``render`` makes of ``ranges``, a block a range, in order, made by ``readers``
    (connections sharing one snapshot: :meth:`Database.snapshots`) at once, one thread each; with
    ``read``, each block is also read by the thread that rendered it (:attr:`LineBlock.parsed`,
    the text dropped). ``postgres``: the readers are PostgreSQL connections (see :func:`_read`)."""
    readers = readers[: len(ranges)]
    stop = threading.Event()
    turns = threading.Lock() if postgres else None
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=QUEUED) for _ in readers]
    threads = [
        threading.Thread(
            target=_read,
            args=(reader, render, ranges[k :: len(readers)], queues[k], stop, pacer, postgres, turns, read),
            name=f"export-reader-{k}",
            daemon=True,
        )
        for k, reader in enumerate(readers)
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


def ranged(query: Select, low: str | None, high: str | None) -> Select:
    """``query`` (over ``tasks``) limited to the ids in ``(low, high]``, in id order."""
    ids = t.tasks.c.id
    part = query if low is None else query.where(ids > low)
    return (part if high is None else part.where(ids <= high)).order_by(ids)


def render_lines(conn: Connection, low: str | None, high: str | None, *, query: Select) -> LineBlock:
    """One range's ``line`` column of ``query`` as one block. SQLite joins the lines itself (in C,
    without the GIL), and hands over UTF-8 bytes (the driver would decode text only for the writer
    to encode it again). PostgreSQL's ``string_agg`` cost its backend more than the join here costs
    this thread (200,000 tasks: 3.9 s against 3.2 s), so there the lines are fetched and joined."""
    if conn.dialect.name == "postgresql":
        lines = [line for (line,) in conn.execute(ranged(query, low, high))]
        return LineBlock(len(lines), "\n".join(lines).encode())
    ordered = ranged(query, low, high).subquery()  # an aggregate reads its subquery in that order
    joined = cast(func.group_concat(ordered.c.line, "\n"), LargeBinary)
    count, text = conn.execute(select(func.count(), joined)).one()
    return LineBlock(count, text or b"")


def _read(
    reader: Any,
    render: Render,
    ranges: list[Range],
    out: queue.Queue[Any],
    stop: threading.Event,
    pacer: Pacer,
    postgres: bool,
    turns: threading.Lock | None = None,
    read: Callable[[LineBlock], Any] | None = None,
) -> None:
    """One reader: its ranges rendered on ``reader`` (and read by ``read``), each as one block put
    on ``out``; with ``turns``, one reader's block at a time while the annotation loop is busy."""
    # SQLite renders in this thread, so its CPU time is the step's work; a PostgreSQL backend
    # renders while this thread waits for the rows, so there the wall clock measures the work
    clock = time.perf_counter if postgres else time.thread_time
    try:
        for low, high in ranges:
            in_turn = turns if turns is not None and pacer.loop_busy_lately() else nullcontext()
            with in_turn, pacer.step(clock):
                block = render(reader, low, high)
            if read is not None and block.count:  # this thread's own work, paced like the rendering
                with pacer.step(time.thread_time):
                    block = block._replace(text=b"", parsed=read(block))
            if not _put(out, block, stop):
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

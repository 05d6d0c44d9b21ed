"""Export: tasks with their results and full provenance, read from one snapshot of the database.

One read transaction (REPEATABLE READ on PostgreSQL) streams the tasks in blocks of
:data:`EXPORT_BLOCK`; for each block, one query reads the block's responses (with their workers) and
one its reviews, from the same snapshot: never one query per task. So an export that runs while
annotators complete tasks shows the project as it was when the export began, never a mix of states,
and memory holds one block at a time however big the project.

The rows (one dict per task, see docs/formats.md) go to a writer of :mod:`truthset.services.formats`:
synchronously into a spooled temporary file (``GET /projects/{id}/export``), or as an ``export`` job
into a file of the data directory (:mod:`truthset.services.export_jobs`).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import orjson
from sqlalchemy import JSON, Connection, DateTime, Select, Text, cast, func, literal, literal_column, select

from truthset.domain import Principal, ReviewStatus, TaskStatus
from truthset.errors import InvalidInput, full_disk_is_storage_full
from truthset.services import export_readers, formats
from truthset.services.formats._sql import ISO_FORMAT_PG, RESPONSES_OF_TASK, Dialect
from truthset.services.pacing import Pacer
from truthset.services.policy import Action, require
from truthset.services.projects import get_project
from truthset.services.tasks import SPOOL_DIRECTORY, TaskFilter, task_query
from truthset.storage import Database
from truthset.storage import tables as t

#: The formats an export can be written in (the registry's: see :mod:`truthset.services.formats`).
FORMATS = tuple(formats.names())

EXPORT_BLOCK = 2000  # tasks fetched at a time (their responses and reviews in one query each)
_COLUMNS = (
    "id", "unique_id", "batch_id", "status", "data", "metadata", "result", "confidence",
    "completed_at", "updated_at", "review_status",
)  # fmt: skip


def check_format(name: str) -> str:
    """The export format ``name``, or a 422 naming the formats there are (never silently JSONL)."""
    formats.get(name)
    return formats.canonical(name)


def prepare(
    db: Database,
    principal: Principal,
    project_id: str,
    format_name: str,
    questions: Sequence[str] | None = None,
) -> tuple[dict[str, Any], formats.Writer]:
    """The project and the writer of ``format_name`` for an export by ``principal``: a 403 without
    the right to read tasks, a 404 for another organization's project, a 422 for an unknown format
    or one the writer cannot write for this project (its ``check`` says why).

    ``questions`` (names) narrows the project the writer sees to those questions (see
    :func:`only_questions`): a YOLO dataset of one kind from a spec with boxes and polygons, a
    spreadsheet of two questions out of ten.
    """
    require(principal, Action.READ_TASKS)
    writer = formats.get(format_name)
    project = get_project(db, principal, project_id)
    if questions is not None:
        project = only_questions(project, writer, format_name, questions)
    return project, formats.check_format(format_name, project) or writer


def only_questions(
    project: dict[str, Any], writer: formats.Writer, format_name: str, questions: Sequence[str]
) -> dict[str, Any]:
    """``project`` with only the named questions in its spec, as the writers read it (the stored
    project is untouched). A 422 for a name the spec does not have, and for a writer that writes each
    task whole (JSONL: the result and every response, whatever the spec says)."""
    if getattr(writer, "writes_whole_tasks", False):
        raise InvalidInput(
            f"questions: the {formats.canonical(format_name)} format writes each task whole, every question "
            "and every response; leave questions out, or pick the questions in another format "
            "(csv, parquet, coco, yolo, voc, conll, spacy, preferences, label_studio)",
            details={"field": "questions", "format": formats.canonical(format_name)},
        )
    spec_questions = project["spec"]["questions"]
    known = [q["name"] for q in spec_questions]
    unknown = [name for name in questions if name not in known]
    if not questions:
        raise InvalidInput(
            f"questions: name at least one question (or leave questions out); its questions are: {', '.join(known)}",
            details={"field": "questions", "questions": known},
        )
    if unknown:
        named = ", ".join(repr(name) for name in unknown)
        raise InvalidInput(
            f"questions: {named} {'is' if len(unknown) == 1 else 'are'} not a question of this project; "
            f"its questions are: {', '.join(known)}",
            details={"field": "questions", "questions": known},
        )
    chosen = set(questions)
    spec = {**project["spec"], "questions": [q for q in spec_questions if q["name"] in chosen]}
    return {**project, "spec": spec}


@dataclass(frozen=True)
class ExportFilter:
    """Which tasks an export holds. ``status`` None: every status.

    ``updated_since``: only tasks changed at or after this time: the ``cursor`` a previous export
    job returned (see :func:`truthset.services.export_jobs.cursor_for`), for a delta export.
    """

    status: TaskStatus | None = TaskStatus.COMPLETED
    batch_id: str | None = None
    min_confidence: float | None = None
    review_status: ReviewStatus | None = None
    updated_since: datetime | None = None

    def task_filter(self, project_id: str) -> TaskFilter:
        return TaskFilter(
            project_id=project_id,
            status=self.status,
            batch_id=self.batch_id,
            min_confidence=self.min_confidence,
            review_status=self.review_status,
            updated_after=self.updated_since,
        )


def export_rows(
    db: Database,
    principal: Principal,
    project_id: str,
    *,
    status: TaskStatus | None = TaskStatus.COMPLETED,
    batch_id: str | None = None,
    min_confidence: float | None = None,
    filters: ExportFilter | None = None,
    on_total: Callable[[int], Any] | None = None,
    raw_json: bool = False,
) -> Iterator[dict[str, Any]]:
    """One dict per task: ids, data, metadata, status, the result, its confidence, and provenance
    (``responses`` with their workers and reviews, ``reviews``); the shape is in docs/formats.md.

    ``filters`` (else ``status``, ``batch_id``, ``min_confidence``) choose the tasks. ``on_total``,
    if given, is called with the number of matching tasks (counted in the snapshot) before the first
    row. ``raw_json``: ``data``, ``metadata`` and each response's ``answer`` are the stored JSON
    text as :class:`orjson.Fragment` (a writer that only re-serialises them, JSONL, skips parsing
    them). The permission and existence checks run at the first ``next()``; every row comes from
    the snapshot taken by the first read, whatever is committed while the caller iterates.
    """
    require(principal, Action.READ_TASKS)
    get_project(db, principal, project_id)
    chosen = filters or ExportFilter(status=status, batch_id=batch_id, min_confidence=min_confidence)
    postgres = not db.is_sqlite
    columns = (_as_text(t.tasks.c[name], postgres) for name in _COLUMNS)
    query = task_query(principal, chosen.task_filter(project_id), *columns)
    decode = orjson.Fragment if raw_json else orjson.loads
    with db.snapshot(lasting=True) as conn:
        if on_total is not None:
            on_total(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())
        tasks = conn.execution_options(yield_per=EXPORT_BLOCK).execute(query.order_by(t.tasks.c.id))
        workers: dict[str, tuple[str, str]] = {}
        for block in tasks.partitions():
            yield from _block_rows(conn, principal.organization_id, block, workers, decode)


def export_line_blocks(
    db: Database,
    principal: Principal,
    project_id: str,
    *,
    filters: ExportFilter | None = None,
    on_total: Callable[[int], Any] | None = None,
    lines: formats.LineSql | None = None,
) -> Iterator[formats.LineBlock]:
    """The rows of :func:`export_rows` as JSON text, one line per task, in blocks of
    :data:`EXPORT_BLOCK` tasks, rendered by the database itself (SQLite's ``printf``, PostgreSQL's
    ``format``: see ``_line_sql``).

    Why: the JSONL export of a million tasks with their responses spent most of its time building
    Python dicts only to serialise them again. Here the database writes each line in C, reading a
    task's responses (with their workers) and reviews through correlated subqueries on their task
    indexes, and a block's lines are joined into one text (by SQLite itself; on PostgreSQL by the
    reader thread), which Python only passes on; same snapshot, filters and checks as
    :func:`export_rows`, and a test proves both give the same rows. The blocks are
    rendered by :data:`export_readers.READERS` connections at once (see
    :mod:`truthset.services.export_readers`). ``lines``: another rendering of each task, e.g. the
    Parquet writer's (:class:`~truthset.services.formats.LineSql`).
    """
    query = line_query(db, principal, project_id, filters=filters, lines=lines)
    with db.snapshots(1 + export_readers.READERS) as conns:
        if not db.is_sqlite:
            for conn in conns:
                # The correlated subqueries' cost estimate is far above jit_above_cost, and compiling
                # the line expression (about 1.5 s) cost more than rendering 100,000 lines without it.
                conn.exec_driver_sql("SET LOCAL jit = off")
        ranges, total = export_readers.plan(conns[0], query, EXPORT_BLOCK)
        if on_total is not None:
            on_total(total)
        render = functools.partial(export_readers.render_lines, query=query)
        read = lines.read if lines is not None else None
        readers = conns[1:] or conns
        yield from export_readers.blocks(readers, render, ranges, Pacer(db), postgres=not db.is_sqlite, read=read)


def line_query(
    db: Database,
    principal: Principal,
    project_id: str,
    *,
    filters: ExportFilter | None = None,
    lines: formats.LineSql | None = None,
) -> Select:
    """The query of :func:`export_line_blocks`: one ``line`` column per chosen task (checked here)."""
    require(principal, Action.READ_TASKS)
    get_project(db, principal, project_id)
    chosen = filters or ExportFilter()
    sql = lines.line if lines is not None else (_LINE_PG if not db.is_sqlite else _LINE_SQLITE)
    return task_query(principal, chosen.task_filter(project_id), literal_column(sql).label("line"))


def export_lines(
    db: Database,
    principal: Principal,
    project_id: str,
    *,
    filters: ExportFilter | None = None,
    on_total: Callable[[int], Any] | None = None,
) -> Iterator[str]:
    """The lines of :func:`export_line_blocks` one by one (JSON text, no newline): for a caller
    that wants the rows one at a time; writers take the blocks."""
    for block in export_line_blocks(db, principal, project_id, filters=filters, on_total=on_total):
        if block.count:
            yield from block.text.decode().split("\n")


# Each line is put together as text, by one printf (SQLite) or format (PostgreSQL) call per object.
# Why not SQLite's json_object: SQLite 3.40 keeps a value JSON only when it comes straight from a
# JSON function, so every stored JSON column and every subquery's array would have to be parsed
# again by json() (a third of the export's time). Why not PostgreSQL's json_build_object: it cost
# the database 2.3 s of CPU per 100,000 tasks (3 responses each) against 1.6 s for format(). Here
# the stored JSON (data, metadata, result, answers: valid JSON, written by truthset) is copied as it
# is, texts people typed are quoted by the database's JSON quoting, and ids, statuses, kinds and
# times (ours, with nothing to escape) are quoted as they are. A test checks every line against the
# rows export_rows makes.


def _line_sql(d: Dialect) -> str:
    """SQL (a column of ``FROM tasks``) giving each task's JSONL line (docs/formats.md)."""
    response = d.response(
        d.json("r.answer"),
        ("scores", d.json("r.scores")),  # a model's prediction (docs/models.md)
        ("prefill", d.json("r.prefill")),  # a pre-filled answer: the prediction shown, kept or not
    )
    return d.object(
        ("task_id", d.own("tasks.id")),
        ("unique_id", d.text("tasks.unique_id")),
        ("batch_id", d.ours("tasks.batch_id")),
        ("status", d.own("tasks.status")),
        ("data", d.json("tasks.data")),
        ("metadata", d.json("tasks.metadata")),
        ("answer", d.json(d.get("tasks.result", "answer"))),
        ("confidence", d.number("tasks.confidence")),
        ("result", d.json("tasks.result")),
        ("completed_at", d.time("tasks.completed_at")),
        ("updated_at", d.own_time("tasks.updated_at")),
        ("review_status", d.ours("tasks.review_status")),
        ("responses", d.array(response, RESPONSES_OF_TASK, "r.id")),
        ("reviews", d.reviews()),
    )


_LINE_SQLITE = _line_sql(Dialect(postgres=False))
_LINE_PG = _line_sql(Dialect(postgres=True))


def rows_for(
    writer: formats.Writer,
    db: Database,
    principal: Principal,
    project_id: str,
    filters: ExportFilter,
    on_total: Callable[[int], Any] | None = None,
) -> Iterator[Any]:
    """The export's rows in the form ``writer`` takes best: blocks of the database's JSON lines
    (:class:`~truthset.services.formats.LineBlock`) for a writer with ``json_lines`` or
    ``line_sql``, else dicts (with JSON fragments for a writer with ``raw_json``)."""
    if getattr(writer, "json_lines", False):
        return export_line_blocks(db, principal, project_id, filters=filters, on_total=on_total)
    if getattr(writer, "arrow_on_postgres", False) and not db.is_sqlite:
        from truthset.services import export_arrow  # here: it loads pyarrow and ADBC's driver

        project = get_project(db, principal, project_id)
        layout = writer.layout(project)  # type: ignore[attr-defined]
        task_filter = filters.task_filter(project_id)
        return export_arrow.blocks(db, principal, project_id, task_filter, layout, EXPORT_BLOCK, on_total)
    line_sql = getattr(writer, "line_sql", None)
    if line_sql is not None:
        project = get_project(db, principal, project_id)
        lines = line_sql(project, not db.is_sqlite)
        return export_line_blocks(db, principal, project_id, filters=filters, on_total=on_total, lines=lines)
    raw = getattr(writer, "raw_json", False)
    return export_rows(db, principal, project_id, filters=filters, on_total=on_total, raw_json=raw)


def _as_text(column: Any, postgres: bool) -> Any:
    """JSON as the text the database holds (parsed here only where a writer needs it: PostgreSQL's
    driver would parse it, and SQLAlchemy would parse SQLite's time text, for every row), and times
    as the ISO 8601 text of the export, made by the database."""
    if isinstance(column.type, DateTime):
        return _iso_sql(column, postgres).label(column.name)
    if isinstance(column.type, JSON):
        return cast(column, Text).label(column.name)
    return column


def _iso_sql(column: Any, postgres: bool) -> Any:
    """A stored time (naive UTC) as ISO 8601 text with six decimals and a Z, e.g. 2026-11-30T12:00:00.000000Z."""
    if postgres:
        return func.to_char(column, ISO_FORMAT_PG)
    return func.replace(column, " ", "T").op("||")(literal("Z"))  # SQLAlchemy stores 2026-11-30 12:00:00.000000


def _block_rows(
    conn: Connection,
    organization_id: str,
    block: Sequence[Any],
    workers: dict[str, tuple[str, str]],
    decode: Callable[[str], Any],
) -> Iterator[dict[str, Any]]:
    ids = [task[0] for task in block]
    reviewed = [task[0] for task in block if task[10] is not None]
    responses = _responses(conn, organization_id, ids, workers, decode)
    reviews = _reviews(conn, organization_id, reviewed) if reviewed else {}
    for task_id, unique_id, batch, status, data, metadata, result, confidence, completed, updated, review in block:
        task_responses = responses.get(task_id, [])
        if review is not None:
            _with_reviews(task_responses, reviews.get(task_id, []))
        parsed = orjson.loads(result) if result is not None else None
        yield {
            "task_id": task_id,
            "unique_id": unique_id,
            "batch_id": batch,
            "status": status,
            "data": decode(data),
            "metadata": decode(metadata),
            "answer": parsed.get("answer") if parsed else None,
            "confidence": confidence,
            "result": parsed,
            "completed_at": completed,
            "updated_at": updated,
            "review_status": review,
            "responses": task_responses,
            "reviews": reviews.get(task_id, []) if review is not None else [],
        }


def _responses(
    conn: Connection,
    organization_id: str,
    task_ids: list[str],
    workers: dict[str, tuple[str, str]],
    decode: Callable[[str], Any],
) -> dict[str, list[dict[str, Any]]]:
    """The responses to ``task_ids`` in submission order, by task: one query for the block."""
    r = t.responses.c
    columns = (r.task_id, r.id, r.worker_id, r.answer, r.created_at, r.duration_ms, r.scores, r.prefill)
    query = (
        select(*(_as_text(column, conn.dialect.name == "postgresql") for column in columns))
        .where(r.organization_id == organization_id, r.task_id.in_(task_ids))
        .order_by(r.task_id, r.id)
    )
    by_task: dict[str, list[dict[str, Any]]] = {}
    rows = conn.execute(query).all()
    _learn_workers(conn, organization_id, {row[2] for row in rows}, workers)
    unknown = (None, None)
    for task_id, response_id, worker_id, answer, created_at, duration_ms, scores, prefill in rows:
        kind, name = workers.get(worker_id, unknown)
        response = {
            "id": response_id,
            "worker_id": worker_id,
            "worker_kind": kind,
            "worker_name": name,
            "answer": decode(answer),
            "created_at": created_at,
            "duration_ms": duration_ms,
            "scores": orjson.loads(scores) if scores is not None else None,
            "prefill": orjson.loads(prefill) if prefill is not None else None,
            "review": None,
        }
        if task_id in by_task:
            by_task[task_id].append(response)
        else:
            by_task[task_id] = [response]
    return by_task


def _learn_workers(conn: Connection, organization_id: str, seen: set[str], workers: dict[str, tuple[str, str]]) -> None:
    """Kind and name of the workers not met before in this export (a project has few workers)."""
    new = [worker_id for worker_id in seen if worker_id not in workers]
    if not new:
        return
    w = t.workers.c
    query = select(w.id, w.kind, w.name).where(w.organization_id == organization_id, w.id.in_(new))
    for worker_id, kind, name in conn.execute(query):
        workers[worker_id] = (kind, name)


def _reviews(conn: Connection, organization_id: str, task_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The reviews of ``task_ids`` in time order, by task: one query for the block's reviewed tasks."""
    v = t.reviews.c
    pg = conn.dialect.name == "postgresql"
    query = (
        select(v.task_id, v.id, v.reviewer_id, v.verdict, v.reason, v.response_id, _iso_sql(v.created_at, pg))
        .where(v.organization_id == organization_id, v.task_id.in_(task_ids))
        .order_by(v.task_id, v.id)
    )
    by_task: dict[str, list[dict[str, Any]]] = {}
    for task_id, review_id, reviewer_id, verdict, reason, response_id, created_at in conn.execute(query):
        by_task.setdefault(task_id, []).append(
            {
                "id": review_id,
                "reviewer_id": reviewer_id,
                "verdict": verdict,
                "reason": reason,
                "response_id": response_id,
                "created_at": created_at,
            }
        )
    return by_task


def _with_reviews(responses: list[dict[str, Any]], reviews: list[dict[str, Any]]) -> None:
    """Each response with ``review``: the review that first judged a result it was part of.

    A fix's own response has that fix; any other response, the task's first review made after it
    (ids sort by creation time); None while no review came after it.
    """
    for response in responses:
        review = next((v for v in reviews if v["response_id"] == response["id"]), None) or next(
            (v for v in reviews if v["id"] > response["id"]), None
        )
        response["review"] = None if review is None else {k: review[k] for k in ("id", "verdict", "reviewer_id")}


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    """Write ``rows`` to ``out`` as JSON lines, a block of lines per write; returns the count."""
    from truthset.services.formats.jsonl import write_lines

    return write_lines(rows, out)


def spool(rows: Iterable[dict[str, Any]], writer: formats.Writer, project: dict[str, Any], **options: Any) -> IO[bytes]:
    """``rows`` written by ``writer`` to a temporary file, rewound; the caller closes (deletes) it.
    ``options`` go to ``writer.write`` (the media store of the image formats: see
    :func:`truthset.services.formats.images.write_options`).

    The snapshot is read at the database's pace and sent from the file at the client's: a slow
    client never holds the read transaction open (on SQLite an open reader keeps the WAL from being
    restarted), nor the whole export in memory. Errors (a permission, a missing project, a full
    disk) are raised here, before anything is sent.
    """
    file = tempfile.TemporaryFile()  # noqa: SIM115 (returned open: the caller sends, then closes it)
    try:
        with full_disk_is_storage_full(SPOOL_DIRECTORY):
            writer.write(project, iter(rows), file, **options)
            file.flush()
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return file


def spool_jsonl(rows: Iterable[dict[str, Any]]) -> IO[bytes]:
    """``rows`` spooled as JSONL (see :func:`spool`)."""
    return spool(rows, formats.get("jsonl"), {})

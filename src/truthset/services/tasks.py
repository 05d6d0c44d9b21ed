"""Tasks: create one, import many (streamed), list with filters and keyset pages, cancel."""

from __future__ import annotations

import functools
import hashlib
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any, Literal

import orjson
import pydantic_core
from pydantic import ValidationError
from sqlalchemy import Connection, Select
from sqlalchemy.exc import IntegrityError

from truthset.domain import BatchStatus, Principal, ReviewStatus, TaskStatus
from truthset.errors import Conflict, InvalidInput, TooLarge, full_disk_is_storage_full
from truthset.questions import CompiledSpec
from truthset.schemas import MAX_JSON_DEPTH, TaskCreate, check_json
from truthset.services import lifecycle, task_browse
from truthset.services.pacing import Pacer
from truthset.services.policy import Action, require
from truthset.services.projects import (
    compiled_spec,
    complete_batch_if_done,
    load_batch,
    load_project,
    load_task,
    mark_batch_completed_if_done,
    project_overlap,
    require_active,
)
from truthset.services.task_stream import Bad, Item, TooLong, task_from_columns
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

#: Where imports (and exports) spool, as a full disk there is reported.
SPOOL_DIRECTORY = "the temporary directory (TMPDIR)"
IMPORT_CHUNK = 2000  # rows per transaction: short enough for the annotation loop to take turns
CHUNK_BYTES = 1 << 20  # and about this much of the body at most: two chunks are in memory at once
MAX_REPORTED_ERRORS = 100
OnError = Literal["reject", "skip"]
#: ``progress(done, total)``: how far an import is (see :func:`import_tasks`)
Progress = Callable[[int, int | None], None]


def _batch_for_tasks(conn: Connection, principal: Principal, project_id: str, batch_id: str | None) -> dict | None:
    if batch_id is None:
        return None
    batch = load_batch(conn, principal, batch_id)
    if batch["project_id"] != project_id:
        raise InvalidInput(f"batch {batch_id} belongs to another project", details={"field": "batch_id"})
    if batch["status"] != str(BatchStatus.OPEN) and batch["status"] != str(BatchStatus.FINALIZED):
        raise Conflict(f"cannot add tasks to a {batch['status']} batch", details={"field": "batch_id"})
    return batch


def _task_row(
    principal: Principal, project: dict, batch: dict | None, task: TaskCreate, task_id: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": task_id,
        "organization_id": principal.organization_id,
        "project_id": project["id"],
        "batch_id": batch["id"] if batch else None,
        "unique_id": task.unique_id,
        "data": task.data,
        "metadata": task.metadata,
        "priority": task.priority,
        "status": _status_for(batch),
        "overlap": task.overlap or project_overlap(project),
        "response_count": 0,
        "lease_count": 0,
        "result": None,
        "confidence": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }


def _check_data(spec: CompiledSpec, task: TaskCreate, max_task_bytes: int) -> None:
    try:
        spec.validate_data(task.data)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"field": "data"}) from None
    if len(orjson.dumps(task.data)) + len(orjson.dumps(task.metadata)) > max_task_bytes:
        raise TooLarge(f"task data and metadata exceed {max_task_bytes} bytes")


def _missing_media(conn: Connection, organization_id: str, media_ids: Iterable[str], *, hold: bool = False) -> set[str]:
    """Those of ``media_ids`` the organization has no uploaded image with.

    ``hold``, in the transaction that stores the tasks naming them: the rows found stay locked
    (``FOR SHARE`` on PostgreSQL) until its commit, so a prune (services/media_pruning.py, which
    locks them ``FOR UPDATE`` before it reads the newest tasks) either waits for this commit and
    then sees the task, or deletes first and this check finds them missing. SQLite's writers take
    turns, so there the check inside the write is enough.
    """
    wanted = set(media_ids)
    if not wanted:
        return set()
    query = repo.scoped(t.media, organization_id, t.media.c.id).where(t.media.c.id.in_(sorted(wanted)))
    if hold:
        query = query.with_for_update(read=True)
    return wanted - set(conn.execute(query).scalars())


def _missing_media_message(media_id: str, field: str) -> str:
    return (
        f"data.{field}: no uploaded image media:{media_id} in this organization "
        "(upload it first with POST /api/v1/media; an image no task names may have been pruned)"
    )


def _require_media(conn: Connection, organization_id: str, named: dict[str, str]) -> None:
    """A task may only name images the organization has: otherwise a 422 naming the field (checked,
    and the images held, in the transaction that stores the task)."""
    missing = sorted(_missing_media(conn, organization_id, named, hold=True))
    if missing:
        raise InvalidInput(_missing_media_message(missing[0], named[missing[0]]), details={"field": "data"})


def create_task(
    db: Database,
    principal: Principal,
    project_id: str,
    task: TaskCreate,
    *,
    max_task_bytes: int = 1 << 20,
    scale: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create one task. A repeated ``unique_id`` returns the existing task (``created`` false).

    ``scale``: the task's record in the Scale-compatible API (compat/scale), stored with the row.
    """
    try:
        with db.write() as conn:
            project = load_project(conn, principal, project_id, hold_spec=True)
            require(principal, Action.MANAGE_TASKS)
            require_active(project)
            if task.unique_id is not None and (existing := _task_by_unique_id(conn, principal, task.unique_id)):
                return _existing_in(project_id, existing)
            spec = compiled_spec(project)
            _check_data(spec, task, max_task_bytes)
            if spec.has_images:
                _require_media(conn, principal.organization_id, spec.media_named(task.data))
            batch = _batch_for_tasks(conn, principal, project_id, task.batch_id)
            row = _task_row(principal, project, batch, task, new_ids(1)[0], utcnow())
            if scale is not None:
                row["scale"] = scale
            repo.add(conn, t.tasks, row)
            if row["status"] == str(TaskStatus.PENDING):
                repo.bump_queue_epoch(conn, project_id)  # it may rank before tasks workers passed over
            return {**row, "created": True}
    except IntegrityError:
        # A concurrent create with the same unique_id committed first (PostgreSQL): that is the task.
        if task.unique_id is None:
            raise
        with db.read() as conn:
            existing = _task_by_unique_id(conn, principal, task.unique_id)
        if existing is None:
            raise
        return _existing_in(project_id, existing)


def _existing_in(project_id: str, existing: dict[str, Any]) -> dict[str, Any]:
    """The task a repeated ``unique_id`` names, as the result of creating it again in ``project_id``;
    a Conflict if it belongs to another project (the create must not answer with a task of another
    project as if it were in this one)."""
    if existing["project_id"] != project_id:
        raise Conflict(
            _elsewhere_message(existing["unique_id"], existing["project_id"]),
            details={"field": "unique_id", "task_id": existing["id"], "project_id": existing["project_id"]},
        )
    return {**existing, "created": False}


def _elsewhere_message(unique_id: str, project_id: str) -> str:
    return (
        f"unique_id {unique_id!r} is already used by a task of another project ({project_id}); "
        "a unique_id names one task across the organization's projects"
    )


def _task_by_unique_id(conn: Connection, principal: Principal, unique_id: str) -> dict[str, Any] | None:
    found = repo.existing_unique_ids(conn, principal.organization_id, [unique_id])
    return repo.get(conn, t.tasks, principal.organization_id, found[unique_id]) if found else None


@dataclass
class ImportReport:
    received: int = 0
    created: int = 0
    existing: int = 0
    invalid: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    stored: bool = True
    checked: int = 0

    def error(self, line: int, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "message": message})

    @property
    def refused(self) -> bool:
        """Bad lines and nothing stored (a rejected import, or a skipping one whose every line was bad)."""
        return self.invalid > 0 and not (self.stored and self.created + self.existing)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def refusal(self) -> InvalidInput:
        """The 422 of a refused import: its message counts the bad lines, its details hold the report."""
        first = self.errors[0] if self.errors else {"line": 0, "message": "invalid"}
        message = (
            f"{self.invalid} invalid line{'s' if self.invalid != 1 else ''} (line {first['line']}: "
            f"{first['message']}); nothing was stored"
        )
        errors = [{"field": f"line {e['line']}", "type": "invalid", **e} for e in self.errors]
        return InvalidInput(message, details={"field": "body", "errors": errors, "report": self.as_dict()})


_TASK_KEYS = frozenset(TaskCreate.model_fields)
_PRIORITY = (-1_000_000, 1_000_000)  # TaskCreate.priority's bounds
_BULK_COLUMNS = (
    "id", "organization_id", "project_id", "batch_id", "unique_id", "data", "metadata", "priority", "status",
    "overlap", "response_count", "lease_count", "created_at", "updated_at", "content_hash",
)  # fmt: skip
# A run of 19 digits may be an integer beyond 64 bits, which orjson would read as a float: such a
# line is parsed by pydantic's parser instead, which keeps it exact so that it is refused by name.
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19

#: A task's data, unique_id, metadata, priority, overlap and batch_id, as TaskCreate would hold them.
_Task = tuple[dict, str | None, dict, int, int | None, str | None]
#: One valid task as spooled between the phases: unique_id, data and metadata as JSON text, priority,
#: overlap, and the content hash that makes a task without a unique_id idempotent (None with one).
_Row = tuple[str | None, str, str, int, int | None, str | None]


def _has_long_digit_run(line: bytes) -> bool:
    return _LONG_DIGIT_RUN in line.translate(_DIGITS_AS_ZEROS)  # two passes in C; a regex took 2 us a line


def _plainly_storable(line: bytes) -> bool:
    """Whether a JSONL line's values certainly pass :func:`check_json`, judged from its bytes alone.

    At most 64 brackets cannot nest deeper than 64; a NUL can only be written ``\\u0000`` in JSON;
    no run of 19 digits means every integer fits in 64 bits. Cheap C scans that spare the common
    line the walk over its values; any doubt and the walk runs.
    """
    return (
        line.count(b"{") + line.count(b"[") <= MAX_JSON_DEPTH
        and b"\\u0000" not in line
        and not _has_long_digit_run(line)
    )


def _fast_task(obj: Any, *, storable: bool = False) -> _Task | None:
    """The well-formed common case of a :class:`TaskCreate`, checked without pydantic.

    Returns None whenever anything is unusual (a missing or mistyped field, a value out of range,
    an unknown key, JSON that cannot be stored): the caller then validates with pydantic, which
    accepts or names the error. So the result is exactly what ``TaskCreate`` would accept, only
    about ten times faster. ``storable``: the values are known to pass :func:`check_json` already.
    """
    if type(obj) is not dict or not _TASK_KEYS.issuperset(obj):
        return None
    data = obj.get("data")
    metadata = obj.get("metadata", _NO_METADATA)
    unique_id = obj.get("unique_id")
    priority = obj.get("priority", 0)
    overlap = obj.get("overlap")
    batch_id = obj.get("batch_id")
    if (
        type(data) is not dict
        or type(metadata) is not dict
        or type(priority) is not int
        or not _PRIORITY[0] <= priority <= _PRIORITY[1]
        or (unique_id is not None and (type(unique_id) is not str or not 1 <= len(unique_id) <= 400))
        or (unique_id is not None and "\x00" in unique_id)  # pydantic names the error (PostgreSQL text)
        or (overlap is not None and (type(overlap) is not int or not 1 <= overlap <= 100))
        or (batch_id is not None and type(batch_id) is not str)
    ):
        return None
    if not storable:
        try:  # what TaskCreate's JsonObject checks: depth, 64-bit integers, NUL
            check_json(data)
            check_json(metadata)
        except ValueError:
            return None
    return data, unique_id, metadata, priority, overlap, batch_id


_NO_METADATA: dict[str, Any] = {}


def _json_number(value: Any) -> float:
    """orjson's fallback for what it cannot write: a JSON array's fractions arrive as Decimal."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_json_number).decode()


def content_hash(data: Any, metadata: Any) -> str:
    """A task's identity when it has no ``unique_id``: a hash of its data and metadata as canonical
    JSON (keys sorted, no spaces), so the same task read from JSONL, CSV or Parquet hashes the same
    and a re-import adds nothing. 128 bits of BLAKE2b: no collision in any one project, ever."""
    canonical = orjson.dumps([data, metadata], default=_json_number, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


class _Importer:
    """Checks import items (phase 1) and stores checked rows in short transactions (phase 2)."""

    def __init__(
        self, principal: Principal, project: dict, batch: dict | None, max_task_bytes: int, on_error: OnError
    ) -> None:
        self.principal = principal
        self.project = project
        self.batch_id = batch["id"] if batch else None
        self.status = _status_for(batch)
        self.queued_some = False
        self.overlap = project_overlap(project)
        self.spec = compiled_spec(project)
        self.field_names = frozenset(f.name for f in self.spec.fields)
        self.media_of: dict[int, dict[str, str]] = {}  # line -> the uploaded images it names (image fields)
        self.max_task_bytes = max_task_bytes
        self.on_error = on_error
        self.report = ImportReport()

    @property
    def checking(self) -> bool:
        """False once a rejected import has listed all the errors it reports: the rest is only counted."""
        return self.on_error == "skip" or len(self.report.errors) < MAX_REPORTED_ERRORS

    @property
    def keeping(self) -> bool:
        """Whether valid rows are still worth spooling (a rejected import stores none)."""
        return self.on_error == "skip" or self.report.invalid == 0

    def parse(self, number: int, raw: Any) -> _Row | None:
        self.report.received += 1
        if not self.checking:
            return None
        self.report.checked += 1
        try:
            data, unique_id, metadata, priority, overlap, batch_id = self._task(raw)
            if batch_id is not None and batch_id != self.batch_id:
                raise ValueError("batch_id per task is not supported in a bulk import; pass batch_id once")
            self.spec.validate_data(data)
            digest = None if unique_id is not None else content_hash(data, metadata)
            row = (unique_id, _dumps(data), _dumps(metadata), priority, overlap, digest)
            if len(row[1]) + len(row[2]) > self.max_task_bytes:
                raise ValueError(f"task data and metadata exceed {self.max_task_bytes} bytes")
            if self.spec.has_images and (named := self.spec.media_named(data)):
                self.media_of[number] = named
        except ValidationError as exc:
            self.report.error(number, _message(exc) if len(self.report.errors) < MAX_REPORTED_ERRORS else "")
            return None
        except ValueError as exc:
            self.report.error(number, str(exc))
            return None
        return row

    def drop_missing_media(self, conn: Connection, numbered: list[tuple[int, _Row]]) -> list[tuple[int, _Row]]:
        """The rows whose images the organization has; a line naming an image it lacks is invalid
        (checked in phase 1, so a rejected import stores nothing: one query per chunk)."""
        named = {number: self.media_of[number] for number, _ in numbered if number in self.media_of}
        self.media_of.clear()  # the chunk's, including lines another check dropped; the next chunk parses after
        if not named:
            return numbered
        missing = _missing_media(conn, self.principal.organization_id, (m for n in named.values() for m in n))
        if not missing:
            return numbered
        kept = []
        for number, row in numbered:
            lacking = sorted(set(named.get(number, ())) & missing)
            if lacking:
                self.report.error(number, _missing_media_message(lacking[0], named[number][lacking[0]]))
            else:
                kept.append((number, row))
        return kept

    def drop_used_elsewhere(self, conn: Connection, numbered: list[tuple[int, _Row]]) -> list[tuple[int, _Row]]:
        """The rows whose ``unique_id`` no task of another project has; the others are invalid lines.

        Phase 2 would count them as existing (the insert skips them), as if this project had them.
        Checked here, in phase 1, so that a rejected import stores nothing: one probe of the
        (organization, unique_id) index per line, in the helper thread that parses.
        """
        unique_ids = [row[0] for _, row in numbered if row[0] is not None]
        elsewhere = repo.unique_ids_elsewhere(conn, self.principal.organization_id, self.project["id"], unique_ids)
        if not elsewhere:
            return numbered
        kept = []
        for number, row in numbered:
            if row[0] in elsewhere:
                self.report.error(number, _elsewhere_message(row[0], elsewhere[row[0]]))
            else:
                kept.append((number, row))
        return kept

    def _task(self, raw: Any) -> _Task:
        """The task in ``raw`` (a JSONL line, or an already parsed item); raises naming what is wrong."""
        if isinstance(raw, Item):
            raw = raw.value
        if isinstance(raw, TooLong):
            raise ValueError(f"line is longer than {raw.limit} bytes")
        if isinstance(raw, Bad):  # a reader found the item wrong before it was a task (a CSV row, an image)
            raise ValueError(raw.message)
        if isinstance(raw, bytes | bytearray | memoryview):
            if len(raw) > self.max_task_bytes:
                raise ValueError(f"line is longer than {self.max_task_bytes} bytes")
            storable = _plainly_storable(raw)
            try:
                raw = orjson.loads(raw) if storable or not _has_long_digit_run(raw) else pydantic_core.from_json(raw)
            except (orjson.JSONDecodeError, ValueError) as exc:
                raise ValueError(f"invalid JSON: {exc}") from None
        else:
            storable = False
        if type(raw) is not dict:
            raise ValueError("task: must be a JSON object")
        if "data" not in raw and not self.field_names.isdisjoint(raw):
            # a dataset's flat record (its fields at the top level): read as a CSV or Parquet row is
            raw, storable = task_from_columns(raw, self.field_names, text=False), False
        return _fast_task(raw, storable=storable) or _from_model(TaskCreate.model_validate(raw))

    def refresh(self, conn: Connection) -> None:
        """At the start of each write: the project and batch as they are now (a batch may have moved on)."""
        self.project = load_project(conn, self.principal, self.project["id"], hold_spec=True)
        self.status = _status_for(_batch_for_tasks(conn, self.principal, self.project["id"], self.batch_id))

    def hold_media(self, conn: Connection, chunk: list[_Row]) -> None:
        """In the transaction that stores ``chunk``: its images must still be there, and stay until the
        commit (phase 1 checked them, but a prune may have removed one since); otherwise the import
        stops here with a 422 naming the image, before this chunk is stored."""
        if not self.spec.has_images:
            return
        named = {m: f for row in chunk for m, f in self.spec.media_named(orjson.loads(row[1])).items()}
        missing = sorted(_missing_media(conn, self.principal.organization_id, named, hold=True))
        if missing:
            stored = self.report.created + self.report.existing
            raise InvalidInput(
                f"data.{named[missing[0]]}: image media:{missing[0]} was removed while the import ran (an image "
                f"no task names may be pruned); upload it again and send the import again: the {stored} tasks "
                "stored before this are kept, and sending them again adds nothing",
                details={"field": "data"},
            )

    def store(self, conn: Connection, chunk: list[_Row]) -> None:
        now = repo.driver_datetime(conn, utcnow())
        fixed = (self.principal.organization_id, self.project["id"], self.batch_id)
        status, default = self.status, self.overlap
        ids = new_ids(len(chunk))
        rows = [
            (task_id, *fixed, unique_id, data, metadata, priority, status, overlap or default, 0, 0, now, now, digest)
            for task_id, (unique_id, data, metadata, priority, overlap, digest) in zip(ids, chunk, strict=True)
        ]
        # A unique_id (or, without one, a content hash) stored before (by an earlier import, an
        # earlier chunk or line of this one, a concurrent import, or an earlier run of a resumed
        # import job) makes its row a conflict, skipped: those rows count as existing. One index
        # probe per row, in the insert itself, rather than a lookup query first.
        inserted = repo.insert_prepared(conn, t.tasks, _BULK_COLUMNS, rows, skip_any_conflict=True)
        self.report.created += inserted
        self.report.existing += len(rows) - inserted
        self.queued_some = self.queued_some or bool(inserted and self.status == str(TaskStatus.PENDING))

    def announce(self, conn: Connection) -> None:
        """Last in a transaction that stored tasks: bump the queue epoch if any joined the queue.

        New tasks may rank before tasks that workers passed over. Last, because on PostgreSQL the
        bump locks the project row until the commit, which a release or a lease expiry also needs.
        """
        if self.queued_some:
            repo.bump_queue_epoch(conn, self.project["id"])
            self.queued_some = False

    def write(self, db: Database, chunk: list[_Row], *, durable: bool) -> None:
        """One short transaction: a chunk of checked rows (run on the database's writer)."""
        with db.write(durable=durable) as conn:
            self.refresh(conn)
            self.hold_media(conn, chunk)
            self.store(conn, chunk)
            self.announce(conn)


def _message(exc: ValidationError) -> str:
    """The first error, naming its field; built only for the errors a report lists (it is not free)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "task"
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


def _status_for(batch: dict | None) -> str:
    staged = batch is not None and batch["status"] == str(BatchStatus.OPEN)
    return str(TaskStatus.STAGED if staged else TaskStatus.PENDING)


def _from_model(task: TaskCreate) -> _Task:
    return task.data, task.unique_id, task.metadata, task.priority, task.overlap, task.batch_id


def import_tasks(
    db: Database,
    principal: Principal,
    project_id: str,
    items: Iterable[tuple[int, Any]],
    *,
    batch_id: str | None = None,
    on_error: OnError = "reject",
    max_task_bytes: int = 1 << 20,
    progress: Progress | None = None,
) -> ImportReport:
    """Import numbered tasks (JSONL lines, or parsed JSON values) into a project, in two phases.

    Phase 1 reads every item and checks it, with no transaction open (the items may come from a
    client over the network, at the client's pace), spooling the valid rows to a temporary file.
    Phase 2 stores the spooled rows in short transactions of :data:`IMPORT_CHUNK` rows, which the
    annotation loop's calls take turns with. ``on_error="reject"`` stores nothing if any item is
    invalid (phase 2 does not run); ``"skip"`` stores the valid ones. The report names the first
    100 bad items by number; a rejected import stops checking after those (``checked``).
    A failure during phase 2 (a crash, a full disk) can leave a prefix stored: ``unique_id`` (or,
    without one, the content hash) makes sending the import again safe.

    ``progress(done, total)`` is called after each chunk: in phase 1 with the items read and None,
    in phase 2 with the rows stored and the rows to store. What it raises (a job's cancel) stops
    the import between chunks.
    """
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        require_active(project)
        batch = _batch_for_tasks(conn, principal, project_id, batch_id)
    importer = _Importer(principal, project, batch, max_task_bytes, on_error)
    pacer = Pacer(db)
    with (
        full_disk_is_storage_full(SPOOL_DIRECTORY),
        tempfile.TemporaryFile(prefix="truthset-import-") as spool,
    ):
        spooled = 0
        for rows in _parsed_chunks(db, importer, items, pacer):
            if rows and importer.keeping:
                pickle.dump(rows, spool, protocol=pickle.HIGHEST_PROTOCOL)
                spooled += len(rows)
            if progress is not None:
                progress(importer.report.received, None)
        importer.report.errors.sort(key=lambda error: error["line"])  # a chunk's lines are checked in two passes
        if not importer.keeping:
            importer.report.stored = False
            return importer.report
        spool.seek(0)
        stored = None if progress is None else (lambda done: progress(done, spooled))
        _store_spooled(db, importer, spool, pacer, stored)
    return importer.report


def _store_spooled(
    db: Database, importer: _Importer, spool: IO[bytes], pacer: Pacer, progress: Callable[[int], None] | None
) -> None:
    """Phase 2: each spooled chunk in its own transaction, queued behind the calls already waiting.

    On SQLite the chunks go through the database's writer thread (:meth:`Database.submit`), whose
    queue is first come, first served: the annotation calls that arrive while a chunk is written
    run before the next chunk. Only the last chunk waits for the disk; its sync covers the others.
    """
    chunk = _next_spooled(spool)
    while chunk is not None:
        following = _next_spooled(spool)
        with pacer.step(time.perf_counter):  # the writer thread does the work
            write = functools.partial(importer.write, durable=following is None)
            db.submit(write, db, chunk, hot=False).result()
        if progress is not None:
            progress(importer.report.created + importer.report.existing)
        chunk = following


def _next_spooled(spool: IO[bytes]) -> list[_Row] | None:
    try:
        return pickle.load(spool)  # our own file, written above by this process
    except EOFError:
        return None


def _parsed_chunks(
    db: Database, importer: _Importer, items: Iterable[tuple[int, Any]], pacer: Pacer
) -> Iterator[list[_Row]]:
    """Valid rows, chunk by chunk; chunk N+1 is parsed in a helper thread while the caller reads on.

    The items are pulled in the caller's thread, which may be reading the HTTP body; at most two
    chunks are in memory at once.
    """

    def parse(chunk: list[tuple[int, Any]]) -> list[_Row]:
        with pacer.step():
            numbered = [(number, task) for number, raw in chunk if (task := importer.parse(number, raw))]
        if any(row[0] is not None for _, row in numbered):
            with pacer.step(), db.read() as conn:
                numbered = importer.drop_used_elsewhere(conn, numbered)
        if importer.media_of:
            with pacer.step(), db.read() as conn:
                numbered = importer.drop_missing_media(conn, numbered)
        return [row for _, row in numbered]

    chunks = _chunks(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-parse") as pool:
        pending: Future[list[_Row]] | None = None
        while True:
            with pacer.step():  # reading a chunk can be work too: a JSON array is parsed here
                chunk = next(chunks, None)
            if chunk is None:
                break
            following = pool.submit(parse, chunk)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def _chunks(items: Iterable[tuple[int, Any]]) -> Iterator[list[tuple[int, Any]]]:
    """Items in chunks of at most :data:`IMPORT_CHUNK` items and about :data:`CHUNK_BYTES` bytes."""
    chunk: list[tuple[int, Any]] = []
    size = 0
    for item in items:
        chunk.append(item)
        raw = item[1]
        size += len(raw) if isinstance(raw, bytes | bytearray | memoryview) else getattr(raw, "size", 0)
        if len(chunk) >= IMPORT_CHUNK or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# --- reading -----------------------------------------------------------------------------------


@dataclass
class TaskFilter:
    project_id: str | None = None
    batch_id: str | None = None
    status: TaskStatus | None = None
    unique_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    completed_after: datetime | None = None
    completed_before: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: only tasks whose result has at least this confidence (tasks without a result never match)
    min_confidence: float | None = None
    review_status: ReviewStatus | None = None
    # --- the task browser's filters (services/task_browse.py applies them) ---
    #: only tasks whose result has at most this confidence (tasks without a result never match)
    max_confidence: float | None = None
    #: only tasks this worker answered
    worker_id: str | None = None
    #: True: only gold tasks; False: no gold task
    gold: bool | None = None
    #: True: only tasks never sent to review (review_status is empty)
    unreviewed: bool = False
    #: words that must all appear in the task's data (full-text search)
    search: str | None = None


def _naive(value: datetime) -> datetime:
    """Stored times are naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def list_tasks(
    db: Database, principal: Principal, filters: TaskFilter, *, cursor: str | None, limit: int, sort: str = "created"
) -> tuple[list, str | None]:
    """A keyset page of tasks; ``sort`` is one of :data:`task_browse.SORTS` (``-`` for descending)."""
    require(principal, Action.READ_TASKS)
    task_browse.check_sort(sort)
    with db.read() as conn:
        query = task_query(principal, filters, sort=sort, search_drive=task_browse.search_drives(conn, filters))
        if sort in ("created", "-created"):
            task_browse.check_id_cursor(cursor)
            return repo.page(conn, query, t.tasks, cursor=cursor, limit=limit, descending=sort == "-created")
        return task_browse.sorted_page(conn, query, sort, cursor=cursor, limit=limit)


def task_query(
    principal: Principal, filters: TaskFilter, *columns: Any, sort: str = "created", search_drive: bool | None = None
) -> Select:
    """The organization's tasks matching ``filters`` (``columns``, or every column), unordered
    (on SQLite, hinted to the index that pages them in ``sort`` order; ``search_drive``: see
    ``task_browse.search_drives``)."""
    c = t.tasks.c
    query = repo.scoped(t.tasks, principal.organization_id, *columns)
    for column, value in (
        (c.project_id, filters.project_id),
        (c.batch_id, filters.batch_id),
        (c.unique_id, filters.unique_id),
        (c.status, str(filters.status) if filters.status else None),
        (c.review_status, str(filters.review_status) if filters.review_status else None),
    ):
        if value is not None:
            query = query.where(column == value)
    for column, after, before in (
        (c.created_at, filters.created_after, filters.created_before),
        (c.updated_at, filters.updated_after, filters.updated_before),
        (c.completed_at, filters.completed_after, filters.completed_before),
    ):
        if after is not None:
            query = query.where(column >= _naive(after))
        if before is not None:
            query = query.where(column < _naive(before))
    for key, value in filters.metadata.items():
        query = query.where(repo.json_text(c.metadata, key) == value)
    if filters.min_confidence is not None:
        query = query.where(c.confidence >= filters.min_confidence)
    query = task_browse.apply_filters(query, filters, principal.organization_id, drive=search_drive)
    if task_browse.plans_itself(filters) or (filters.search and search_drive is None):
        return query
    if search_drive:  # start from the search's few matches: no index of tasks but the rowid
        return query.with_hint(t.tasks, "NOT INDEXED", "sqlite")
    if sort.lstrip("-") != "created":
        return repo.prefer_index(query, t.tasks, task_browse.sort_index(filters, sort))
    return repo.prefer_index(query, t.tasks, _listing_index(filters))


def _listing_index(filters: TaskFilter) -> str | None:
    """The index that serves these filters in id order (see storage.tables)."""
    if filters.unique_id is not None:
        return None  # the unique (organization_id, unique_id) index finds at most one row
    if filters.batch_id is not None:
        return "ix_tasks_batch_status" if filters.status else "ix_tasks_batch_id"
    if filters.project_id is not None and filters.review_status is not None and filters.status is None:
        return "ix_tasks_review"
    if filters.project_id is not None:
        return "ix_tasks_project_status" if filters.status else "ix_tasks_project_id"
    return None


def get_task(db: Database, principal: Principal, task_id: str) -> dict[str, Any]:
    with db.read() as conn:
        task = load_task(conn, principal, task_id)
    require(principal, Action.READ_TASKS)
    return task


def cancel_task(db: Database, principal: Principal, task_id: str) -> dict[str, Any]:
    with db.write() as conn:
        task = load_task(conn, principal, task_id, lock=True)
        require(principal, Action.MANAGE_TASKS)
        if task["status"] == str(TaskStatus.CANCELED):
            return task
        task = lifecycle.move(conn, task, TaskStatus.CANCELED)
        mark_batch_completed_if_done(conn, principal.organization_id, task["batch_id"])
    complete_batch_if_done(db, principal.organization_id, task["batch_id"])
    return task


def task_responses(db: Database, principal: Principal, task_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        load_task(conn, principal, task_id)
        require(principal, Action.READ_TASKS)
        return repo.responses_of_task(conn, principal.organization_id, task_id)

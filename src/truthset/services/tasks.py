"""Tasks: create one, import many (streamed), list with filters and keyset pages, cancel."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, Select
from sqlalchemy.exc import IntegrityError

from truthset.domain import BatchStatus, Principal, TaskStatus
from truthset.errors import Conflict, InvalidInput, NotFound, TooLarge
from truthset.questions import CompiledSpec
from truthset.schemas import TaskCreate
from truthset.services import lifecycle
from truthset.services.policy import Action, require
from truthset.services.projects import (
    compiled_spec,
    complete_batch_if_done,
    load_batch,
    load_project,
    mark_batch_completed_if_done,
    project_overlap,
)
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

IMPORT_CHUNK = 5000
MAX_REPORTED_ERRORS = 100
OnError = Literal["reject", "skip"]


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
    staged = batch is not None and batch["status"] == str(BatchStatus.OPEN)
    return {
        "id": task_id,
        "organization_id": principal.organization_id,
        "project_id": project["id"],
        "batch_id": batch["id"] if batch else None,
        "unique_id": task.unique_id,
        "data": task.data,
        "metadata": task.metadata,
        "priority": task.priority,
        "status": str(TaskStatus.STAGED if staged else TaskStatus.PENDING),
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


def create_task(
    db: Database, principal: Principal, project_id: str, task: TaskCreate, *, max_task_bytes: int = 1 << 20
) -> dict[str, Any]:
    """Create one task. A repeated ``unique_id`` returns the existing task (``created`` false)."""
    try:
        with db.write() as conn:
            project = load_project(conn, principal, project_id)
            require(principal, Action.MANAGE_TASKS)
            if task.unique_id is not None and (existing := _task_by_unique_id(conn, principal, task.unique_id)):
                return {**existing, "created": False}
            _check_data(compiled_spec(project), task, max_task_bytes)
            batch = _batch_for_tasks(conn, principal, project_id, task.batch_id)
            row = _task_row(principal, project, batch, task, new_ids(1)[0], utcnow())
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
        return {**existing, "created": False}


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

    def error(self, line: int, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "message": message})


_TASK_KEYS = frozenset(TaskCreate.model_fields)
_PRIORITY = (-1_000_000, 1_000_000)  # TaskCreate.priority's bounds
_BULK_COLUMNS = (
    "id", "organization_id", "project_id", "batch_id", "unique_id", "data", "metadata", "priority", "status",
    "overlap", "response_count", "lease_count", "created_at", "updated_at",
)  # fmt: skip


@dataclass(slots=True)
class _Parsed:
    """One valid import line, with its JSON payloads already serialised for the insert."""

    unique_id: str | None
    data: str
    metadata: str
    priority: int
    overlap: int | None


def _fast_task(obj: Any) -> tuple[dict, str | None, dict, int, int | None, str | None] | None:
    """The well-formed common case of a :class:`TaskCreate`, checked without pydantic.

    Returns None whenever anything is unusual (a missing or mistyped field, a value out of range,
    an unknown key): the caller then validates with pydantic, which accepts or names the error.
    So the result is exactly what ``TaskCreate`` would accept, only about ten times faster.
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
    return data, unique_id, metadata, priority, overlap, batch_id


_NO_METADATA: dict[str, Any] = {}


class _Importer:
    """Validates and stores a stream of tasks chunk by chunk, so memory stays flat."""

    def __init__(self, principal: Principal, project: dict, batch: dict | None, max_task_bytes: int) -> None:
        self.principal = principal
        self.project = project
        self.batch = batch
        self.batch_id = batch["id"] if batch else None
        staged = batch is not None and batch["status"] == str(BatchStatus.OPEN)
        self.status = str(TaskStatus.STAGED if staged else TaskStatus.PENDING)
        self.queued_some = False
        self.overlap = project_overlap(project)
        self.spec = compiled_spec(project)
        self.max_task_bytes = max_task_bytes
        self.report = ImportReport()
        self.seen_unique_ids: set[str] = set()

    def parse(self, number: int, raw: bytes | dict) -> _Parsed | None:
        self.report.received += 1
        try:
            if isinstance(raw, bytes | bytearray | memoryview):
                if len(raw) > self.max_task_bytes:
                    raise ValueError(f"line is longer than {self.max_task_bytes} bytes")
                try:
                    fast = _fast_task(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    fast = None
                if fast is None:
                    fast = _from_model(TaskCreate.model_validate_json(raw))
            else:
                fast = _fast_task(raw) or _from_model(TaskCreate.model_validate(raw))
            data, unique_id, metadata, priority, overlap, batch_id = fast
            if batch_id is not None and batch_id != self.batch_id:
                raise ValueError("batch_id per task is not supported in a bulk import; pass batch_id once")
            self.spec.validate_data(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "task"
            self.report.error(number, f"{where}: {first['msg']}")
            return None
        except ValueError as exc:
            self.report.error(number, str(exc))
            return None
        return _Parsed(unique_id, orjson.dumps(data).decode(), orjson.dumps(metadata).decode(), priority, overlap)

    def store(self, conn: Connection, chunk: list[_Parsed]) -> None:
        wanted = [task.unique_id for task in chunk if task.unique_id is not None]
        existing = set(repo.existing_unique_ids(conn, self.principal.organization_id, wanted)) if wanted else set()
        now = repo.driver_datetime(conn, utcnow())
        ids = iter(new_ids(len(chunk)))
        fixed = (self.principal.organization_id, self.project["id"], self.batch_id)
        rows = []
        for task in chunk:
            if task.unique_id is not None:
                if task.unique_id in existing or task.unique_id in self.seen_unique_ids:
                    self.report.existing += 1
                    continue
                self.seen_unique_ids.add(task.unique_id)
            row = (next(ids), *fixed, task.unique_id, task.data, task.metadata, task.priority, self.status)
            rows.append((*row, task.overlap or self.overlap, 0, 0, now, now))
        # a concurrent import may store some of these unique_ids first: those count as existing
        inserted = repo.insert_prepared(
            conn, t.tasks, _BULK_COLUMNS, rows, skip_conflicts_on=("organization_id", "unique_id")
        )
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


def _from_model(task: TaskCreate) -> tuple[dict, str | None, dict, int, int | None, str | None]:
    return task.data, task.unique_id, task.metadata, task.priority, task.overlap, task.batch_id


def import_tasks(
    db: Database,
    principal: Principal,
    project_id: str,
    items: Iterable[tuple[int, bytes | dict]],
    *,
    batch_id: str | None = None,
    on_error: OnError = "reject",
    max_task_bytes: int = 1 << 20,
) -> ImportReport:
    """Import numbered tasks (JSONL lines or JSON objects) into a project.

    ``on_error="reject"`` stores nothing if any line is invalid (one transaction, rolled back);
    ``"skip"`` stores the valid lines, committing chunk by chunk, and reports the invalid ones.
    Either way the report names every bad line number (the first 100).
    """
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
    if on_error == "reject":
        return _import_all_or_nothing(db, principal, project_id, items, batch_id, max_task_bytes)
    with db.read() as conn:
        batch = _batch_for_tasks(conn, principal, project_id, batch_id)
    importer = _Importer(principal, project, batch, max_task_bytes)
    for parsed in _parsed_chunks(importer, items):
        with db.write() as conn:
            importer.store(conn, parsed)
            importer.announce(conn)
    return importer.report


class _Rollback(Exception):
    pass


def _import_all_or_nothing(
    db: Database,
    principal: Principal,
    project_id: str,
    items: Iterable[tuple[int, bytes | dict]],
    batch_id: str | None,
    max_task_bytes: int,
) -> ImportReport:
    report = ImportReport()
    try:
        with db.write() as conn:
            project = load_project(conn, principal, project_id)
            batch = _batch_for_tasks(conn, principal, project_id, batch_id)
            importer = _Importer(principal, project, batch, max_task_bytes)
            report = importer.report
            for parsed in _parsed_chunks(importer, items):
                if report.invalid == 0:
                    importer.store(conn, parsed)
            if report.invalid:
                raise _Rollback
            importer.announce(conn)
    except _Rollback:
        report.stored = False
        report.created = 0
        report.existing = 0
    return report


def _parsed_chunks(importer: _Importer, items: Iterable[tuple[int, bytes | dict]]) -> Iterator[list[_Parsed]]:
    """Valid tasks, chunk by chunk; chunk N+1 is parsed in a helper thread while the caller stores N.

    SQLite and PostgreSQL's driver release the GIL while they insert, so parsing (Python) and
    storing (C and I/O) overlap on two cores. The items are pulled in the caller's thread, which
    may be reading the HTTP body; at most two chunks are in memory at once.
    """

    def parse(chunk: list[tuple[int, bytes | dict]]) -> list[_Parsed]:
        return [task for number, raw in chunk if (task := importer.parse(number, raw))]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-parse") as pool:
        pending: Future[list[_Parsed]] | None = None
        for chunk in _chunks(items):
            following = pool.submit(parse, chunk)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def _chunks(items: Iterable[tuple[int, bytes | dict]]) -> Iterator[list[tuple[int, bytes | dict]]]:
    chunk: list[tuple[int, bytes | dict]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= IMPORT_CHUNK:
            yield chunk
            chunk = []
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


def _naive(value: datetime) -> datetime:
    """Stored times are naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def list_tasks(
    db: Database, principal: Principal, filters: TaskFilter, *, cursor: str | None, limit: int
) -> tuple[list, str | None]:
    require(principal, Action.READ_TASKS)
    query = task_query(principal, filters)
    with db.read() as conn:
        return repo.page(conn, query, t.tasks, cursor=cursor, limit=limit)


def task_query(principal: Principal, filters: TaskFilter, *columns: Any) -> Select:
    """The organization's tasks matching ``filters`` (``columns``, or every column), unordered."""
    c = t.tasks.c
    query = repo.scoped(t.tasks, principal.organization_id, *columns)
    for column, value in (
        (c.project_id, filters.project_id),
        (c.batch_id, filters.batch_id),
        (c.unique_id, filters.unique_id),
        (c.status, str(filters.status) if filters.status else None),
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
    return repo.prefer_index(query, t.tasks, _listing_index(filters))


def _listing_index(filters: TaskFilter) -> str | None:
    """The index that serves these filters in id order (see storage.tables)."""
    if filters.unique_id is not None:
        return None  # the unique (organization_id, unique_id) index finds at most one row
    if filters.batch_id is not None:
        return "ix_tasks_batch_status" if filters.status else "ix_tasks_batch_id"
    if filters.project_id is not None:
        return "ix_tasks_project_status" if filters.status else "ix_tasks_project_id"
    return None


def get_task(db: Database, principal: Principal, task_id: str) -> dict[str, Any]:
    with db.read() as conn:
        task = repo.get(conn, t.tasks, principal.organization_id, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    require(principal, Action.READ_TASKS)
    return task


def cancel_task(db: Database, principal: Principal, task_id: str) -> dict[str, Any]:
    with db.write() as conn:
        task = repo.get(conn, t.tasks, principal.organization_id, task_id, lock=True)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        require(principal, Action.MANAGE_TASKS)
        if task["status"] == str(TaskStatus.CANCELED):
            return task
        task = lifecycle.move(conn, task, TaskStatus.CANCELED)
        mark_batch_completed_if_done(conn, principal.organization_id, task["batch_id"])
    complete_batch_if_done(db, principal.organization_id, task["batch_id"])
    return task


def task_responses(db: Database, principal: Principal, task_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        task = repo.get(conn, t.tasks, principal.organization_id, task_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        require(principal, Action.READ_TASKS)
        return repo.responses_of_task(conn, principal.organization_id, task_id)

"""Export jobs: an export written to a file of the data directory by the job runner, then downloaded.

:func:`start_export` checks the request (permission, project, format, filters) and queues an
``export`` job in its transaction. :func:`run_export` (the handler) streams the rows of one snapshot
(:func:`truthset.services.export.export_rows`) through the format's writer into
``<data_dir>/exports/<organization>/<job>-<attempt>.<ext>.part``, reporting progress and stopping
for a cancel; then fsyncs it and renames it without ``.part``. A runner killed mid-export leaves
only a ``.part`` file that nothing serves; the job's next attempt writes a file of its own from the
start (two attempts never share a file, even when a runner that lost its lease is still writing),
and :func:`remove_expired` deletes what is left over. :func:`export_file` finds a finished export's
file for a download, within the organization.

Delta exports: a job's result holds a ``cursor``; an export with ``updated_since=<cursor>`` holds
every task changed since the first one read its snapshot (see :func:`cursor_for`).
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from truthset.config import Settings, get_settings
from truthset.domain import JobStatus, Principal, ReviewStatus, TaskStatus, WebhookEvent
from truthset.errors import Conflict, InvalidInput, NotFound, full_disk_is_storage_full
from truthset.services import export, formats, jobs, webhooks
from truthset.services.formats.images import write_options
from truthset.services.jobs import JobCanceled, JobContext, JobFailed, JobLost
from truthset.services.policy import Action, require
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.files import fsync_path, make_private_dirs
from truthset.storage.ids import utcnow

KIND = "export"
PART = ".part"
#: How far before its snapshot a job's cursor points. A change is stamped (``updated_at``) when its
#: write transaction computes it, which may be before that transaction commits: a write that waited
#: for the lock (at most TRUTHSET_LOCK_TIMEOUT_SECONDS) or ran long. Pointing the cursor this far
#: back means the next delta export also holds the changes that committed after the snapshot with
#: an earlier stamp (and so repeats some tasks: keep the last row per task_id). It also covers
#: clocks of several servers that differ by less than this.
CURSOR_MARGIN = timedelta(minutes=10)
_HASH_QUEUE = 4  # chunks written but not yet hashed (a JSONL block is a few MiB)
_HASH_CHUNK = 1 << 20  # writes smaller than this are hashed together
_PROGRESS_EVERY = 256  # rows between two progress calls (each is cheap; most only check for a cancel)
_FILE_NAME = re.compile(r"^[0-9a-f]{24}-[0-9]{1,3}\.[a-z0-9.]{1,20}$")


# --- starting an export (the API's side) ------------------------------------------------------------


def start_export(
    db: Database,
    principal: Principal,
    project_id: str,
    format_name: str,
    filters: export.ExportFilter,
    questions: list[str] | None = None,
) -> dict[str, Any]:
    """Queue an export of ``project_id`` in ``format_name``; returns the job (as the API shows jobs).
    ``questions``: only these questions (see :func:`export.only_questions`).

    Refused before anything is queued: 403 without the right to read tasks, 404 for a project of
    another organization, 422 for an unknown format (naming the formats), an unknown question, or a
    format the project's spec (or its chosen questions) cannot be written in.
    """
    project, _ = export.prepare(db, principal, project_id, format_name, questions)
    fmt = formats.canonical(format_name)
    payload = {"project_id": project["id"], "format": fmt, "filters": _filters_payload(filters)}
    if questions is not None:
        payload["questions"] = list(questions)
    with db.write() as conn:
        job = jobs.enqueue(conn, principal.organization_id, KIND, payload, created_by=principal.member_id)
    return jobs.public(job)


def _filters_payload(filters: export.ExportFilter) -> dict[str, Any]:
    return {
        "status": str(filters.status) if filters.status else None,
        "batch_id": filters.batch_id,
        "min_confidence": filters.min_confidence,
        "review_status": str(filters.review_status) if filters.review_status else None,
        "updated_since": _iso(filters.updated_since) if filters.updated_since else None,
    }


def _filters_from(payload: dict[str, Any]) -> export.ExportFilter:
    try:
        since = payload.get("updated_since")
        return export.ExportFilter(
            status=TaskStatus(payload["status"]) if payload.get("status") else None,
            batch_id=payload.get("batch_id"),
            min_confidence=payload.get("min_confidence"),
            review_status=ReviewStatus(payload["review_status"]) if payload.get("review_status") else None,
            updated_since=parse_cursor(since) if since else None,
        )
    except (ValueError, KeyError, InvalidInput) as exc:
        raise JobFailed(f"the payload's filters are not valid: {exc}") from exc


# --- the cursor ---------------------------------------------------------------------------------


def cursor_for(snapshot_started: datetime) -> str:
    """The cursor a delta export resumes from: :data:`CURSOR_MARGIN` before ``snapshot_started``
    (a naive UTC time taken before the export's snapshot), as ISO 8601 UTC text."""
    return _iso(snapshot_started - CURSOR_MARGIN)


def parse_cursor(value: str) -> datetime:
    """A cursor (or any ISO 8601 time; without a zone it is UTC) as the naive UTC time tasks store."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"updated_since: {value!r} is not a cursor or an ISO 8601 time (e.g. 2026-11-30T12:00:00Z)",
            details={"field": "updated_since"},
        ) from None
    return naive_utc(parsed)


def naive_utc(value: datetime) -> datetime:
    """A time as tasks store them: naive UTC (a time without a zone is taken as UTC)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds") + "Z"


# --- running an export (the handler's side) ---------------------------------------------------------


def run_export(db: Database, context: JobContext) -> dict[str, Any]:
    """The ``export`` job: write the file, then return what a download (or an "export ready"
    event) needs: the file's name, size and sha256, the task count, the format and the cursor."""
    settings: Settings = context.settings or get_settings()
    payload = context.payload
    project_id, format_name = payload.get("project_id"), payload.get("format")
    if not isinstance(project_id, str) or not isinstance(format_name, str):
        raise JobFailed("the payload names no project_id or format")
    principal = jobs.started_by(db, context, Action.READ_TASKS, "export")
    project, writer = export.prepare(db, principal, project_id, format_name, payload.get("questions"))
    filters = _filters_from(payload.get("filters") or {})
    remove_expired(settings.exports_dir, settings.export_retention_hours)
    directory = settings.exports_dir / context.organization_id
    make_private_dirs(directory)
    name = f"{context.id}-{context.attempt}.{writer.extension}"
    _remove_earlier_attempts(directory, context)
    started = utcnow()  # before the snapshot's first read: see cursor_for
    rows = export.rows_for(writer, db, principal, project_id, filters, on_total=lambda n: context.progress(0, n))
    with full_disk_is_storage_full("the exports directory"):
        options = write_options(writer, db, context.organization_id, settings.media_dir)  # image formats: sizes
        count, size, digest = _write_file(
            directory / name, writer, project, _reporting(rows, context), context, **options
        )
    finished = utcnow()
    result = {
        "project_id": project_id,
        "format": format_name,
        "file": name,
        "download_name": download_name(project, context.id, writer.extension),
        "media_type": writer.media_type,
        "tasks": count,
        "size": size,
        "sha256": digest,
        "cursor": cursor_for(started),
        "filters": payload.get("filters") or {},
        "expires_at": _iso(finished + timedelta(hours=settings.export_retention_hours)),
    }
    _announce(db, context, result)
    return result


def _announce(db: Database, context: JobContext, result: dict[str, Any]) -> None:
    """The ``export.ready`` webhook event, once the file is complete and in place. (A runner that
    then loses the job's lease runs it again: a receiver may hear of the same export twice, as
    deliveries are at least once anyway; each names its job and file.)"""
    export = {
        "job_id": context.id,
        "format": result["format"],
        "tasks": result["tasks"],
        "size": result["size"],
        "sha256": result["sha256"],
        "download": f"/api/v1/exports/{context.id}/file",
        "download_name": result["download_name"],
        "cursor": result["cursor"],
        "expires_at": result["expires_at"],
    }
    with db.write() as conn:
        webhooks.emit(
            conn, context.organization_id, result["project_id"], str(WebhookEvent.EXPORT_READY), {"export": export}
        )


def _reporting(rows: Iterator[Any], context: JobContext) -> Iterator[Any]:
    """``rows`` (dicts, or blocks of lines: see ``export.rows_for``), reporting progress (and so
    stopping for a cancel) as they are written."""
    done = reported = 0
    for row in rows:
        yield row
        done += row.count if isinstance(row, formats.LineBlock) else 1
        if done - reported >= _PROGRESS_EVERY:
            context.progress(done)
            reported = done
    context.progress(done)


class _HashingFile:
    """A binary file that also hashes and counts what is written (the download's checksum).

    The hashing runs in a thread of its own, beside the writing: both release the GIL, and in a
    JSONL export the exporting thread's hashing and writing of each block were the slowest step of
    the pipeline (the database renders on the other core). Chunks are hashed in the order written;
    a chunk that is not ``bytes`` (a writer library's reused buffer) is copied first, so it cannot
    change before it is hashed. Use it as a context manager: leaving stops the thread."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._hash = hashlib.sha256()
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_HASH_QUEUE)
        self._hasher = threading.Thread(target=self._hash_chunks, name="export-hash", daemon=True)
        self._hasher.start()
        self._pending = bytearray()
        self.size = 0
        self.closed = False

    def __enter__(self) -> _HashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        # small writes are gathered before the hand-over: a thread switch costs more than hashing them
        if len(data) >= _HASH_CHUNK:
            self._hand_over()
            self._chunks.put(data if isinstance(data, bytes) else bytes(data))
        else:
            self._pending += data
            if len(self._pending) >= _HASH_CHUNK:
                self._hand_over()
        self.size += len(data)
        return int(self._file.write(data))

    def _hand_over(self) -> None:
        if self._pending:
            self._chunks.put(bytes(self._pending))
            self._pending.clear()

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._file.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:  # the writer's library may close what it was given: the file is ours
        self.closed = True

    def hexdigest(self) -> str:
        self._finish()
        return self._hash.hexdigest()

    def _finish(self) -> None:
        if self._hasher.is_alive():
            self._hand_over()
            self._chunks.put(None)
            self._hasher.join()

    def _hash_chunks(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._hash.update(chunk)


def _write_file(
    path: Path,
    writer: formats.Writer,
    project: dict[str, Any],
    rows: Iterator[dict[str, Any]],
    context: JobContext,
    **options: Any,
) -> tuple[int, int, str]:
    """Write ``rows`` to ``path`` through ``path.part``: fsynced, then renamed, so ``path`` exists
    only complete, and only while the job is still this runner's (not canceled meanwhile).
    Whatever stops the writing (a cancel, an error) removes the part file."""
    part = path.with_name(path.name + PART)
    try:
        with open(part, "wb", opener=_private) as raw, _HashingFile(raw) as out:
            count = writer.write(project, rows, out, **options)  # type: ignore[arg-type]
            raw.flush()
            os.fsync(raw.fileno())
        _still_mine(context)
        os.replace(part, path)
        fsync_path(path.parent)  # the rename is durable: a power cut must not lose the file's name
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return count, out.size, out.hexdigest()


def _still_mine(context: JobContext) -> None:
    """Ask the database (progress calls only look twice a second): raise if the job was canceled
    or taken over meanwhile, so that a canceled export leaves no file behind."""
    status = jobs.heartbeat(context.db, context.id, context.runner_id, context.lease_seconds)
    if status is JobStatus.CANCELED:
        raise JobCanceled(f"job {context.id} was canceled")
    if status is not JobStatus.RUNNING:
        raise JobLost(f"job {context.id} was taken over by another runner")


def _remove_earlier_attempts(directory: Path, context: JobContext) -> None:
    """A crashed attempt's part file goes when the next attempt starts. (Were that attempt's runner
    still writing, having lost its lease, its rename then fails and it gives up: nothing is served.)"""
    for path in directory.glob(f"{context.id}-*{PART}"):
        path.unlink(missing_ok=True)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


# --- files: download and clean-up ---------------------------------------------------------------


def export_file(db: Database, principal: Principal, job_id: str, exports_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The file of the finished export ``job_id`` and the job's result, for a download.

    404 for a job of another organization (or not an export), exactly like a missing one; 409
    ``export_not_ready`` until the job has succeeded; 404 ``export_expired`` once its file is gone
    or its project was deleted with its data (an export that finished after the deletion's clean-up).
    """
    require(principal, Action.READ_TASKS)
    with db.read() as conn:
        job = repo.get(conn, t.jobs, principal.organization_id, job_id)
        if job is None or job["kind"] != KIND:
            raise NotFound(f"export {job_id} not found")
        project = repo.get(conn, t.projects, principal.organization_id, str(job["payload"].get("project_id")))
    if project is None:  # an export that was still running when its project was deleted with its data
        remove_files(exports_dir, principal.organization_id, job_id)
        raise NotFound(f"the project of export {job_id} was deleted with its data", code="export_expired")
    if job["status"] != "succeeded":
        raise Conflict(
            f"export {job_id} is {job['status']}: its file can be downloaded once it has succeeded",
            details={"status": job["status"]},
            code="export_not_ready",
        )
    result = job["result"] or {}
    name = str(result.get("file", ""))
    path = exports_dir / principal.organization_id / name
    expires = result.get("expires_at")
    expired = expires is not None and parse_cursor(expires) <= utcnow()
    if not _FILE_NAME.match(name) or expired or not path.is_file():
        if expired:
            path.unlink(missing_ok=True)
        raise NotFound(f"the file of export {job_id} has expired: run the export again", code="export_expired")
    return path, result


def download_name(project: dict[str, Any], job_id: str, extension: str) -> str:
    """The file name a download is saved under: the project's name (letters, digits, - and _) and the job."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", project["name"]).strip("-")[:60] or "export"
    return f"{slug}-{job_id}.{extension}"


def remove_files(exports_dir: Path, organization_id: str, job_id: str) -> int:
    """Every file of export job ``job_id`` (each attempt's, finished or not); how many were removed."""
    removed = 0
    for path in (exports_dir / organization_id).glob(f"{job_id}-*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def remove_expired(exports_dir: Path, retention_hours: float, *, now: float | None = None) -> int:
    """Delete export files (finished or left over by a crash) older than ``retention_hours``; how many."""
    if not exports_dir.is_dir():
        return 0
    cutoff = (now if now is not None else datetime.now(UTC).timestamp()) - retention_hours * 3600
    removed = 0
    for path in exports_dir.glob("*/*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another runner removed it first
            continue
    return removed

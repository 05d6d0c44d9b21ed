"""Imports of files as jobs: the file is uploaded (streamed to ``<data_dir>/imports``), an ``import``
job is enqueued, and the job reads the file in its format and stores its tasks in blocks.

Every format becomes the same numbered items (see :mod:`truthset.services.task_stream`) that the
bulk route's importer (:func:`truthset.services.tasks.import_tasks`) checks and stores: one code
path for validation, idempotence (``unique_id``, or the content hash), ``on_error`` and the report.
A job that dies mid-import is claimed again and reads the file again from the start; the rows the
first run stored are found by their ``unique_id`` or content hash and count as ``existing``.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
from sqlalchemy import select

from truthset.config import Settings
from truthset.domain import JobStatus, Principal
from truthset.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    TruthsetError,
    full_disk_is_storage_full,
)
from truthset.questions import media_reference
from truthset.services import jobs, media, netguard
from truthset.services.jobs import JobContext, JobFailed
from truthset.services.policy import Action, require
from truthset.services.projects import load_project, require_active
from truthset.services.task_stream import Bad, Item, json_array_items, jsonl_items, task_from_columns
from truthset.services.tasks import OnError, _batch_for_tasks, import_tasks
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.files import make_private_dirs
from truthset.storage.ids import new_id

__all__ = ["FORMATS", "JOB_KIND", "format_for", "run_import", "start_import"]

JOB_KIND = "import"

#: format -> what it is (the names the API's ``format`` parameter takes)
FORMATS: dict[str, str] = {
    "jsonl": "one task object per line",
    "json": "a JSON array of task objects",
    "csv": "a header row, then one task per row",
    "parquet": "one task per row (Hugging Face datasets saved as Parquet too)",
    "label-studio": "Label Studio's JSON task list, annotations and predictions kept in metadata",
    "images": "a zip of images: one task per image",
    "urls": "a list of image URLs (one per line, or JSON lines with a url): each image fetched, one task per URL",
}
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".zip": "images",
    ".txt": "urls",
    ".urls": "urls",
}
_READ_BYTES = 1 << 20
_FILE = {"field": "file"}
_PARQUET_BATCH_ROWS = 1000
_LEFTOVER_SECONDS = 3600.0
_PERMANENT = (InvalidInput, TooLarge, NotFound, Forbidden, Conflict)
#: the formats whose items become images of the spec's image field
_IMAGE_FORMATS = ("images", "urls")


def format_for(filename: str, given: str | None) -> str:
    """The format named by ``given``, else by the file's extension; a 422 naming the choices otherwise."""
    # label_studio as exports spell it is label-studio here
    fmt = given.strip().lower().replace("_", "-") if given else _SUFFIXES.get(PurePosixPath(filename).suffix.lower())
    if fmt not in FORMATS:
        names = ", ".join(FORMATS)
        what = f"unknown format {given!r}" if given else f"cannot tell the format of {filename!r} by its extension"
        raise InvalidInput(f"{what}: use one of {names}", details={"field": "format", "formats": list(FORMATS)})
    return fmt


# --- the upload (the API's side) -----------------------------------------------------------------


def start_import(
    db: Database,
    principal: Principal,
    project_id: str,
    chunks: Iterable[bytes],
    *,
    settings: Settings,
    filename: str,
    format: str | None = None,
    on_error: OnError = "reject",
    batch_id: str | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    """Receive an import file and enqueue the job that imports it; returns the job (as the API shows it).

    Everything that can be judged before reading the rows is judged here, so that a wrong request
    is a 4xx now rather than a failed job later: the project, the permission, the batch, the format,
    the size limit, an image field for a zip, and the archive itself (zip-slip, zip-bomb).
    """
    fmt = format_for(filename, format)
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        require_active(project)
        _batch_for_tasks(conn, principal, project_id, batch_id)
    image_field = _image_field(project, field) if fmt in _IMAGE_FORMATS else None
    _sweep(db, principal.organization_id, settings.imports_dir / principal.organization_id)
    name = f"{new_id()}{PurePosixPath(filename).suffix.lower()[:10]}"
    relative = f"{principal.organization_id}/{name}"
    path = _receive(chunks, settings.imports_dir / relative, settings.max_import_file_bytes)
    try:
        _check_file(path, fmt, settings)
        payload = {
            "project_id": project_id,
            "batch_id": batch_id,
            "format": fmt,
            "on_error": on_error,
            "field": image_field,
            "file": relative,
            "filename": filename[:300],
            "bytes": path.stat().st_size,
        }
        with db.write() as conn:
            job = jobs.enqueue(conn, principal.organization_id, JOB_KIND, payload, created_by=principal.member_id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return jobs.public(job)


def _sweep(db: Database, organization_id: str, folder: Path) -> None:
    """Delete the organization's uploads that no job will read: a job canceled while queued (its
    handler, which deletes the file, never ran), or an upload cut off by a crash. Only files older
    than :data:`_LEFTOVER_SECONDS`, so an upload whose job is being written is never touched."""
    if not folder.is_dir():
        return
    now = time.time()
    old = [path for path in folder.iterdir() if path.is_file() and now - path.stat().st_mtime > _LEFTOVER_SECONDS]
    if not old:
        return
    waiting = (
        select(t.jobs.c.payload)
        .where(t.jobs.c.organization_id == organization_id, t.jobs.c.kind == JOB_KIND)
        .where(t.jobs.c.status.in_([str(JobStatus.QUEUED), str(JobStatus.RUNNING)]))
    )
    with db.read() as conn:
        kept = {payload.get("file") for payload in conn.execute(waiting).scalars()}
    for path in old:
        if f"{organization_id}/{path.name}" not in kept:
            path.unlink(missing_ok=True)


def _image_field(project: dict[str, Any], field: str | None) -> str:
    """The spec's image field the images go to: ``field``, or the spec's only image field."""
    images = [f["name"] for f in project["spec"].get("fields", []) if f.get("type") == "image"]
    if field is not None:
        if field not in images:
            message = f"the project has no image field {field!r} (image fields: {', '.join(images) or 'none'})"
            raise InvalidInput(message, details={"field": "field"})
        return field
    if len(images) != 1:
        which = "no image field" if not images else f"several image fields ({', '.join(images)}): pass field"
        message = f"an import of images needs one image field in the spec; this one has {which}"
        raise InvalidInput(message, details={"field": "field"})
    return images[0]


@full_disk_is_storage_full("the imports directory")
def _receive(chunks: Iterable[bytes], path: Path, max_bytes: int) -> Path:
    """Stream the upload to ``path`` (owner-only), refusing it past ``max_bytes``; durable once returned."""
    make_private_dirs(path.parent)
    size = 0
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".upload-", delete=False) as tmp:
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"the import file is larger than {max_bytes} bytes", details={"limit": max_bytes})
                tmp.write(chunk)
            tmp.flush()
            os.fsync(tmp.fileno())  # the job may run after a restart: the file must be there
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, path)
    return path


def _check_file(path: Path, fmt: str, settings: Settings) -> None:
    if fmt == "images":
        with _open_zip(path) as archive:
            safe_entries(archive, settings)
    elif fmt == "parquet":
        _parquet_file(path)
    elif fmt == "urls":
        url_count = sum(1 for _ in url_entries(path))
        if url_count > settings.max_import_entries:
            message = f"the list holds {url_count} URLs, more than {settings.max_import_entries}"
            raise TooLarge(message, details={"limit": settings.max_import_entries})
    if path.stat().st_size == 0:
        raise InvalidInput("the import file is empty", details=_FILE)


# --- the job (the runner's side) ------------------------------------------------------------------


def run_import(db: Database, job: JobContext, settings: Settings) -> dict[str, Any]:
    """The ``import`` job: read the uploaded file in its format and store its tasks.

    Progress: while the file is checked, ``done`` counts the rows read and ``total`` is null; then
    ``total`` is the number of rows to store and ``done`` counts the rows stored. The file is
    deleted once the job has an outcome (succeeded, failed for good, canceled); a run that stops for
    a retry or a runner's shutdown leaves it for the next run.
    """
    payload = job.payload
    path = settings.imports_dir / str(payload.get("file", ""))
    if not payload.get("file") or ".." in Path(str(payload["file"])).parts or not path.is_file():
        raise JobFailed("the uploaded file is gone (deleted, or the data directory is not shared with this worker)")
    finished = True
    try:
        principal = jobs.started_by(db, job, Action.MANAGE_TASKS, "import")
        items = _items(path, payload, principal, db, settings, job)

        def progress(done: int, total: int | None) -> None:
            job.progress(done, total)

        report = import_tasks(
            db,
            principal,
            str(payload["project_id"]),
            items,
            batch_id=payload.get("batch_id"),
            on_error=payload.get("on_error", "reject"),
            max_task_bytes=settings.max_task_bytes,
            progress=progress,
        )
        if report.refused:
            raise JobFailed(report.refusal().message, result=report.as_dict())
        return report.as_dict()
    except jobs.JobLost:
        finished = False  # another runner has the job now, and reads the file
        raise
    except (JobFailed, jobs.JobCanceled):
        raise
    except _PERMANENT as exc:
        # bad input in the file itself (not JSON, not a zip), or a project or batch gone or closed:
        # a retry cannot fix it (a busy database or a full disk, by contrast, is retried)
        raise JobFailed(f"{exc.code}: {exc.message}") from None
    except BaseException:
        finished = False
        raise
    finally:
        if finished:
            path.unlink(missing_ok=True)


def _items(
    path: Path, payload: dict[str, Any], principal: Principal, db: Database, settings: Settings, job: JobContext
) -> Iterator[tuple[int, Any]]:
    fmt = payload.get("format")
    limit = settings.max_task_bytes
    if fmt == "jsonl":
        return jsonl_items(_file_chunks(path), limit)
    if fmt == "json":
        return json_array_items(_file_chunks(path), limit)
    if fmt == "label-studio":
        return label_studio_items(json_array_items(_file_chunks(path), limit))
    if fmt == "csv":
        return csv_items(path, _spec_fields(db, principal, payload))
    if fmt == "parquet":
        return parquet_items(path, _spec_fields(db, principal, payload))
    if fmt == "images":
        check_first = payload.get("on_error") != "skip"
        return _ImageStore(db, principal, settings, str(payload["field"]), check_first).items(path, job)
    if fmt == "urls":
        check_first = payload.get("on_error") != "skip"
        return _UrlStore(db, principal, settings, str(payload["field"]), check_first).items(path, job)
    raise JobFailed(f"unknown import format {fmt!r}")


def _spec_fields(db: Database, principal: Principal, payload: dict[str, Any]) -> frozenset[str]:
    with db.read() as conn:
        project = load_project(conn, principal, str(payload["project_id"]))
    return frozenset(f["name"] for f in project["spec"].get("fields", []))


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(_READ_BYTES):
            yield block


# --- readers: each format as numbered items -------------------------------------------------------


def label_studio_items(items: Iterable[tuple[int, Item]]) -> Iterator[tuple[int, Any]]:
    """Label Studio tasks (``[{"id", "data", "annotations", "predictions", ...}]``) as truthset tasks.

    ``data`` becomes the task's data; everything else Label Studio keeps with a task (its id,
    ``annotations``, ``predictions``, ``meta``, ``drafts``...) is kept whole in
    ``metadata.label_studio``, so nothing is lost and an export can give it back. The annotations
    are not turned into responses: their authors are not workers of this organization. A list item
    without ``data`` is, as Label Studio reads it too, the data itself.
    """
    for number, item in items:
        value = item.value
        if not isinstance(value, dict):
            yield number, Bad("a Label Studio task must be a JSON object")
            continue
        if "data" not in value:
            yield number, Item({"data": value}, item.size)
            continue
        if not isinstance(value["data"], dict):
            yield number, Bad("data: a Label Studio task's data must be an object")
            continue
        kept = {key: part for key, part in value.items() if key != "data"}
        yield number, Item({"data": value["data"], "metadata": {"label_studio": kept} if kept else {}}, item.size)


def csv_items(path: Path, fields: frozenset[str]) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV file (UTF-8, a header row) as tasks, numbered by the file line they end on.

    Bytes that are not UTF-8 make only their row bad (read with ``surrogateescape`` and checked per
    row), and a row with more or fewer cells than the header is bad by itself: with
    ``on_error=skip`` the other rows are imported.
    """
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput(f"line 1: not a CSV header: {exc}", details=_FILE) from None
        problem = _not_utf8([*header]) or _bad_header(header)
        if problem:
            raise InvalidInput(f"line 1: {problem}", details=_FILE)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, Bad(f"not valid CSV: {exc}")
                continue
            if not cells:
                continue  # a blank line
            yield reader.line_num, _csv_row(header, cells, fields)


def _csv_row(header: list[str], cells: list[str], fields: frozenset[str]) -> Any:
    if len(cells) != len(header):
        return Bad(f"has {len(cells)} cells, the header has {len(header)}")
    if problem := _not_utf8(cells):
        return Bad(problem)
    task = task_from_columns(dict(zip(header, cells, strict=True)), fields, text=True)
    return Item(task, sum(map(len, cells)))


def _not_utf8(cells: list[str]) -> str | None:
    for cell in cells:
        if not cell.isascii():
            try:
                cell.encode("utf-8")
            except UnicodeEncodeError:
                return "not UTF-8 text"
    return None


def _bad_header(header: list[str]) -> str | None:
    if len(set(header)) != len(header):
        return "the header names a column twice"
    if any(not name for name in header):
        return "the header has an empty column name"
    return None


def _parquet_file(path: Path) -> Any:
    import pyarrow.parquet as pq  # only imports of Parquet files load pyarrow

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError... for a file that is not Parquet
        raise InvalidInput(f"not a Parquet file: {exc}", details=_FILE) from None


def parquet_items(path: Path, fields: frozenset[str]) -> Iterator[tuple[int, Any]]:
    """Rows of a Parquet file as tasks, read in record batches (memory stays flat), numbered from 1.

    Columns map as CSV's do. A file with a ``data`` column of objects holds whole tasks (the
    shape of a truthset JSONL line). Values must be JSON: a binary column (an image a Hugging Face
    dataset embeds) makes its row bad, naming the column.
    """
    parquet = _parquet_file(path)
    shaped = "data" in parquet.schema_arrow.names
    number = 0
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, _parquet_row(row, fields, shaped)
    except (OSError, ValueError) as exc:  # a damaged row group: the rows after it cannot be read
        message = f"row {number + 1}: the Parquet file cannot be read: {exc}"
        raise InvalidInput(message, details=_FILE) from None


def _parquet_row(row: dict[str, Any], fields: frozenset[str], shaped: bool) -> Any:
    try:
        # dates, times and decimals become JSON (orjson writes them as RFC 3339 strings, floats)
        as_json = orjson.loads(orjson.dumps(row, default=_parquet_value))
    except TypeError as exc:  # orjson's error wraps the reason _parquet_value gave
        return Bad(str(exc.__cause__ or exc))
    task = as_json if shaped else task_from_columns(as_json, fields, text=False)
    return Item({k: v for k, v in task.items() if v is not None}, 0)


def _parquet_value(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray):
        raise TypeError("a column holds binary data (an embedded image?), which a task cannot hold")
    raise TypeError(f"a column holds {type(value).__name__} values, which are not JSON")


# --- a zip of images ------------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")
_SYMLINK = 0o120000


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"not a zip archive: {exc}", details=_FILE) from None


def safe_entries(archive: zipfile.ZipFile, settings: Settings) -> list[zipfile.ZipInfo]:
    """The archive's files to import, after refusing an unsafe archive as a whole.

    Refused (with the entry's name): an absolute path, a drive letter or a ``..`` part (zip-slip:
    nothing is ever extracted by name here, but such an archive is hostile or broken), a symbolic
    link, an encrypted entry, more than ``max_import_entries`` entries, an image larger than
    ``max_upload_bytes``, or more than ``max_import_file_bytes`` in all once unpacked (zip-bomb).
    Folders, hidden files (``.name``) and macOS's ``__MACOSX`` folder are passed over.
    """
    infos = archive.infolist()
    if len(infos) > settings.max_import_entries:
        raise TooLarge(f"the archive holds {len(infos)} entries, more than {settings.max_import_entries}")
    total = 0
    kept = []
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts:
            message = f"entry {name!r}: an absolute path or '..' is refused in an archive (zip-slip)"
            raise InvalidInput(message, details=_FILE)
        if (info.external_attr >> 16) & 0o170000 == _SYMLINK:
            raise InvalidInput(f"entry {name!r}: a symbolic link is refused in an archive", details=_FILE)
        if info.flag_bits & 0x1:
            raise InvalidInput(f"entry {name!r}: encrypted entries cannot be imported", details=_FILE)
        if info.is_dir() or any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue
        if info.file_size > settings.max_upload_bytes:
            raise TooLarge(f"entry {name!r} unpacks to {info.file_size} bytes, more than {settings.max_upload_bytes}")
        total += info.file_size
        if total > settings.max_import_file_bytes:
            raise TooLarge(f"the archive unpacks to more than {settings.max_import_file_bytes} bytes (zip-bomb guard)")
        kept.append(info)
    return sorted(kept, key=lambda info: info.filename)


@dataclass
class _ImageStore:
    """Stores a zip's images as media and yields one task per image (``{field: "media:<id>"}``).

    With ``check_first`` (``on_error=reject``) every image is decoded before the first is stored,
    so a rejected import leaves no new media behind.
    """

    db: Database
    principal: Principal
    settings: Settings
    field: str
    check_first: bool

    def items(self, path: Path, job: JobContext) -> Iterator[tuple[int, Any]]:
        with _open_zip(path) as archive:
            entries = safe_entries(archive, self.settings)
            if self.check_first:
                problems = ((n, self._problem(archive, info, job)) for n, info in enumerate(entries, start=1))
                bad = [(number, problem) for number, problem in problems if problem]
                if bad:
                    for number, problem in bad:
                        yield number, Bad(problem)
                    return
            for number, info in enumerate(entries, start=1):
                yield number, self._task(archive, info)

    def _chunks(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """The entry's bytes, never more than it declared (zipfile stops there and checks the CRC)."""
        read = 0
        with archive.open(info) as entry:
            while block := entry.read(_READ_BYTES):
                read += len(block)
                if read > info.file_size:
                    raise TooLarge(f"entry {info.filename!r} unpacks to more than it declares")
                yield block

    def _problem(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, job: JobContext) -> str | None:
        job.heartbeat()
        with tempfile.NamedTemporaryFile(prefix="truthset-image-") as tmp:
            try:
                for block in self._chunks(archive, info):
                    tmp.write(block)
                tmp.flush()
                media.inspect_image(tmp.name)
            except (TruthsetError, zipfile.BadZipFile, OSError) as exc:
                return f"{info.filename}: {getattr(exc, 'message', exc)}"
        return None

    def _task(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
        try:
            row = media.store(
                self.db,
                self.principal,
                self._chunks(archive, info),
                filename=PurePosixPath(info.filename).name,
                media_dir=self.settings.media_dir,
                max_bytes=self.settings.max_upload_bytes,
            )
        except (InvalidInput, TooLarge, NotFound, zipfile.BadZipFile) as exc:
            return Bad(f"{info.filename}: {getattr(exc, 'message', exc)}")
        metadata = {"file": info.filename, "width": row.get("width"), "height": row.get("height")}
        return Item({"data": {self.field: media_reference(row["id"])}, "metadata": metadata}, 0)


# --- a list of image URLs -------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlEntry:
    """One line of a URL list: the URL, and what a JSON line gives with it."""

    url: str
    unique_id: str | None = None
    metadata: dict[str, Any] | None = None


def url_entries(path: Path) -> Iterator[tuple[int, UrlEntry | Bad]]:
    """The lines of a URL list, numbered as in the file: a URL, or a JSON object with ``url`` (and
    optionally ``unique_id`` and ``metadata``). Blank lines and lines starting with ``#`` are skipped."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            yield number, _url_entry(line)


def _url_entry(line: bytes) -> UrlEntry | Bad:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return Bad("not UTF-8 text")
    if not text.startswith("{"):
        return UrlEntry(text) if _looks_like_url(text) else Bad(f"not an http(s) URL: {text[:200]!r}")
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Bad(f"invalid JSON: {exc}")
    url, unique_id, metadata = value.get("url"), value.get("unique_id"), value.get("metadata", {})
    if not isinstance(url, str) or not _looks_like_url(url):
        return Bad('url: a JSON line needs a "url" holding an http(s) URL')
    if unique_id is not None and not isinstance(unique_id, str):
        return Bad("unique_id: must be a string")
    if not isinstance(metadata, dict):
        return Bad("metadata: must be an object")
    return UrlEntry(url, unique_id, metadata)


def _looks_like_url(text: str) -> bool:
    # the guard judges the URL itself (scheme, host, address) when it is fetched; here only the shape
    return text.lower().startswith(("http://", "https://")) and " " not in text


@dataclass
class _UrlStore:
    """Fetches each URL's image through the network guard (:func:`netguard.fetch_image`: private
    addresses refused unless allowed, size and time limits, decoded by Pillow), stores it as media
    and yields one task per URL (``{field: "media:<id>"}``, the URL and size in metadata).

    With ``check_first`` (``on_error=reject``) every image is fetched (into a temporary folder of
    the imports directory) before the first is stored, so a rejected import leaves no new media
    and no URL is fetched twice.
    """

    db: Database
    principal: Principal
    settings: Settings
    field: str
    check_first: bool

    def items(self, path: Path, job: JobContext) -> Iterator[tuple[int, Any]]:
        entries = list(url_entries(path))  # at most max_import_entries (checked at upload)
        if not self.check_first:
            for number, entry in entries:
                yield number, self._store(entry, self._fetch(entry, job))
            return
        folder = self.settings.imports_dir / self.principal.organization_id
        make_private_dirs(folder)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".urls-") as spool:
            fetched = []
            for number, entry in entries:
                image = self._fetch(entry, job)
                if isinstance(image, Bad):
                    fetched.append((number, entry, image))
                    continue
                saved = Path(spool) / f"{number}"
                saved.write_bytes(image[0])
                fetched.append((number, entry, (saved, *image[1:])))
            bad = [(number, image) for number, _, image in fetched if isinstance(image, Bad)]
            if bad:
                yield from bad
                return
            for number, entry, (saved, *rest) in fetched:  # type: ignore[misc]
                yield number, self._store(entry, (saved.read_bytes(), *rest))

    def _fetch(self, entry: UrlEntry | Bad, job: JobContext) -> Any:
        if isinstance(entry, Bad):
            return entry
        job.heartbeat()
        try:
            return netguard.fetch_image(entry.url, self.settings)
        except InvalidInput as exc:  # refused by the guard, or failed: this URL's error
            return Bad(f"{entry.url}: {exc.message.removeprefix('url: ')}")

    def _store(self, entry: UrlEntry | Bad, image: Any) -> Any:
        if isinstance(entry, Bad) or isinstance(image, Bad):
            return entry if isinstance(entry, Bad) else image
        content, _content_type, width, height = image
        name = PurePosixPath(entry.url.split("?", 1)[0]).name[:200] or "image"
        try:
            row = media.store(
                self.db, self.principal, [content], filename=name,
                media_dir=self.settings.media_dir, max_bytes=self.settings.max_upload_bytes,
            )  # fmt: skip
        except (InvalidInput, TooLarge) as exc:
            return Bad(f"{entry.url}: {exc.message}")
        metadata = {**(entry.metadata or {}), "url": entry.url, "width": width, "height": height}
        task: dict[str, Any] = {"data": {self.field: media_reference(row["id"])}, "metadata": metadata}
        if entry.unique_id is not None:
            task["unique_id"] = entry.unique_id
        return Item(task, 0)

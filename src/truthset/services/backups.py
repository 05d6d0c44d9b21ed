"""Backups of the embedded set-up: the SQLite database and the files of the data directory, and restores.

A backup is a new directory holding everything a server needs to come back as it was:

- ``truthset.db``: one snapshot of the database, taken while the server runs (see
  :mod:`truthset.storage.backup`), checked with ``PRAGMA integrity_check``;
- ``media/`` (uploaded images and files) and ``models/`` (trained model versions), copied after the
  snapshot: those files are written before the rows that name them and never changed or deleted, so
  every file the snapshot names is there (a file newer than the snapshot is copied too, harmlessly);
- ``webhook-secret.key``, the key that seals webhook secrets in the database, when it lives in the
  data directory (when it is set in the settings, keep it with the backup yourself);
- ``backup.json``: when, from where, the schema revision and the row counts.

Left out: ``exports/`` (finished export files, made again by a new export) and ``imports/`` (uploads
being imported). The directory is built under a temporary name and renamed when complete, so a
crash never leaves a half backup under the name asked for.

PostgreSQL has its own tools (``pg_dump``), which copy one consistent snapshot of a live database;
docs/guide.md ("Backups") shows the commands.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from truthset import __version__
from truthset.config import Settings
from truthset.errors import Conflict, InvalidInput
from truthset.services.media import LOCK_FILE
from truthset.services.webhooks import KEY_FILE
from truthset.storage import backup as sqlite_backup
from truthset.storage import upgrade
from truthset.storage.files import PRIVATE_FILE, data_dir_in_use, make_private_dirs, sqlite_file
from truthset.storage.ids import utcnow
from truthset.storage.migrate import known_revision

DATABASE = "truthset.db"
MANIFEST = "backup.json"
FILE_TREES = ("media", "models")


@dataclass(frozen=True)
class BackupReport:
    path: str
    revision: str | None
    counts: dict[str, int]
    database_bytes: int
    files: int
    file_bytes: int
    webhook_key: str  # "copied", "settings" (set in the settings: not in the backup) or "none"
    seconds: float


@dataclass(frozen=True)
class RestoreReport:
    database: str
    revision: str | None
    counts: dict[str, int]
    files: int
    webhook_key: str  # "restored", "settings" or "none"
    seconds: float


def backup(settings: Settings, destination: Path) -> BackupReport:
    """Copy the database and the data directory's files into the new directory ``destination``."""
    started = time.perf_counter()
    source = _sqlite_path(settings, "backup")
    destination = destination.absolute()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise Conflict(f"{destination} already exists: name a new directory for the backup")
    partial = destination.with_name(f".{destination.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)  # left by a backup that did not finish
    make_private_dirs(partial)
    try:
        check = sqlite_backup.copy_database(source, partial / DATABASE)  # first: every file it names exists
        files, file_bytes = 0, 0
        for tree in FILE_TREES:
            copied, size = _copy_tree(settings.data_dir / tree, partial / tree)
            files, file_bytes = files + copied, file_bytes + size
        key = _backup_key(settings, partial)
        report = BackupReport(
            str(destination), check.revision, check.counts, check.size, files, file_bytes, key,
            round(time.perf_counter() - started, 2),
        )  # fmt: skip
        _write_private(partial / MANIFEST, _manifest(settings, source, report))
        if destination.exists():
            destination.rmdir()  # the empty directory it was asked to fill
        os.replace(partial, destination)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return report


def restore(settings: Settings, source: Path, *, force: bool = False) -> RestoreReport:
    """Make the configured database and data directory those of the backup ``source``.

    Refused, before anything is written, when ``source`` is not a sound backup (no manifest, a
    damaged database, a schema newer than this version), and when the database it would replace
    holds data or the data directory has another webhook key, unless ``force``; and whenever a
    `truthset serve` or `truthset worker` holds the data directory (it would keep caches of what the
    restore replaces). The restored database is then
    migrated to this version's schema, as ``truthset db upgrade`` does.
    """
    started = time.perf_counter()
    target = _sqlite_path(settings, "restore")
    source = source.absolute()
    manifest = _read_manifest(source)
    check = sqlite_backup.check_database(source / DATABASE)
    if check.revision is not None and not known_revision(check.revision):
        raise InvalidInput(
            f"the backup's schema is at revision {check.revision}, which this version of truthset does not know: "
            "it was made by a newer truthset; restore it with that version"
        )
    if data_dir_in_use(settings.data_dir):
        raise Conflict(
            f"a truthset server or worker is running on {settings.data_dir}: stop it, then restore "
            "(it would go on with what it cached of the database it replaced)"
        )
    if not force:
        _refuse_to_replace(settings, target, source)
    make_private_dirs(target.parent)
    sqlite_backup.restore_database(source / DATABASE, target)
    files = sum(_copy_tree(source / tree, settings.data_dir / tree)[0] for tree in FILE_TREES)
    key = _restore_key(settings, source, manifest)
    upgrade(settings.resolved_database_url)
    after = sqlite_backup.check_database(target, integrity=False)  # the pages are the backup's, checked above
    return RestoreReport(str(target), after.revision, after.counts, files, key, round(time.perf_counter() - started, 2))


def _sqlite_path(settings: Settings, verb: str) -> Path:
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite":
        raise InvalidInput(
            f"truthset db {verb} works on the embedded SQLite database; this server uses "
            f"{url.render_as_string(hide_password=True)}: use PostgreSQL's pg_dump and pg_restore, and copy the "
            'data directory\'s media/ and models/ (docs/guide.md, "Backups")'
        )
    database = sqlite_file(settings.resolved_database_url)
    if database is None:
        raise InvalidInput(f"truthset db {verb} needs a database file, not {url.database or 'an in-memory database'}")
    return database.absolute()


def _copy_tree(source: Path, target: Path) -> tuple[int, int]:
    """Copy the files under ``source`` that ``target`` lacks or holds otherwise; (files, bytes) copied."""
    copied, size = 0, 0
    if not source.is_dir():
        return copied, size
    for directory, _, names in os.walk(source):
        here = Path(directory)
        there = target / here.relative_to(source)
        make_private_dirs(there)
        for name in names:
            if _being_written(name) or name == LOCK_FILE:  # the media store's lock holds no data
                continue
            origin, copy = here / name, there / name
            try:
                if copy.exists() and filecmp.cmp(origin, copy, shallow=False):
                    continue
                _copy_private(origin, copy)
            except FileNotFoundError:
                continue  # a temporary file removed while the tree was walked
            copied, size = copied + 1, size + copy.stat().st_size
    return copied, size


def _being_written(name: str) -> bool:
    """A file still being written: an upload's temporary file (services/media.py, ``tmp...``) or a
    model version in training (services/model_training.py, ``....part``); each gets its final name
    only once whole, before the row that names it is committed."""
    return name.startswith("tmp") or name.endswith(".part")


def _copy_private(origin: Path, copy: Path) -> None:
    """Copy a file so that only the server's user may read the copy (it may hold keys or customer data)."""
    shutil.copyfile(origin, copy)
    os.chmod(copy, PRIVATE_FILE)


def _backup_key(settings: Settings, partial: Path) -> str:
    if settings.webhook_secret_key:
        return "settings"
    key = settings.data_dir / KEY_FILE
    if not key.is_file():
        return "none"
    _copy_private(key, partial / KEY_FILE)
    return "copied"


def _restore_key(settings: Settings, source: Path, manifest: dict[str, Any]) -> str:
    if (source / KEY_FILE).is_file():
        make_private_dirs(settings.data_dir)
        _copy_private(source / KEY_FILE, settings.data_dir / KEY_FILE)
        return "restored"
    return "settings" if manifest.get("webhook_key") == "settings" else "none"


def _refuse_to_replace(settings: Settings, target: Path, source: Path) -> None:
    """A Conflict when the restore would overwrite data: a database with rows, another webhook key."""
    if target.exists() and target.stat().st_size > 0:
        counts = sqlite_backup.check_database(target, integrity=False).counts  # the rows, not every page
        held = {name: count for name, count in counts.items() if count}
        if held:
            what = ", ".join(f"{count} {name}" for name, count in held.items())
            raise Conflict(
                f"{target} holds data ({what}): stop the server, then pass --force to replace it with the backup"
            )
    key, backed_up = settings.data_dir / KEY_FILE, source / KEY_FILE
    if key.is_file() and backed_up.is_file() and not filecmp.cmp(key, backed_up, shallow=False):
        raise Conflict(f"{key} differs from the backup's webhook key: pass --force to replace it")


def _manifest(settings: Settings, source: Path, report: BackupReport) -> dict[str, Any]:
    return {
        "format": 1,
        "created_at": utcnow().isoformat() + "Z",
        "truthset_version": __version__,
        "source": {"database": str(source), "data_dir": str(settings.data_dir.absolute())},
        **{key: value for key, value in asdict(report).items() if key not in ("path", "seconds")},
    }


def _read_manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    if not path.is_file():
        raise InvalidInput(
            f"{source} is not a truthset backup: it has no {MANIFEST} (make one with truthset db backup)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != 1:
        raise InvalidInput(f"{path} is not a backup manifest this version of truthset reads (format 1)")
    return manifest


def _write_private(path: Path, value: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w") as out:
        json.dump(value, out, indent=2)
        out.write("\n")

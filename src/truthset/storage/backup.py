"""Copies of a SQLite database taken while a server uses it: one snapshot, written whole, then checked.

Why SQLite's online backup API (``sqlite3.Connection.backup``) and not a copy of the file: with
write-ahead logging, committed pages live in the database file *and* its ``-wal`` file until a
checkpoint moves them, and a file copy taken while the server writes can mix two moments or miss
the newest commits. The backup API copies the pages of one read transaction, all in one step, so
the copy is exactly the database as of one commit; in WAL mode a reader never blocks writers, so
the annotation loop goes on meanwhile (the ``-wal`` file only grows until the copy ends, as during a
long export). Copying in several steps would let another process's commit restart the copy from
the start, over and over on a busy server.

The copy is written under a temporary name, switched to a rollback journal (a backup is one
self-contained file, with no ``-wal`` beside it), checked with ``PRAGMA integrity_check``, fsynced and
only then renamed: a crash mid-copy never leaves a file that looks like a finished backup.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from truthset.errors import DatabaseUnusable
from truthset.storage.files import fsync_path, make_private_file

#: Tables counted in a backup's summary, so an operator can see at a glance what a copy holds.
COUNTED_TABLES = ("organizations", "members", "projects", "tasks", "responses", "reviews")


@dataclass(frozen=True)
class DatabaseCheck:
    """What a SQLite file holds: its schema revision (None before any migration) and row counts."""

    revision: str | None
    counts: dict[str, int]
    size: int


def copy_database(source: Path, target: Path) -> DatabaseCheck:
    """Copy the SQLite database ``source`` (in use or not) to the new file ``target`` as one snapshot;
    returns what the copy holds (checked before the copy takes its name)."""
    if not source.is_file():
        raise DatabaseUnusable(f"there is no SQLite database at {source}")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    make_private_file(partial)
    try:
        _backup(source, partial, journal="delete")
        check = check_database(partial)
        fsync_path(partial)
        os.replace(partial, target)
        fsync_path(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return DatabaseCheck(check.revision, check.counts, target.stat().st_size)


def restore_database(source: Path, target: Path) -> None:
    """Make the SQLite database ``target`` a copy of the backup ``source``, in one transaction.

    Written through the backup API into ``target`` itself (created if missing): SQLite takes the
    target's write lock and replaces its pages atomically, so a reader sees the old database or the
    restored one, never a mix, and a crash mid-restore leaves the old one. The restored database is
    put in WAL mode, as the server keeps it. Check ``source`` first (:func:`check_database`).
    """
    make_private_file(target)  # a new data directory: the database file is the server's user's alone
    _backup(source, target, journal="wal")


def check_database(path: Path, *, integrity: bool = True) -> DatabaseCheck:
    """The schema revision and row counts of the SQLite file ``path``, after ``PRAGMA integrity_check``
    (which reads every page: ``integrity=False`` skips it for a file just checked); a file that is
    not a sound SQLite database raises :class:`DatabaseUnusable` naming the problem."""
    if not path.is_file():
        raise DatabaseUnusable(f"there is no SQLite database at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DatabaseUnusable(f"{path} cannot be opened: {exc}") from None
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")] if integrity else ["ok"]
        if problems != ["ok"]:
            raise DatabaseUnusable(f"{path} is damaged: {'; '.join(problems[:3])}")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        counts = {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in COUNTED_TABLES
            if name in tables
        }
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnusable(f"{path} is not a SQLite database ({exc})") from None
    finally:
        conn.close()
    return DatabaseCheck(revision, counts, path.stat().st_size)


def _backup(source: Path, target: Path, *, journal: str) -> None:
    """Every page of one snapshot of ``source`` into ``target`` (pages=-1: one step, one read transaction)."""
    try:
        reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise DatabaseUnusable(f"{source} cannot be opened: {exc}") from None
    writer = sqlite3.connect(target, timeout=30)
    try:
        reader.backup(writer, pages=-1)
        writer.execute(f"PRAGMA journal_mode={journal}")
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnusable(f"copying {source} to {target} failed: {exc}") from None
    finally:
        writer.close()
        reader.close()

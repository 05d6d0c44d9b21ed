"""The data directory, the SQLite database (with its -wal and -shm) and the media store are owner-only.

Made under the usual umask 022, which would leave them world-readable: they hold password and API
key hashes and the organizations' data.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from truthset.services import accounts, media
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.files import make_private_dirs

PNG = bytes.fromhex(  # a whole 1 x 1 PNG: uploads are decoded, so the checksums must be right
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c636800000082008177cd72b60000000049454e44ae426082"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def world_readable_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("world_readable_umask")
def test_a_fresh_data_directory_and_database_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "srv" / "data"
    db = Database(f"sqlite:///{data_dir / 'truthset.db'}")
    try:
        db.create_all()
        accounts.init_organization(db, "Acme", "owner@acme.example")  # hashes: the reason for all this
        with db.read() as conn:
            assert conn.execute(select(t.members.c.password_hash)).scalar_one()
        files = {p.name for p in data_dir.iterdir()}
        assert {"truthset.db", "truthset.db-wal", "truthset.db-shm"} <= files, files
        for name in ("truthset.db", "truthset.db-wal", "truthset.db-shm"):
            assert _mode(data_dir / name) == 0o600, name
    finally:
        db.dispose()
    assert _mode(data_dir) == 0o700 and _mode(data_dir.parent) == 0o700  # every directory it made


@pytest.mark.usefixtures("world_readable_umask")
def test_media_files_and_directories_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    db = Database(f"sqlite:///{data_dir / 'truthset.db'}")
    try:
        db.create_all()
        created = accounts.init_organization(db, "Acme", "owner@acme.example")
        owner = accounts.authenticate(db, created["api_key"])
        row = media.store(db, owner, [PNG], filename="dot.png", media_dir=data_dir / "media", max_bytes=1 << 20)
    finally:
        db.dispose()
    blob = media.blob_path(data_dir / "media", row["sha256"])
    assert _mode(blob) == 0o600
    assert _mode(blob.parent) == 0o700 and _mode(data_dir / "media") == 0o700


@pytest.mark.usefixtures("world_readable_umask")
def test_existing_directories_keep_their_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o750)  # an operator's choice (a backup group), not ours to change
    make_private_dirs(shared / "a" / "b")
    assert _mode(shared) == 0o750 and _mode(shared / "a") == 0o700 and _mode(shared / "a" / "b") == 0o700


def test_sqlite_file_is_the_file_a_sqlite_url_names_and_nothing_else() -> None:
    from truthset.storage.files import sqlite_file

    assert sqlite_file("sqlite:////srv/truthset/truthset.db") == Path("/srv/truthset/truthset.db")
    assert sqlite_file("sqlite:///relative.db") == Path("relative.db")
    assert sqlite_file("sqlite://") is None and sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql+psycopg://user:secret@db/truthset") is None

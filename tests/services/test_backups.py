"""Backups and restores of the embedded set-up (services/backups.py, storage/backup.py).

Real services on a real SQLite data directory: a backup taken while another thread commits answers
holds one snapshot; a restore brings back the database, the media and the webhook key as they were,
and refuses, before writing anything, whatever would lose data or is not a sound backup.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from truthset.config import Settings
from truthset.errors import Conflict, DatabaseUnusable, InvalidInput
from truthset.schemas import ProjectCreate, ResponseCreate, TaskCreate, WebhookCreate
from truthset.services import accounts, backups, media, projects, queue, tasks, webhooks
from truthset.storage import Database, upgrade
from truthset.storage import backup as sqlite_backup
from truthset.storage import tables as t
from truthset.storage.files import data_dir_in_use, hold_data_dir

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (3, 2), "red").save(out, format="PNG")
    return out.getvalue()


class Site:
    """A data directory's database, opened (and migrated) as a server opens it."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(data_dir=data_dir, sqlite_synchronous="NORMAL")
        upgrade(self.settings.resolved_database_url)
        self.db = Database(self.settings.resolved_database_url, sqlite_synchronous="NORMAL")

    def populate(self) -> Site:
        """An organization with a project of 5 tasks, an uploaded image and a webhook."""
        created = accounts.init_organization(self.db, "Acme", "owner@acme.test")
        self.key = created["api_key"]
        self.owner = accounts.authenticate(self.db, self.key)
        spec = ProjectCreate(name="Reviews", spec=SPEC, quality={"overlap": 1})
        self.project = projects.create_project(self.db, self.owner, spec)
        self.task_ids = [self.add_task(f"review {i}") for i in range(5)]
        self.image = media.store(
            self.db, self.owner, [_png()], filename="red.png", media_dir=self.settings.media_dir, max_bytes=10**6
        )
        hook = WebhookCreate.model_validate({"url": "https://93.184.216.34/hook", "events": ["task.completed"]})
        self.webhook = webhooks.create_webhook(self.db, self.settings, self.owner, hook)
        return self

    def add_task(self, text: str) -> str:
        return tasks.create_task(self.db, self.owner, self.project["id"], TaskCreate(data={"text": text}))["id"]

    def count(self, table: Any) -> int:
        with self.db.read() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    def secret(self, webhook_id: str) -> str:
        """The webhook's secret, unsealed with the key of this data directory (read afresh)."""
        webhooks._keys.clear()  # the process caches keys by path; a restored key is a new file
        with self.db.read() as conn:
            row = (
                conn.execute(select(t.webhook_subscriptions).where(t.webhook_subscriptions.c.id == webhook_id))
                .mappings()
                .one()
            )
        return webhooks.unseal(self.settings, row["organization_id"], row["id"], row["secret"])

    def close(self) -> None:
        self.db.dispose()


@pytest.fixture
def site(tmp_path: Path) -> Any:
    made = Site(tmp_path / "data").populate()
    yield made
    made.close()


def test_a_backup_holds_the_database_the_media_and_the_webhook_key(site: Site, tmp_path: Path) -> None:
    secret = site.secret(site.webhook["id"])
    report = backups.backup(site.settings, tmp_path / "backup")

    folder = tmp_path / "backup"
    assert sorted(path.name for path in folder.iterdir()) == [
        "backup.json",
        "media",
        "truthset.db",
        "webhook-secret.key",
    ]
    assert report.counts["tasks"] == 5 and report.counts["organizations"] == 1
    assert report.files == 1 and report.webhook_key == "copied"
    manifest = json.loads((folder / "backup.json").read_text())
    assert manifest["revision"] == report.revision is not None
    assert manifest["counts"] == report.counts
    assert all(oct(path.stat().st_mode & 0o777) in ("0o600", "0o700") for path in folder.rglob("*"))

    # restored into a new data directory, the site is back: its rows, its image, its webhook secret
    again = Settings(data_dir=tmp_path / "elsewhere")
    restored = backups.restore(again, folder)
    assert restored.counts == report.counts and restored.webhook_key == "restored"
    copy = Site(again.data_dir)
    try:
        assert copy.count(t.tasks) == 5
        assert copy.secret(site.webhook["id"]) == secret
        assert accounts.authenticate(copy.db, site.key).organization_id == site.owner.organization_id
    finally:
        copy.close()
    files = [p.relative_to(again.media_dir) for p in again.media_dir.rglob("*") if p.is_file()]
    source = site.settings.media_dir  # the store's lock file holds no data and is not copied
    assert files == [p.relative_to(source) for p in source.rglob("*") if p.is_file() and p.name != media.LOCK_FILE]


def test_a_backup_taken_during_writes_is_one_snapshot(site: Site, tmp_path: Path) -> None:
    """Another thread answers and adds tasks non-stop; the copy has each task with its response or neither."""
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            task_id = site.add_task(f"busy {i}")
            queue.submit(site.db, site.owner, task_id, ResponseCreate(answer={"sentiment": "positive"}))
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        threading.Event().wait(0.3)
        backups.backup(site.settings, tmp_path / "busy")
    finally:
        stop.set()
        writer.join()
    with sqlite3.connect(tmp_path / "busy" / "truthset.db") as conn:
        busy = conn.execute("SELECT count(*) FROM tasks WHERE json_extract(data, '$.text') LIKE 'busy %'").fetchone()[0]
        answered = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
        completed = conn.execute("SELECT count(*) FROM tasks WHERE status = 'completed'").fetchone()[0]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file, no -wal beside it
    assert busy > 0
    # a task and its answer are written by two transactions: the snapshot may fall between them, once
    assert answered in (busy, busy - 1) and completed == answered


def test_restore_refuses_to_replace_data_without_force(site: Site, tmp_path: Path) -> None:
    backups.backup(site.settings, tmp_path / "backup")
    site.add_task("after the backup")
    with pytest.raises(Conflict, match=r"holds data \(1 organizations.*6 tasks.*pass --force"):
        backups.restore(site.settings, tmp_path / "backup")
    assert site.count(t.tasks) == 6  # refused before anything was written

    report = backups.restore(site.settings, tmp_path / "backup", force=True)
    assert report.counts["tasks"] == 5
    assert site.count(t.tasks) == 5  # the restore is seen through a connection opened before it


def test_restore_refuses_another_webhook_key_without_force(site: Site, tmp_path: Path) -> None:
    backups.backup(site.settings, tmp_path / "backup")
    other = tmp_path / "other"
    other.mkdir()
    (other / "webhook-secret.key").write_bytes(b"x" * 32)
    with pytest.raises(Conflict, match="differs from the backup's webhook key"):
        backups.restore(Settings(data_dir=other), tmp_path / "backup")
    assert not (other / "truthset.db").exists()
    assert (other / "webhook-secret.key").read_bytes() == b"x" * 32


def test_a_backup_never_overwrites(site: Site, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(Conflict, match="already exists: name a new directory"):
        backups.backup(site.settings, taken)
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert backups.backup(site.settings, empty).counts["tasks"] == 5  # an empty directory is filled
    assert not list(tmp_path.glob(".*.partial"))


def test_what_is_not_a_sound_backup_is_refused(site: Site, tmp_path: Path) -> None:
    target = Settings(data_dir=tmp_path / "target")
    with pytest.raises(InvalidInput, match=r"is not a truthset backup: it has no backup\.json"):
        backups.restore(target, tmp_path)

    backups.backup(site.settings, tmp_path / "backup")
    manifest = tmp_path / "backup" / "backup.json"
    manifest.write_text("{")
    with pytest.raises(InvalidInput, match=r"backup\.json cannot be read"):
        backups.restore(target, tmp_path / "backup")

    backups.backup(site.settings, tmp_path / "damaged")
    (tmp_path / "damaged" / "truthset.db").write_bytes(b"not a database at all" * 300)
    with pytest.raises(DatabaseUnusable, match="is not a SQLite database"):
        backups.restore(target, tmp_path / "damaged")

    backups.backup(site.settings, tmp_path / "newer")
    with sqlite3.connect(tmp_path / "newer" / "truthset.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(InvalidInput, match="revision 9999, which this version of truthset does not know"):
        backups.restore(target, tmp_path / "newer")
    assert not (tmp_path / "target" / "truthset.db").exists()


def test_postgres_is_backed_up_with_its_own_tools(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://u:secret@db.example/truthset")
    with pytest.raises(InvalidInput, match="pg_dump") as refused:
        backups.backup(settings, tmp_path / "backup")
    assert "secret" not in refused.value.message
    with pytest.raises(InvalidInput, match="pg_dump"):
        backups.restore(settings, tmp_path / "backup")


def test_restore_is_atomic_for_a_reader(tmp_path: Path) -> None:
    """A connection reading the live database sees the old rows or the restored ones, never a mix."""
    live, saved = tmp_path / "live.db", tmp_path / "saved.db"
    with sqlite3.connect(live) as conn:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE pairs (n INTEGER)")
        conn.executemany("INSERT INTO pairs VALUES (?)", [(1,), (1,)])
    sqlite_backup.copy_database(live, saved)
    with sqlite3.connect(live) as conn:
        conn.executemany("INSERT INTO pairs VALUES (?)", [(2,)] * 4000)
    reader = sqlite3.connect(live)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM pairs").fetchone()[0] == 4002
    sqlite_backup.restore_database(saved, live)  # waits for no reader: WAL keeps the reader's snapshot
    assert reader.execute("SELECT count(*) FROM pairs").fetchone()[0] == 4002
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM pairs").fetchone()[0] == 2
    reader.close()
    assert sqlite_backup.check_database(live).size > 0


def test_restore_refuses_while_a_server_or_worker_holds_the_data_directory(site: Site, tmp_path: Path) -> None:
    """`truthset serve` and `truthset worker` hold a shared lock on their data directory for their
    lifetime; a restore under them would leave them with caches of the database it replaced."""
    backups.backup(site.settings, tmp_path / "backup")
    held = hold_data_dir(site.settings.data_dir)
    try:
        assert data_dir_in_use(site.settings.data_dir)
        assert data_dir_in_use(site.settings.data_dir)  # asking does not take it
        with pytest.raises(Conflict, match=r"a truthset server or worker is running on .*: stop it, then restore"):
            backups.restore(site.settings, tmp_path / "backup", force=True)
        second = hold_data_dir(site.settings.data_dir)  # servers and workers share it
        os.close(second)
    finally:
        os.close(held)  # the process ending does the same
    assert not data_dir_in_use(site.settings.data_dir)
    assert backups.restore(site.settings, tmp_path / "backup", force=True).counts["tasks"] == 5

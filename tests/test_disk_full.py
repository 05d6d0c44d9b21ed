"""A full disk: every write answers 507 naming the cause (nothing stored, nothing acknowledged), reads
go on, the CLI prints one line, and everything works again once space is freed, without a restart.

The disk is real: a small tmpfs (mounting needs root, as in CI; the tests skip without it) holding
the SQLite database and the media store, filled up with a file. SQLite then reports SQLITE_FULL
("database or disk is full") when a COMMIT cannot append to its write-ahead log, and the media
store gets ENOSPC, exactly as on a full production disk.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aio import run_async
from truthset.api import API_PREFIX, create_app
from truthset.config import Settings
from truthset.schemas import ProjectCreate, TaskCreate
from truthset.services import accounts, projects, tasks
from truthset.storage import Database, upgrade

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
PNG = bytes.fromhex(  # a whole 1 x 1 PNG: uploads are decoded, so the checksums must be right
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c636800000082008177cd72b60000000049454e44ae426082"
)
DISK_BYTES = 16 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    """Write ``path`` until the disk has no byte left (bounded by the disk's size)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):
            for _ in range(DISK_BYTES // size + 1):
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)


class World:
    """A database on the small disk with an organization, a project and a pending task."""

    def __init__(self, disk: Path) -> None:
        self.disk = disk
        self.url = f"sqlite:///{disk / 'truthset.db'}"
        upgrade(self.url)
        self.db = Database(self.url)  # production durability (synchronous=FULL, group commit)
        created = accounts.init_organization(self.db, "Acme", "owner@acme.test")
        self.key = created["api_key"]
        owner = accounts.authenticate(self.db, self.key)
        project = ProjectCreate(name="reviews", spec=SPEC, quality={"overlap": 1})
        self.project = projects.create_project(self.db, owner, project, default_lease_seconds=600)
        self.task = tasks.create_task(self.db, owner, self.project["id"], TaskCreate(data={"text": "first"}))
        self.app = create_app(Settings(data_dir=disk), db=self.db)

    def fill_disk(self) -> None:
        # An empty write-ahead log, so the next COMMIT has to grow it (a log with room left would
        # take small writes without needing the disk).
        raw = self.db.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
        _fill(self.disk / "filler")

    def free_disk(self) -> None:
        (self.disk / "filler").unlink()


@pytest.fixture
def world(small_disk: Path) -> Iterator[World]:
    world = World(small_disk)
    try:
        yield world
    finally:
        world.db.dispose()


async def _writes(world: World) -> dict[str, httpx.Response]:
    """One of each write a user makes, in the order a user would."""
    api = API_PREFIX
    project_id = world.project["id"]
    headers = {"Authorization": f"Bearer {world.key}"}
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
        made: dict[str, httpx.Response] = {}
        made["create project"] = await client.post(f"{api}/projects", json={"name": "more", "spec": SPEC})
        made["create task"] = await client.post(f"{api}/projects/{project_id}/tasks", json={"data": {"text": "x"}})
        lines = b'{"data": {"text": "a"}}\n{"data": {"text": "b"}}\n'
        made["import"] = await client.post(
            f"{api}/projects/{project_id}/tasks/bulk", content=lines, headers={"Content-Type": "application/x-ndjson"}
        )
        made["next"] = await client.post(f"{api}/projects/{project_id}/next")
        answer = {"answer": {"sentiment": "positive"}}
        made["submit"] = await client.post(f"{api}/tasks/{world.task['id']}/responses", json=answer)
        made["upload"] = await client.post(f"{api}/media", files={"file": ("dot.png", PNG, "image/png")})
        made["list"] = await client.get(f"{api}/tasks", params={"project_id": project_id, "limit": 100})
        return made


def _task_count(made: dict[str, httpx.Response]) -> int:
    return len(made["list"].json()["items"])


def test_a_full_disk_answers_507_and_writes_work_again_once_space_is_freed(world: World) -> None:
    world.fill_disk()
    refused = run_async(_writes, world)
    for name, response in refused.items():
        if name == "list":
            continue
        assert response.status_code == 507, (name, response.text)
        error: dict[str, Any] = response.json()["error"]
        assert error["code"] == "storage_full", (name, error)
        assert "disk is full" in error["message"]
        assert int(response.headers["Retry-After"]) > 0
    assert refused["list"].status_code == 200  # reads go on
    assert _task_count(refused) == 1  # nothing was stored

    world.free_disk()
    accepted = run_async(_writes, world)
    expected = {"create project": 201, "create task": 201, "import": 200, "next": 200, "submit": 201, "upload": 201}
    assert {name: accepted[name].status_code for name in expected} == expected
    assert _task_count(accepted) == 4


def test_the_cli_prints_one_line_on_a_full_disk(world: World) -> None:
    world.fill_disk()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUTHSET_")}
    env["TRUTHSET_DATA_DIR"] = str(world.disk)
    truthset = str(Path(sys.executable).with_name("truthset"))
    done = subprocess.run(
        [truthset, "keys", "create", "--name", "pipeline"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "disk is full" in line
    world.free_disk()
    done = subprocess.run(
        [truthset, "keys", "create", "--name", "pipeline"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done

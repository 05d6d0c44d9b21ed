"""`truthset worker` as a real process: killed mid-job (SIGKILL), its job is resumed by another
worker once the lease runs out and completes (at least once); stopped with SIGTERM, it gives its
running job back to the queue and exits cleanly. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from truthset.services import accounts, jobs
from truthset.storage import Database, upgrade
from truthset.storage import tables as t

from .gate_kind import KIND

DEADLINE_S = 60.0
HERE = Path(__file__).parent
LAUNCH = f"import sys; sys.path.insert(0, {str(HERE)!r}); import gate_kind; from truthset.cli import main; main()"


@pytest.fixture
def database(db_url: str) -> Iterator[tuple[Database, str]]:
    """A migrated database with one organization; yields it and the organization's id."""
    upgrade(db_url)
    db = Database(db_url, sqlite_synchronous="NORMAL")
    try:
        created = accounts.init_organization(db, "Acme", "owner@acme.test")
        yield db, created["organization"]["id"]
    finally:
        db.dispose()


@contextmanager
def worker(db_url: str, tmp_path: Path, name: str) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "TRUTHSET_DATABASE_URL": db_url,
        "TRUTHSET_DATA_DIR": str(tmp_path / "data"),
        "TRUTHSET_JOBS_LEASE_SECONDS": "2",
        "TRUTHSET_JOBS_POLL_SECONDS": "0.1",
    }
    with (tmp_path / f"{name}.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "worker", "--kind", KIND], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=DEADLINE_S)


def job_row(db: Database, job_id: str) -> dict[str, Any]:
    with db.read() as conn:
        return dict(conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().one())


def wait_for(condition: Callable[[], Any], what: str, log: Path) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; worker log:\n{log.read_text()}"
        time.sleep(0.05)  # polling another process's progress, bounded by the deadline
    return value


def test_a_killed_worker_s_job_is_resumed_by_another_worker(
    database: tuple[Database, str], db_url: str, tmp_path: Path
) -> None:
    db, org_id = database
    folder = tmp_path / "gate"
    folder.mkdir()
    with db.write() as conn:
        job = jobs.enqueue(conn, org_id, KIND, {"folder": str(folder)})
    log = tmp_path / "first.log"
    with worker(db_url, tmp_path, "first") as first:
        wait_for(lambda: (folder / "started-1").exists(), "the first worker to start the job", log)
        running = wait_for(lambda: (r := job_row(db, job["id"]))["progress_done"] == 1 and r, "progress", log)
        assert running["status"] == "running" and running["locked_by"] == (folder / "started-1").read_text()
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    (folder / "go").touch()
    with worker(db_url, tmp_path, "second") as second:
        done = wait_for(
            lambda: (r := job_row(db, job["id"]))["status"] == "succeeded" and r, "the job", tmp_path / "second.log"
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=DEADLINE_S) == 0
    resumed_by = (folder / "started-2").read_text()
    assert done["attempts"] == 2 and done["result"] == {"runner": resumed_by, "attempt": 2}
    assert resumed_by != (folder / "started-1").read_text()
    assert done["progress_done"] == 2 and done["locked_by"] is None and done["error"] is None


def test_sigterm_gives_the_running_job_back_and_exits_cleanly(
    database: tuple[Database, str], db_url: str, tmp_path: Path
) -> None:
    db, org_id = database
    folder = tmp_path / "gate"
    folder.mkdir()
    with db.write() as conn:
        job = jobs.enqueue(conn, org_id, KIND, {"folder": str(folder)})
    with worker(db_url, tmp_path, "stopped") as process:
        wait_for(lambda: (folder / "started-1").exists(), "the worker to start the job", tmp_path / "stopped.log")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE_S) == 0, (tmp_path / "stopped.log").read_text()
    back = job_row(db, job["id"])
    assert back["status"] == "queued" and back["attempts"] == 0 and back["locked_by"] is None

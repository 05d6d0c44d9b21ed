"""`truthset serve` runs jobs in-process by default (TRUTHSET_JOBS_IN_PROCESS), and not when told not to."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fastapi import FastAPI

from conftest import run_async
from truthset.api import create_app
from truthset.config import Settings
from truthset.jobs import register, unregister
from truthset.services import accounts, jobs
from truthset.storage import Database

KIND = "test.in-process"
DEADLINE_S = 30.0


def _during_lifespan(app: FastAPI, during: object) -> None:
    async def main() -> None:
        async with app.router.lifespan_context(app):
            await anyio.to_thread.run_sync(during)  # type: ignore[arg-type]

    try:
        run_async(main)
    finally:
        gc.unfreeze()


def _job_threads() -> int:
    return sum(thread.name.startswith("truthset-job") for thread in threading.enumerate())


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Database, str]]:
    db = Database(f"sqlite:///{tmp_path / 'truthset.db'}", sqlite_synchronous="NORMAL")
    db.create_all()
    organization_id = accounts.init_organization(db, "Acme", "owner@acme.test")["organization"]["id"]
    register(KIND, lambda _db, context: {"ran": context.id})
    yield db, organization_id
    unregister(KIND)
    db.dispose()


def _status(db: Database, job_id: str) -> str:
    with db.read() as conn:
        return str(conn.exec_driver_sql("SELECT status FROM jobs WHERE id = ?", (job_id,)).scalar_one())


def test_the_server_runs_jobs_in_process_and_stops_its_runner(database: tuple[Database, str], tmp_path: Path) -> None:
    db, organization_id = database
    with db.write() as conn:
        job = jobs.enqueue(conn, organization_id, KIND, {})
    before = _job_threads()
    app = create_app(Settings(data_dir=tmp_path, jobs_poll_seconds=0.05), db=db)

    def running() -> None:
        assert _job_threads() > before
        deadline = time.monotonic() + DEADLINE_S
        while _status(db, job["id"]) != "succeeded":
            assert time.monotonic() < deadline, "the in-process runner did not run the job"
            time.sleep(0.01)

    _during_lifespan(app, running)
    assert _job_threads() == before  # stopped with the app


def test_no_runner_when_jobs_run_elsewhere(database: tuple[Database, str], tmp_path: Path) -> None:
    db, organization_id = database
    with db.write() as conn:
        job = jobs.enqueue(conn, organization_id, KIND, {})
    before = _job_threads()
    app = create_app(Settings(data_dir=tmp_path, jobs_in_process=False), db=db)
    _during_lifespan(app, lambda: None)
    assert not hasattr(app.state, "job_runner") and _job_threads() == before
    assert _status(db, job["id"]) == "queued"

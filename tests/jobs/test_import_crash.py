"""An import job whose `truthset worker` is killed (SIGKILL) after its first stored block is
resumed by another worker once the lease runs out, and finishes without a duplicate task.
SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import func, select

from truthset.config import Settings
from truthset.services import accounts, imports
from truthset.storage import Database
from truthset.storage import tables as t

from .test_worker_process import DEADLINE_S, database, job_row, wait_for

__all__ = ["database"]  # the fixture, used by name below
HERE = Path(__file__).parent
LAUNCH = f"import sys; sys.path.insert(0, {str(HERE)!r}); import import_gate; from truthset.cli import main; main()"
ROWS = 5000  # three blocks of at most 2,000


@contextmanager
def import_worker(db_url: str, data_dir: Path, log: Path, gate: Path | None) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "TRUTHSET_DATABASE_URL": db_url,
        "TRUTHSET_DATA_DIR": str(data_dir),
        "TRUTHSET_JOBS_LEASE_SECONDS": "2",
        "TRUTHSET_JOBS_POLL_SECONDS": "0.1",
    }
    env.pop("TRUTHSET_TEST_IMPORT_GATE", None)
    if gate is not None:
        env["TRUTHSET_TEST_IMPORT_GATE"] = str(gate)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "worker", "--kind", "import"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=DEADLINE_S)


def task_count(db: Database, project_id: str) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).where(t.tasks.c.project_id == project_id)).scalar_one())


def test_a_killed_import_is_resumed_by_another_worker_without_duplicates(
    database: tuple[Database, str], db_url: str, tmp_path: Path
) -> None:
    db, _ = database
    owner = accounts.local_admin(db)
    from truthset.schemas import ProjectCreate
    from truthset.services import projects

    spec = {"fields": [{"name": "text", "type": "text"}], "questions": [{"name": "q", "type": "text"}]}
    project = projects.create_project(db, owner, ProjectCreate.model_validate({"name": "crash", "spec": spec}))
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url)
    body = b"".join(orjson.dumps({"data": {"text": f"row {i}"}}) + b"\n" for i in range(ROWS))
    job = imports.start_import(db, owner, project["id"], [body], settings=settings, filename="rows.jsonl")
    gate = tmp_path / "gate"
    gate.mkdir()
    first_log = tmp_path / "first.log"
    with import_worker(db_url, settings.data_dir, first_log, gate) as first:
        wait_for(lambda: (gate / "stored-1").exists(), "the first block to be stored", first_log)
        stored = task_count(db, project["id"])
        assert 0 < stored < ROWS
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    assert job_row(db, job["id"])["status"] == "running"  # its runner is gone; the lease will run out
    second_log = tmp_path / "second.log"
    with import_worker(db_url, settings.data_dir, second_log, None) as second:
        done = wait_for(lambda: (r := job_row(db, job["id"]))["status"] == "succeeded" and r, "the job", second_log)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=DEADLINE_S) == 0
    assert done["attempts"] == 2
    assert (done["result"]["created"], done["result"]["existing"]) == (ROWS - stored, stored)
    assert task_count(db, project["id"]) == ROWS
    with db.read() as conn:
        texts = conn.execute(select(t.tasks.c.data).where(t.tasks.c.project_id == project["id"])).scalars().all()
    assert len({row["text"] for row in texts}) == ROWS
    assert not list((settings.imports_dir).rglob("*.jsonl"))  # the upload is gone once imported

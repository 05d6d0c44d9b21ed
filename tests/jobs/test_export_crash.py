"""A `truthset worker` killed (SIGKILL) mid-export leaves no file anybody is served; once its lease
runs out another worker runs the export again from the start and finishes it. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from truthset.errors import Conflict
from truthset.schemas import ProjectCreate, ResponseCreate, TaskCreate
from truthset.services import accounts, export, export_jobs, projects, queue, tasks
from truthset.storage import Database, upgrade

from .test_worker_process import DEADLINE_S, job_row, wait_for

HERE = Path(__file__).parent
LAUNCH = f"import sys; sys.path.insert(0, {str(HERE)!r}); import export_gate; from truthset.cli import main; main()"
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["pos", "neg"]}],
}


@contextmanager
def export_worker(db_url: str, data_dir: Path, gate: Path, name: str) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "TRUTHSET_DATABASE_URL": db_url,
        "TRUTHSET_DATA_DIR": str(data_dir),
        "TRUTHSET_JOBS_LEASE_SECONDS": "2",
        "TRUTHSET_JOBS_POLL_SECONDS": "0.1",
        "EXPORT_GATE": str(gate),
    }
    with (gate / f"{name}.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "worker", "--kind", "export"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=DEADLINE_S)


def test_a_worker_killed_mid_export_leaves_no_file_and_the_export_is_finished_again(
    db_url: str, tmp_path: Path
) -> None:
    upgrade(db_url)
    db = Database(db_url, sqlite_synchronous="NORMAL")
    try:
        created = accounts.init_organization(db, "Acme", "owner@acme.test")
        owner = accounts.authenticate(db, created["api_key"])
        project = projects.create_project(db, owner, ProjectCreate(name="crash", spec=SPEC))
        for i in range(10):
            task = tasks.create_task(db, owner, project["id"], TaskCreate(data={"text": f"t{i}"}))
            queue.submit(db, owner, task["id"], ResponseCreate(answer={"sentiment": "pos"}))
        job = export_jobs.start_export(db, owner, project["id"], "jsonl", export.ExportFilter())
        data_dir, gate = tmp_path / "data", tmp_path / "gate"
        gate.mkdir()
        exports = data_dir / "exports" / owner.organization_id
        with export_worker(db_url, data_dir, gate, "first") as first:
            wait_for(lambda: any(gate.glob("writing-*")), "the first worker to write", gate / "first.log")
            assert [p.name for p in exports.iterdir()] == [f"{job['id']}-1.jsonl.part"]
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=DEADLINE_S) == -signal.SIGKILL
        assert job_row(db, job["id"])["status"] == "running"  # until its lease runs out
        with pytest.raises(Conflict, match="once it has succeeded"):  # nothing is served meanwhile
            export_jobs.export_file(db, owner, job["id"], data_dir / "exports")
        (gate / "go").touch()
        with export_worker(db_url, data_dir, gate, "second") as second:
            done = wait_for(
                lambda: (r := job_row(db, job["id"]))["status"] == "succeeded" and r, "the export", gate / "second.log"
            )
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=DEADLINE_S) == 0
        assert done["attempts"] == 2 and done["result"]["file"] == f"{job['id']}-2.jsonl"
        # the killed attempt's part file went when the second attempt started: only the finished file is left
        assert [p.name for p in exports.iterdir()] == [done["result"]["file"]]
        path, result = export_jobs.export_file(db, owner, job["id"], data_dir / "exports")
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        assert len(rows) == result["tasks"] == 10 and all(row["answer"] == {"sentiment": "pos"} for row in rows)
    finally:
        db.dispose()

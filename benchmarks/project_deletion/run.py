"""Deleting a project with its data: tasks per second of the ``project.delete`` job, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/project_deletion/run.py                      # SQLite, 100,000 tasks
    .venv/bin/python benchmarks/project_deletion/run.py --postgres auto --tasks 50000

Seeds a fresh database directly, in blocks of rows, with what the annotation loop leaves: ``--tasks``
completed tasks, each with 3 responses from 3 workers, each response with its closed lease
(assignment) and one history event per task, plus a second project of ``--tasks`` / 10 tasks that
must survive. Then asks for the deletion (``project_deletion.start``, as ``POST
/projects/{id}/deletion`` does) and runs the job with a job runner in this process, printing the
job's wall time, tasks per second and the rows left (must be 0 for the deleted project, all for the
other). A benchmark, not a test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from run import SPEC, run_backends
from sqlalchemy import func, select

from truthset.config import Settings
from truthset.jobs import Runner
from truthset.schemas import ProjectCreate
from truthset.services import accounts, project_deletion, projects
from truthset.storage import Database, upgrade
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

BLOCK = 10_000
TASK_COLUMNS = (
    "id", "organization_id", "project_id", "unique_id", "data", "metadata", "priority", "status",
    "overlap", "response_count", "lease_count", "created_at", "updated_at", "completed_at",
)  # fmt: skip
ASSIGNMENT_COLUMNS = (
    "id", "organization_id", "project_id", "task_id", "worker_id", "status", "created_at", "expires_at", "ended_at",
)  # fmt: skip
RESPONSE_COLUMNS = (
    "id", "organization_id", "project_id", "task_id", "worker_id", "assignment_id", "answer", "created_at",
)  # fmt: skip
EVENT_COLUMNS = ("id", "organization_id", "project_id", "task_id", "kind", "data", "created_at")


def seed(db: Database, owner: accounts.Principal, name: str, n: int, workers: list[str]) -> str:
    project = projects.create_project(db, owner, ProjectCreate(name=name, spec=SPEC, quality={"overlap": 3}))
    org, now, done = owner.organization_id, utcnow(), 0
    while done < n:
        size = min(BLOCK, n - done)
        tasks, leases, answers, events = [], [], [], []
        with db.write() as conn:
            at = repo.driver_datetime(conn, now + timedelta(microseconds=done))
            later = repo.driver_datetime(conn, now + timedelta(minutes=10))
            for i, task_id in enumerate(new_ids(size)):
                text = f'{{"text": "{name} review {done + i}: fine."}}'
                tasks.append((task_id, org, project["id"], f"{name}-{done + i}", text, "{}", 0, "completed", 3, 3, 0,
                              at, at, at))  # fmt: skip
                for worker_id, lease_id, response_id in zip(workers, new_ids(3), new_ids(3), strict=True):
                    leases.append((lease_id, org, project["id"], task_id, worker_id, "submitted", at, later, at))
                    answers.append((response_id, org, project["id"], task_id, worker_id, lease_id,
                                    '{"sentiment": "positive"}', at))  # fmt: skip
                events.append((new_ids(1)[0], org, project["id"], task_id, "completed", "{}", at))
            repo.insert_prepared(conn, t.tasks, TASK_COLUMNS, tasks)
            repo.insert_prepared(conn, t.assignments, ASSIGNMENT_COLUMNS, leases)
            repo.insert_prepared(conn, t.responses, RESPONSE_COLUMNS, answers)
            repo.insert_prepared(conn, t.task_events, EVENT_COLUMNS, events)
        done += size
    return project["id"]


def rows(db: Database, project_id: str) -> int:
    with db.read() as conn:
        return sum(
            conn.execute(select(func.count()).where(table.c.project_id == project_id)).scalar_one()
            for table in (t.tasks, t.assignments, t.responses, t.task_events)
        )


def run_one(kind: str, url: str | None, args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"truthset-deletion-{kind}-"))
    url = url or f"sqlite:///{data_dir / 'truthset.db'}"
    upgrade(url)
    db = Database(url)
    try:
        created = accounts.init_organization(db, "Bench", "owner@bench.example")
        owner = accounts.authenticate(db, created["api_key"])
        workers = new_ids(3)
        with db.write() as conn:
            conn.execute(t.workers.insert(), [
                {"id": w, "organization_id": owner.organization_id, "kind": "human", "name": f"w{i}",
                 "member_id": None, "created_at": utcnow()} for i, w in enumerate(workers)
            ])  # fmt: skip
        started = time.perf_counter()
        doomed = seed(db, owner, "doomed", args.tasks, workers)
        kept = seed(db, owner, "kept", max(1, args.tasks // 10), workers)
        if not db.is_sqlite:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        kept_tasks = max(1, args.tasks // 10)
        print(f"{kind}: seeded {args.tasks:,} + {kept_tasks:,} tasks in {time.perf_counter() - started:.0f} s")
        kept_rows = rows(db, kept)
        job = project_deletion.start(db, owner, doomed, "doomed")
        started = time.perf_counter()
        Runner(db, kinds=[project_deletion.JOB_KIND], settings=Settings(data_dir=data_dir)).run_until_idle()
        seconds = time.perf_counter() - started
        with db.read() as conn:
            status = conn.execute(select(t.jobs.c.status, t.jobs.c.error).where(t.jobs.c.id == job["id"])).one()
        left, kept_after = rows(db, doomed), rows(db, kept)
        print(f"  deleted {args.tasks:,} tasks (with {args.tasks * 3:,} responses and leases) in {seconds:.1f} s = "
              f"{args.tasks / seconds:,.0f} tasks/s; job {status[0]}{': ' + status[1] if status[1] else ''}; "
              f"rows left {left:,}; the other project kept {kept_after:,} of {kept_rows:,} rows")  # fmt: skip
        return {"database": kind, "tasks": args.tasks, "seconds": round(seconds, 2), "status": status[0]}
    finally:
        db.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is created), or 'auto'")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    args = parser.parse_args()
    run_backends(run_one, args)


if __name__ == "__main__":
    main()

"""Export jobs at scale: completed tasks with 3 responses each, exported by a job runner process.

    .venv/bin/python benchmarks/export/jobs.py                          # SQLite, 1,000,000 tasks
    .venv/bin/python benchmarks/export/jobs.py --tasks 100000 --postgres auto
    .venv/bin/python benchmarks/export/jobs.py --postgres URL --no-sqlite --formats parquet

Seeds a fresh database directly, in blocks of rows (the import path is measured by
``benchmarks/platform``): ``--tasks`` completed tasks, each with 3 responses from 3 workers and a
result, as the annotation loop leaves them. Then, for each format (JSONL and Parquet by default),
queues an export job (``export_jobs.start_export``, as ``POST /projects/{id}/exports`` does) and
runs it in a fresh process (a ``truthset worker --until-idle``-like runner, nothing else in it),
which prints the job's wall time, tasks/s (and per CPU second of that process: on a shared machine
the wall time says more about the neighbours), the file's size and the peak RSS of that process
(``VmHWM`` from /proc: ``ru_maxrss`` would report the forking benchmark process's memory, which
Linux keeps across exec). A benchmark, not a test: nothing asserts a timing.
Goals (issue 10): at least 100,000 tasks/s and under 300 MiB, whatever the size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

import dbcpu
from run import SPEC, run_backends

from truthset.schemas import ProjectCreate
from truthset.services import accounts, export, export_jobs, projects
from truthset.storage import Database, upgrade
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

BLOCK = 20_000
_TASK_COLUMNS = (
    "id", "organization_id", "project_id", "batch_id", "unique_id", "data", "metadata", "priority", "status",
    "overlap", "response_count", "lease_count", "result", "confidence", "created_at", "updated_at", "completed_at",
)  # fmt: skip
_RESPONSE_COLUMNS = (
    "id", "organization_id", "project_id", "task_id", "worker_id", "assignment_id", "answer",
    "idempotency_key", "duration_ms", "created_at",
)  # fmt: skip
ANSWERS = [{"sentiment": "positive", "stars": 4}, {"sentiment": "positive", "stars": 5}, {"sentiment": "neutral"}]


def seed(db: Database, n: int) -> tuple[str, str]:
    """An organization with a project of ``n`` completed tasks, 3 responses each; (owner key, project id)."""
    created = accounts.init_organization(db, "Bench", "owner@bench.example")
    owner = accounts.authenticate(db, created["api_key"])
    project = projects.create_project(db, owner, ProjectCreate(name="export bench", spec=SPEC, quality={"overlap": 3}))
    org = owner.organization_id
    now = utcnow()
    workers = new_ids(3)
    with db.write() as conn:
        conn.execute(
            t.workers.insert(),
            [{"id": w, "organization_id": org, "kind": "human", "name": f"worker {i}", "member_id": None,
              "created_at": now} for i, w in enumerate(workers)],
        )  # fmt: skip
    result = {
        "answer": {"sentiment": "positive", "stars": 4.5},
        "confidence": {"sentiment": 0.93, "stars": 0.7},
        "methods": {"sentiment": "dawid_skene", "stars": "median"},
        "response_count": 3,
        "workers": workers,
    }
    done = 0
    started = time.perf_counter()
    result_text = json.dumps(result)
    answers = [json.dumps(answer) for answer in ANSWERS]
    while done < n:
        size = min(BLOCK, n - done)
        task_ids = new_ids(size)
        tasks, responses = [], []
        with db.write() as conn:
            # rows in the driver's form through the bulk import's insert (multi-row INSERT on SQLite,
            # COPY on PostgreSQL): an executemany through the full-text trigger took minutes at 1M
            stamp = [repo.driver_datetime(conn, now + timedelta(microseconds=done + i)) for i in range(size)]
            for i, task_id in enumerate(task_ids):
                at = stamp[i]
                text = f"Review {done + i}: the battery lasts two days and the screen is bright."
                tasks.append((
                    task_id, org, project["id"], None, f"bench-{done + i}", json.dumps({"text": text}),
                    json.dumps({"source": "bench", "shard": (done + i) % 16}), 0, "completed", 3, 3, 0,
                    result_text, 0.7, at, at, at,
                ))  # fmt: skip
                for worker_id, answer, response_id in zip(workers, answers, new_ids(3), strict=True):
                    responses.append(
                        (response_id, org, project["id"], task_id, worker_id, None, answer, None, 4200, at)
                    )
            repo.insert_prepared(conn, t.tasks, _TASK_COLUMNS, tasks)
            repo.insert_prepared(conn, t.responses, _RESPONSE_COLUMNS, responses)
        done += size
        print(f"\r  seeded {done:,} tasks", end="", flush=True)
    print(f" in {time.perf_counter() - started:.0f} s")
    return created["api_key"], project["id"]


CHILD = """
import json, resource, sys, time
from truthset.config import Settings
from truthset.jobs import Runner
from truthset.storage import Database
settings = Settings(data_dir=sys.argv[2], database_url=sys.argv[1])
db = Database(settings.resolved_database_url)
started = time.perf_counter()
ran = Runner(db, kinds=["export"], settings=settings).run_until_idle()
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
# VmHWM, not ru_maxrss: Linux keeps in ru_maxrss the high-water mark of the memory the process had
# before exec, i.e. of the benchmark's own process that forked it (the seeding parent, not the export)
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
print(json.dumps({"ran": ran, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak}))
"""


def export_once(db: Database, url: str, data_dir: Path, key: str, project_id: str, fmt: str) -> dict[str, Any]:
    principal = accounts.authenticate(db, key)
    job = export_jobs.start_export(db, principal, project_id, fmt, export.ExportFilter())
    postmaster = dbcpu.postmaster_pid(url)
    db_cpu = dbcpu.cpu_seconds(postmaster)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(data_dir)], capture_output=True, text=True, check=True,
        env={**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")},
    )  # fmt: skip
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    if db_cpu is not None:  # the lines are rendered by PostgreSQL's processes, not the exporting one
        measured["database_cpu_seconds"] = round((dbcpu.cpu_seconds(postmaster) or 0.0) - db_cpu, 2)
    with db.read() as conn:
        row = conn.execute(t.jobs.select().where(t.jobs.c.id == job["id"])).mappings().one()
    assert row["status"] == "succeeded", (row["status"], row["error"], out.stderr[-2000:])
    tasks = row["result"]["tasks"]
    return {
        "format": fmt,
        "tasks": tasks,
        "seconds": round(measured["seconds"], 2),
        "tasks_per_second": round(tasks / measured["seconds"]),
        # the machine may be shared: tasks per second of this process's own CPU time (start-up included)
        "tasks_per_cpu_second": round(tasks / measured["cpu_seconds"]),
        "mib": round(row["result"]["size"] / 2**20, 1),
        "peak_rss_mib": round(measured["peak_rss_mib"], 1),
        "cpu_seconds": round(measured["cpu_seconds"], 2),
        "database_cpu_seconds": measured.get("database_cpu_seconds"),
    }


def run_one(kind: str, database_url: str | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"truthset-export-jobs-{kind}-"))
    url = database_url or f"sqlite:///{data_dir / 'truthset.db'}"
    upgrade(url)
    db = Database(url)
    results = []
    try:
        print(f"{kind}: seeding {args.tasks:,} completed tasks with 3 responses each")
        key, project_id = seed(db, args.tasks)
        if not db.is_sqlite:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        for fmt in args.formats:
            for _ in range(args.repeat):
                row = export_once(db, url, data_dir, key, project_id, fmt)
                results.append({"database": kind, **row})
                speed = f"{row['tasks']:,} tasks in {row['seconds']} s = {row['tasks_per_second']:,} tasks/s"
                speed += f" ({row['tasks_per_cpu_second']:,} per CPU second of the process)"
                if row["database_cpu_seconds"] is not None:
                    speed += f"; PostgreSQL CPU {row['database_cpu_seconds']} s"
                print(f"  {fmt}: {speed}; {row['mib']} MiB file; exporting process peak RSS {row['peak_rss_mib']} MiB")
    finally:
        db.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--formats", nargs="+", default=["jsonl", "parquet"])
    parser.add_argument("--repeat", type=int, default=1, help="exports per format")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is created), or 'auto'")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    run_backends(run_one, parser.parse_args())


if __name__ == "__main__":
    main()

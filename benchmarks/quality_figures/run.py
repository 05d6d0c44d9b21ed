"""Quality figures at scale: how long agreement and per-worker figures take for a big project.

    .venv/bin/python benchmarks/quality_figures/run.py [--responses 100000] [--postgres URL]

Fills a fresh database with one project (a `label` and a `rating` question) of N/3 completed
tasks answered by 3 of 50 workers each (N responses, 80% of them right), by plain SQL inserts,
then times the service calls behind `GET /projects/{id}/agreement`, `GET /projects/{id}/workers`
and `GET /workers/{id}/stats` (median of 5).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from truthset.schemas import ProjectCreate
from truthset.services import accounts, projects, quality
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "q", "type": "label", "options": ["a", "b", "c"]},
        {"name": "stars", "type": "rating", "min": 1, "max": 5},
    ],
}
OPTIONS = ["a", "b", "c"]
WORKERS = 50
OVERLAP = 3


def fill(db: Database, count: int, seed: int = 0) -> tuple[object, dict, list[str]]:
    rng = np.random.default_rng(seed)
    created = accounts.init_organization(db, "bench", "bench@example.com")
    owner = accounts.authenticate(db, created["api_key"])
    project = projects.create_project(db, owner, ProjectCreate(name="quality", spec=SPEC))
    org, pid, now = owner.organization_id, project["id"], utcnow()
    worker_ids = new_ids(WORKERS)
    n_tasks = count // OVERLAP
    task_ids = new_ids(n_tasks)
    truth = rng.integers(0, 3, n_tasks)
    with db.write() as conn:
        conn.execute(
            insert(t.workers),
            [
                {"id": w, "organization_id": org, "kind": "human", "name": f"w{i}", "created_at": now}
                for i, w in enumerate(worker_ids)
            ],
        )
        conn.execute(
            insert(t.tasks),
            [
                {
                    "id": task_id,
                    "organization_id": org,
                    "project_id": pid,
                    "batch_id": None,
                    "unique_id": None,
                    "data": {"text": f"item {n}"},
                    "metadata": {},
                    "priority": 0,
                    "status": "completed",
                    "overlap": OVERLAP,
                    "response_count": OVERLAP,
                    "lease_count": 0,
                    "confidence": 1.0,
                    "result": {"answer": {"q": OPTIONS[truth[n]], "stars": int(truth[n]) + 2}},
                    "created_at": now,
                    "updated_at": now,
                    "completed_at": now,
                }
                for n, task_id in enumerate(task_ids)
            ],
        )
        rows = []
        for n, task_id in enumerate(task_ids):
            for w in rng.choice(WORKERS, OVERLAP, replace=False):
                label = int(truth[n]) if rng.random() < 0.8 else int(rng.integers(0, 3))
                rows.append(
                    {
                        "organization_id": org,
                        "project_id": pid,
                        "task_id": task_id,
                        "worker_id": worker_ids[w],
                        "answer": {"q": OPTIONS[label], "stars": label + 2},
                        "duration_ms": int(rng.integers(500, 5000)),
                        "created_at": now,
                    }
                )
        for row, response_id in zip(rows, new_ids(len(rows)), strict=True):
            row["id"] = response_id
        conn.execute(insert(t.responses), rows)
    return owner, project, worker_ids


def timed(call: object, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run(url: str, count: int) -> Table:
    db = Database(url)
    db.create_all()
    owner, project, worker_ids = fill(db, count)
    pid = project["id"]
    table = Table(f"service call ({count:,} responses)", "median ms")
    table.add_row("agreement", f"{timed(lambda: quality.project_agreement(db, owner, pid)):.0f}")
    table.add_row("workers (page of 100)", f"{timed(lambda: quality.project_workers(db, owner, pid)):.0f}")
    table.add_row("one worker's stats", f"{timed(lambda: quality.worker_stats(db, owner, worker_ids[0], pid)):.0f}")
    db.dispose()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL (an empty database)")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        console.print("SQLite:")
        console.print(run(f"sqlite:///{Path(tmp) / 'quality.db'}", args.responses))
    if args.postgres:
        console.print("PostgreSQL:")
        console.print(run(args.postgres, args.responses))


if __name__ == "__main__":
    main()

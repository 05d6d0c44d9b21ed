"""Keyset pagination at millions of tasks: how long one page of `GET /tasks` takes, deep or shallow.

    .venv/bin/python benchmarks/listing/run.py [--tasks 2000000] [--postgres URL]

Fills a fresh database with one project of N tasks (20 batches, a mix of statuses and metadata)
by plain SQL inserts (fast; import speed is measured by benchmarks/platform), then times the
service call behind `GET /api/v1/tasks` for the first page, a page in the middle and the last page
(reached through a cursor, as a client paging through would), with and without filters.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from truthset.domain import TaskStatus
from truthset.schemas import ProjectCreate
from truthset.services import accounts, projects
from truthset.services.tasks import TaskFilter, list_tasks
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "q", "type": "label", "options": ["a", "b"]}],
}
STATUSES = [TaskStatus.COMPLETED] * 6 + [TaskStatus.PENDING] * 3 + [TaskStatus.CANCELED]


def fill(db: Database, count: int, console: Console) -> tuple[object, dict, list[str], list[str]]:
    created = accounts.init_organization(db, "bench", "bench@example.com")
    owner = accounts.authenticate(db, created["api_key"])
    project = projects.create_project(db, owner, ProjectCreate(name="listing", spec=SPEC))
    now = utcnow()
    batch_ids = new_ids(20)
    with db.write() as conn:
        conn.execute(
            insert(t.batches),
            [
                {
                    "id": b,
                    "organization_id": owner.organization_id,
                    "project_id": project["id"],
                    "name": f"b{i}",
                    "status": "finalized",
                    "metadata": {},
                    "created_at": now,
                }
                for i, b in enumerate(batch_ids)
            ],
        )
    ids: list[str] = []
    step = 50_000
    started = time.perf_counter()
    for start in range(0, count, step):
        chunk_ids = new_ids(min(step, count - start))
        rows = []
        for offset, task_id in enumerate(chunk_ids):
            n = start + offset
            created_at = now - timedelta(seconds=count - n)
            rows.append(
                {
                    "id": task_id,
                    "organization_id": owner.organization_id,
                    "project_id": project["id"],
                    "batch_id": batch_ids[n % 20],
                    "unique_id": f"u{n}",
                    "data": {"text": f"item {n}"},
                    "metadata": {"shard": str(n % 100)},
                    "priority": 0,
                    "status": str(STATUSES[n % 10]),
                    "overlap": 1,
                    "response_count": 0,
                    "lease_count": 0,
                    "created_at": created_at,
                    "updated_at": created_at,
                    "completed_at": created_at if n % 10 < 6 else None,
                }
            )
        with db.write() as conn:
            conn.execute(insert(t.tasks), rows)
        ids.extend(chunk_ids)
        console.print(f"\r  filled {start + len(chunk_ids):,} tasks ({time.perf_counter() - started:.0f} s)", end="")
    console.print()
    return owner, project, batch_ids, ids


def timed(db: Database, owner: object, filters: TaskFilter, cursor: str | None, repeat: int = 7) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        list_tasks(db, owner, filters, cursor=cursor, limit=100)  # type: ignore[arg-type]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run(url: str, count: int, console: Console) -> Table:
    db = Database(url)
    db.create_all()
    owner, project, batch_ids, ids = fill(db, count, console)
    middle, last = ids[len(ids) // 2], ids[-150]
    table = Table(f"query ({count:,} tasks, 100 per page)", "first page ms", "middle page ms", "last page ms")
    pid = project["id"]
    cases = {
        "project": TaskFilter(project_id=pid),
        "project + status=completed": TaskFilter(project_id=pid, status=TaskStatus.COMPLETED),
        "project + status=canceled (10%)": TaskFilter(project_id=pid, status=TaskStatus.CANCELED),
        "batch": TaskFilter(batch_id=batch_ids[3]),
        "batch + status=pending": TaskFilter(batch_id=batch_ids[3], status=TaskStatus.PENDING),
        "unique_id": TaskFilter(unique_id=f"u{count // 2}"),
        "metadata.shard=7 (JSON scan)": TaskFilter(project_id=pid, metadata={"shard": "7"}),
    }
    for name, filters in cases.items():
        table.add_row(name, *(f"{timed(db, owner, filters, c):.2f}" for c in (None, middle, last)))
    db.dispose()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2_000_000)
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL (an empty database)")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        console.print("SQLite:")
        console.print(run(f"sqlite:///{Path(tmp) / 'listing.db'}", args.tasks, console))
    if args.postgres:
        console.print("PostgreSQL:")
        console.print(run(args.postgres, args.tasks, console))


if __name__ == "__main__":
    main()

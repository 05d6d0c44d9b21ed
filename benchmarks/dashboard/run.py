"""The project dashboard's figures at a million tasks: server time of GET /projects/{id}/dashboard.

    .venv/bin/python benchmarks/dashboard/run.py [--tasks 1000000] [--postgres URL] [--no-sqlite]
                                                 [--data-dir DIR]  (keep the SQLite data; reuse it once filled)

Fills a fresh database with the task browser benchmark's project (``benchmarks/task_browser``: N
tasks, 60% completed with a confidence, 5% answered by one of 20 workers), then times
``services.dashboard.project_dashboard`` (the query behind the page and the endpoint), hourly and
daily, first and second page of workers. Each figure is the median of ``--repeat`` runs in
milliseconds, wall clock and this process's CPU (``time.process_time``: the machine may be shared).
A benchmark, not a test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from truthset.config import Settings
from truthset.services import dashboard
from truthset.storage import Database, upgrade


def _browser_benchmark() -> Any:
    """The task browser benchmark's module, for its ``fill`` (one data set for both benchmarks)."""
    path = Path(__file__).parents[1] / "task_browser" / "run.py"
    spec = importlib.util.spec_from_file_location("task_browser_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _time(call: Any, repeat: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def run(url: str, label: str, tasks: int, repeat: int, console: Console, *, reuse: bool = False) -> None:
    upgrade(url)
    db = Database(url)
    try:
        browser = _browser_benchmark()
        if reuse:
            world = browser.existing(db)
            tasks = world["count"]
        else:
            console.print(f"[bold]{label}[/]: filling {tasks:,} tasks")
            world = browser.fill(db, tasks, console)
        owner, pid = world["owner"], world["project"]["id"]
        first = dashboard.project_dashboard(db, owner, pid, limit=10)
        cursor = first["workers"]["next_cursor"]
        cases = {
            "hourly, first workers": lambda: dashboard.project_dashboard(db, owner, pid, limit=10),
            "daily, first workers": lambda: dashboard.project_dashboard(db, owner, pid, interval="day", limit=10),
            "hourly, next workers": lambda: dashboard.project_dashboard(db, owner, pid, cursor=cursor, limit=10),
        }
        table = Table(title=f"dashboard figures, {label}, {tasks:,} tasks (median of {repeat})")
        for column in ("case", "wall ms", "cpu ms"):
            table.add_column(column, justify="right" if column != "case" else "left")
        for name, call in cases.items():
            wall, cpu = _time(call, repeat)
            table.add_row(name, f"{wall:.0f}", f"{cpu:.0f}")
        console.print(table)
        console.print(f"progress {first['progress']}, sample {first['sample_tasks']}, cost {first['cost']}")
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--data-dir", type=Path, help="keep the SQLite data here; reuse it when already filled")
    args = parser.parse_args()
    console = Console()
    if args.data_dir and not args.no_sqlite:
        url = Settings(data_dir=args.data_dir).resolved_database_url
        reuse = (args.data_dir / "truthset.db").exists() or any(args.data_dir.glob("*.db"))
        run(url, "SQLite", args.tasks, args.repeat, console, reuse=reuse)
    elif not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = Settings(data_dir=Path(tmp)).resolved_database_url
            run(url, "SQLite", args.tasks, args.repeat, console)
    if args.postgres:
        run(args.postgres, "PostgreSQL", args.tasks, args.repeat, console)


if __name__ == "__main__":
    main()

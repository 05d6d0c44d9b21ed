"""Import benchmark: 1,000,000 tasks from a JSONL file with the CLI against one real server.

    .venv/bin/python benchmarks/import/run.py                          # SQLite, 1,000,000 tasks
    .venv/bin/python benchmarks/import/run.py --postgres auto          # + a throwaway PostgreSQL
    .venv/bin/python benchmarks/import/run.py --tasks 100000 --no-unique-ids

For each database it starts ONE ``truthset serve`` process (``benchmarks/platform/run.py``'s
Server: its in-process job runner runs the import job) against a fresh database, writes a JSONL
file of ``--tasks`` tasks, and times ``truthset import FILE --project ...`` (the real CLI in a
subprocess: upload, the import job, its report) from start to exit; then imports the same file
again (every task already there: nothing is added). It prints tasks/s for both and the server's
peak resident memory (VmHWM from /proc: the high-water mark, not a sample), and writes the figures
to ``benchmarks/results/import-<time>.json``. A benchmark, not a test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

import dbcpu
from run import SPEC, Server, console, run_backends, save_results

import truthset
from truthset.services import accounts
from truthset.storage import Database, upgrade

GOALS = {"tasks_per_second": 50_000, "peak_rss_mib": 300}


def memory_mib(pid: int, field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (the peak so far) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def write_tasks(path: Path, n: int, *, unique_ids: bool) -> int:
    """A JSONL file of ``n`` review-sized tasks; returns its size in bytes."""
    with path.open("wb") as out:
        for i in range(n):
            task: dict[str, Any] = {
                "data": {"text": f"Review {i}: the battery lasts two days and the screen is bright enough outdoors."},
                "metadata": {"source": "bench", "shard": i % 16},
            }
            if unique_ids:
                task["unique_id"] = f"bench-{i}"
            out.write(orjson.dumps(task) + b"\n")
    return path.stat().st_size


def cli_import(server: Server, key: str, project_id: str, path: Path) -> dict[str, Any]:
    """``truthset import`` in a subprocess, timed from start to exit; its report line."""
    script = Path(sys.executable).with_name("truthset")
    command = [str(script), "import", str(path), "--project", project_id, "--url", server.url, "--api-key", key]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"truthset import failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    report = next(line for line in done.stdout.splitlines() if line.startswith("received"))
    return {"seconds": round(seconds, 2), "report": report}


def measured_import(
    server: Server, key: str, project_id: str, source: Path, tasks: int, postmaster: int | None, label: str
) -> dict[str, Any]:
    """One CLI import with its wall time, the server's CPU and (local PostgreSQL) the database's."""
    cpu, db_cpu = server.cpu_seconds(), dbcpu.cpu_seconds(postmaster)
    done = cli_import(server, key, project_id, source)
    done["tasks_per_second"] = round(tasks / done["seconds"])
    done["server_cpu_seconds"] = round(server.cpu_seconds() - cpu, 2)
    done["tasks_per_server_cpu_second"] = round(tasks / max(done["server_cpu_seconds"], 0.01))
    line = (
        f"  {label}: {done['seconds']} s, {done['tasks_per_second']:,} tasks/s; server CPU "
        f"{done['server_cpu_seconds']} s = {done['tasks_per_server_cpu_second']:,} per CPU s"
    )
    if db_cpu is not None:
        done["database_cpu_seconds"] = round((dbcpu.cpu_seconds(postmaster) or 0.0) - db_cpu, 2)
        line += f"; PostgreSQL CPU {done['database_cpu_seconds']} s"
    console.print(f"{line} ({done['report']})")
    return done


def run_one(kind: str, database_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"truthset-bench-import-{kind}-"))
    url = database_url or f"sqlite:///{data_dir / 'truthset.db'}"
    console.rule(f"[bold]{kind}[/bold]  {url.split('@')[-1]}")
    upgrade(url)
    db = Database(url)
    created = accounts.init_organization(db, "Bench", "owner@bench.example")
    db.dispose()
    source = data_dir / "tasks.jsonl"
    size = write_tasks(source, args.tasks, unique_ids=not args.no_unique_ids)
    console.print(f"{args.tasks:,} tasks in {source.name}: {size / 2**20:.1f} MiB")
    server = Server(data_dir, url)
    try:
        rss_start = memory_mib(server.process.pid, "VmRSS")
        with truthset.Client(server.url, created["api_key"], timeout=120) as client:
            project = client.projects.create("import bench", spec=SPEC)
        postmaster = dbcpu.postmaster_pid(database_url)
        first = measured_import(server, created["api_key"], project.id, source, args.tasks, postmaster, "import")
        again = measured_import(server, created["api_key"], project.id, source, args.tasks, postmaster, "again")
        peak = memory_mib(server.process.pid, "VmHWM")
        rss_end = memory_mib(server.process.pid, "VmRSS")
    finally:
        server.stop()
    console.print(f"  server RSS: {rss_start} MiB at start, {rss_end} MiB at the end, peak {peak} MiB")
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "database": kind,
        "tasks": args.tasks,
        "unique_ids": not args.no_unique_ids,
        "file_mib": round(size / 2**20, 1),
        "import": first,
        "again": again,
        "rss_mib": {"start": rss_start, "end": rss_end, "peak": peak},
    }


def print_table(results: list[dict[str, Any]]) -> None:
    table = Table(title="Import with the CLI (upload + import job), JSONL")
    for column in ("database", "tasks", "ids", "import tasks/s", "again (all existing)", "peak RSS", "goal"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r["database"],
            f"{r['tasks']:,}",
            "unique_id" if r["unique_ids"] else "content hash",
            f"{r['import']['tasks_per_second']:,} ({r['import']['seconds']} s)",
            f"{r['again']['tasks_per_second']:,} ({r['again']['seconds']} s)",
            f"{r['rss_mib']['peak']} MiB",
            f">= {GOALS['tasks_per_second']:,}/s, < {GOALS['peak_rss_mib']} MiB",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is created), or 'auto'")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks in the file")
    parser.add_argument("--no-unique-ids", action="store_true", help="tasks without unique_id (content hashes)")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args()
    results = run_backends(run_one, args)
    print_table(results)
    save_results("import", results)


if __name__ == "__main__":
    main()

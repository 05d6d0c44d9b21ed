"""Export throughput and the server's memory across repeated exports, against one real server.

    .venv/bin/python benchmarks/export/run.py                      # SQLite, 200,000 tasks, 5 exports
    .venv/bin/python benchmarks/export/run.py --postgres auto --no-sqlite --tasks 100000

Starts ``truthset serve`` on 127.0.0.1 (``benchmarks/platform/run.py``'s Server) against a fresh
database, imports ``--tasks`` tasks with the SDK, and then downloads
``GET /projects/{id}/export?all_statuses=true`` ``--exports`` times, printing for each: seconds,
tasks/s, bytes, and the server process's resident memory (RSS, from /proc) after it. It also prints
the RSS right after start-up, after the import, and the latency of the first single-task create
after start-up next to the second one. A benchmark, not a test: nothing asserts a timing.

Export jobs (1,000,000 completed tasks with their responses, JSONL and Parquet, the exporting
process's peak RSS) are measured by ``benchmarks/export/jobs.py``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from run import SPEC, Server, run_backends, task_stream

import truthset
from truthset.schemas import ProjectCreate
from truthset.services import accounts, projects
from truthset.storage import Database, upgrade


def rss_mib(pid: int, settle: float = 0.0) -> float:
    """Resident memory of ``pid``; after ``settle`` seconds (the server trims its heaps after the response)."""
    time.sleep(settle)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def first_creates(server: Server, key: str, project_id: str) -> list[float]:
    """Milliseconds of the first three single-task creates (the first pays what start-up left lazy)."""
    timings = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
        for i in range(3):
            started = time.perf_counter()
            r = http.post(f"/api/v1/projects/{project_id}/tasks", json={"data": {"text": f"first {i}"}})
            timings.append(round((time.perf_counter() - started) * 1000, 1))
            r.raise_for_status()
    return timings


def download(server: Server, key: str, project_id: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    size = lines = 0
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream(
        "GET", f"{server.url}/api/v1/projects/{project_id}/export", params={"all_statuses": "true"},
        headers=headers, timeout=600,
    ) as r:  # fmt: skip
        r.raise_for_status()
        for chunk in r.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return time.perf_counter() - started, size, lines


def run_one(kind: str, database_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"truthset-export-{kind}-"))
    url = database_url or f"sqlite:///{data_dir / 'truthset.db'}"
    upgrade(url)
    db = Database(url)
    created = accounts.init_organization(db, "Bench", "owner@bench.example")
    owner = accounts.authenticate(db, created["api_key"])
    # made before the server starts, so that the first call the server sees is a task create
    project = projects.create_project(db, owner, ProjectCreate(name="export bench", spec=SPEC))
    db.dispose()
    server = Server(data_dir, url)
    key = created["api_key"]
    out: dict[str, Any] = {"database": kind, "rss_start_mib": rss_mib(server.process.pid)}
    try:
        out["first_creates_ms"] = first_creates(server, key, project["id"])
        print(f"{kind}: RSS at start {out['rss_start_mib']} MiB; first creates {out['first_creates_ms']} ms")
        with truthset.Client(server.url, key, timeout=600) as client:
            started = time.perf_counter()
            client.tasks.import_tasks(project["id"], task_stream(args.tasks, "exp"))
            out["import_seconds"] = round(time.perf_counter() - started, 1)
        out["rss_after_import_mib"] = rss_mib(server.process.pid, args.settle)
        print(f"  imported {args.tasks:,} in {out['import_seconds']} s; RSS {out['rss_after_import_mib']} MiB")
        out["exports"] = []
        for i in range(args.exports):
            seconds, size, lines = download(server, key, project["id"])
            row = {
                "seconds": round(seconds, 2),
                "tasks_per_second": round(lines / seconds),
                "mib": round(size / 2**20, 1),
                "lines": lines,
                "rss_mib": rss_mib(server.process.pid, args.settle),
            }
            out["exports"].append(row)
            print(f"  export {i + 1}: {lines:,} lines, {row['mib']} MiB in {row['seconds']} s "
                  f"({row['tasks_per_second']:,} tasks/s); server RSS {row['rss_mib']} MiB")  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is created), or 'auto'")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--exports", type=int, default=5)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before reading the RSS")
    run_backends(run_one, parser.parse_args())


if __name__ == "__main__":
    main()

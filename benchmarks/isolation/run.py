"""Tenant isolation under load: can one organization's imports stall another's annotators?

    .venv/bin/python benchmarks/isolation/run.py                     # SQLite, 20 s per phase
    .venv/bin/python benchmarks/isolation/run.py --postgres auto     # + a throwaway PostgreSQL
    .venv/bin/python benchmarks/isolation/run.py --seconds 30 --jsonl-mb 200 --array-mb 50

One real server (``truthset serve`` on 127.0.0.1, see ``benchmarks/platform/run.py``) and two
organizations. Organization B has a project and 16 annotators (members with their own API keys)
who run the annotation loop (``benchmarks/platform/loadgen.py``: lease the next task, submit, no
think time) for ``--seconds`` in each of five phases:

1. **alone**: nobody else uses the server;
2. **stalled import**: organization A's manager opens a bulk import (chunked JSONL), sends one
   line and then nothing for the whole phase (the connection stays open; it is closed when the
   phase ends);
3. **huge JSONL import**: organization A streams a ``--jsonl-mb`` MB JSONL import;
4. **huge JSON array import**: organization A streams a ``--array-mb`` MB JSON array;
5. **export jobs**: a third organization exports its project of ``--export-tasks`` completed tasks
   (3 responses each, written straight into the database before the server starts, as
   ``benchmarks/export/jobs.py`` seeds them) through the server's own job runner, one export job
   after another for the whole phase, JSONL and Parquet in turn (each downloaded once done); one
   still running when the phase ends is canceled.

The imports' bodies are generated while they are sent; when the phase ends first, the body is cut
short there (the import then holds what was sent: JSONL lines, or an array closed where it was cut).

For each phase it prints responses/s, p50/p99 of ``next`` and ``submit``, the count of 5xx answers,
other errors and timeouts (a call taking longer than ``--request-timeout`` counts as one), and what
organization A's requests got. Everything stays on 127.0.0.1 and every phase is bounded. A
benchmark, not a test: nothing asserts a timing; the goal is p99 under 100 ms and no 5xx in
every phase.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))
# appended, not first: benchmarks/export has a run.py of its own
sys.path.append(str(Path(__file__).resolve().parents[1] / "export"))

from run import (
    OVERLAP,
    SPEC,
    Server,
    make_annotators,
    measure_loop,
    run_backends,
    save_results,
    task_stream,
)

import truthset
from jobs import seed as seed_completed_tasks
from truthset.services import accounts
from truthset.storage import Database, upgrade

RESULTS = Path(__file__).resolve().parents[1] / "results"
console = Console(width=140)
TEXT = "An attacker's task: " + "lorem ipsum dolor sit amet " * 6  # ~180 bytes per line


# --- organization A's requests ---------------------------------------------------------------------


class Attack:
    """Organization A's requests in a thread for one phase; ``stop()`` ends them and reports."""

    def __init__(self, name: str, body: Callable[[threading.Event], dict[str, Any]]) -> None:
        self.name = name
        self._stop = threading.Event()
        self._result: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, args=(body,), name=f"attack-{name}", daemon=True)
        self._thread.start()

    def _run(self, body: Callable[[threading.Event], dict[str, Any]]) -> None:
        started = time.perf_counter()
        try:
            self._result = body(self._stop)
        except Exception as exc:
            self._result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        self._result["seconds"] = round(time.perf_counter() - started, 1)

    def stop(self, grace: float) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(grace)
        if self._thread.is_alive():
            return {"still_running_after_phase": True}
        return self._result


def stalled_import(port: int, key: str, project_id: str) -> Callable[[threading.Event], dict[str, Any]]:
    """A chunked JSONL import: one line, then silence until the phase ends, then the socket closes."""

    def body(stop: threading.Event) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            head = (
                f"POST /api/v1/projects/{project_id}/tasks/bulk HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/x-ndjson\r\n"
                "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
            )
            sock.sendall(head.encode())
            try:
                interim = sock.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
            except TimeoutError:
                interim = "(no answer to the headers within 10 s)"
            line = orjson.dumps({"data": {"text": TEXT}, "unique_id": f"stall-{uuid.uuid4().hex}"}) + b"\n"
            sock.sendall(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            stop.wait()  # silence, with the connection open
            sock.settimeout(0.5)
            try:
                answer = sock.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
            except (TimeoutError, OSError):
                answer = "(nothing: still waiting for the body)"
        return {"first_answer": interim, "answer_at_phase_end": answer}

    return body


def _jsonl_blocks(megabytes: float, stop: threading.Event, prefix: str) -> Iterator[bytes]:
    limit = int(megabytes * 1_000_000)
    sent = i = 0
    while sent < limit and not stop.is_set():
        block = b"".join(
            orjson.dumps({"data": {"text": TEXT}, "unique_id": f"{prefix}-{i + n}"}) + b"\n" for n in range(5000)
        )
        i += 5000
        sent += len(block)
        yield block


def _array_blocks(megabytes: float, stop: threading.Event, prefix: str) -> Iterator[bytes]:
    yield b"["
    first = True
    for block in _jsonl_blocks(megabytes, stop, prefix):
        items = block.rstrip(b"\n").replace(b"\n", b",")
        yield items if first else b"," + items
        first = False
    yield b"]"


def huge_import(
    url: str, key: str, project_id: str, kind: str, megabytes: float
) -> Callable[[threading.Event], dict[str, Any]]:
    """A ``kind`` ("jsonl" or "array") import of ``megabytes`` MB, generated while it is sent."""

    def body(stop: threading.Event) -> dict[str, Any]:
        prefix = f"{kind}-{uuid.uuid4().hex[:6]}"
        blocks = _jsonl_blocks(megabytes, stop, prefix) if kind == "jsonl" else _array_blocks(megabytes, stop, prefix)
        content_type = "application/x-ndjson" if kind == "jsonl" else "application/json"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
        with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(600, connect=10)) as http:
            r = http.post(f"/api/v1/projects/{project_id}/tasks/bulk", content=blocks)
        summary = r.json() if r.headers.get("content-type", "").startswith("application/json") else {"body": r.text}
        fields = ("created", "existing", "error")
        return {"status": r.status_code, "cut_short": stop.is_set(), **{k: summary[k] for k in fields if k in summary}}

    return body


def export_jobs(url: str, key: str, project_id: str, download_dir: Path) -> Callable[[threading.Event], dict[str, Any]]:
    """Export jobs one after another (JSONL, Parquet, ...) until the phase ends; each downloaded."""

    def body(stop: threading.Event) -> dict[str, Any]:
        done: list[dict[str, Any]] = []
        canceled: dict[str, Any] | None = None
        with truthset.Client(url, key, timeout=600) as client:
            while not stop.is_set():
                fmt = ("jsonl", "parquet")[len(done) % 2]
                started = time.perf_counter()
                job = client.start_export(project_id, format=fmt)
                while job.status not in ("succeeded", "failed", "canceled"):
                    if stop.wait(0.2):
                        client.jobs.cancel(job.id)
                        progress = job.progress.model_dump()
                        seconds = round(time.perf_counter() - started, 1)
                        canceled = {"format": fmt, "status": job.status, "progress": progress, "seconds": seconds}
                        break
                    job = client.jobs.get(job.id)
                else:
                    if job.status != "succeeded":
                        return {"failed": {"format": fmt, "status": job.status, "error": job.error}, "exports": done}
                    client.download_export(job.id, download_dir / f"export.{fmt}").unlink()
                    seconds = time.perf_counter() - started
                    tasks = (job.result or {}).get("tasks", 0)
                    done.append({"format": fmt, "tasks": tasks, "seconds": round(seconds, 1)})
        return {"exports": done, "canceled_at_phase_end": canceled}

    return body


class WalPeak:
    """The largest size SQLite's ``-wal`` file reached while this runs (polled every 50 ms)."""

    def __init__(self, wal: Path | None) -> None:
        self.wal, self.peak = wal, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        if wal is not None:
            self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.size())

    def size(self) -> int:
        try:
            return self.wal.stat().st_size if self.wal else 0
        except FileNotFoundError:
            return 0

    def stop(self) -> dict[str, float] | None:
        """The peak, and the size two seconds later (once the checkpointer caught up), in MiB."""
        self._stop.set()
        if self.wal is None:
            return None
        self._thread.join()
        time.sleep(2)
        return {"peak_mib": round(self.peak / 2**20, 1), "after_mib": round(self.size() / 2**20, 1)}


# --- one database ----------------------------------------------------------------------------------


def run_one(kind: str, database_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"truthset-isolation-{kind}-"))
    url = database_url or f"sqlite:///{data_dir / 'truthset.db'}"
    console.rule(f"[bold]{kind}[/bold]  {url.split('@')[-1]}")
    upgrade(url)
    db = Database(url)
    org_a = accounts.init_organization(db, "A (the attacker)", "owner@a.example")
    org_b = accounts.init_organization(db, "B (the annotators)", "owner@b.example")
    export_key = export_project = ""
    if not args.phases or "export jobs" in args.phases:
        console.print(f"seeding the exporting organization: {args.export_tasks:,} completed tasks")
        export_key, export_project = seed_completed_tasks(db, args.export_tasks)
    db.dispose()
    server = Server(data_dir, url)
    phases: list[dict[str, Any]] = []
    try:
        with truthset.Client(server.url, org_b["api_key"], timeout=600) as b:
            project_b = b.projects.create(f"annotate {uuid.uuid4().hex[:6]}", SPEC, overlap=OVERLAP)
            b.tasks.import_tasks(project_b.id, task_stream(args.tasks, "b"))
            keys = make_annotators(b, args.annotators)
        with truthset.Client(server.url, org_a["api_key"], timeout=600) as a:
            project_a = a.projects.create(f"imports {uuid.uuid4().hex[:6]}", SPEC, overlap=1)
        attacks: dict[str, Callable[[], Attack] | None] = {
            "alone": None,
            "stalled import": lambda: Attack("stall", stalled_import(server.port, org_a["api_key"], project_a.id)),
            "huge JSONL import": lambda: Attack(
                "jsonl", huge_import(server.url, org_a["api_key"], project_a.id, "jsonl", args.jsonl_mb)
            ),
            "huge JSON array import": lambda: Attack(
                "array", huge_import(server.url, org_a["api_key"], project_a.id, "array", args.array_mb)
            ),
            "export jobs": lambda: Attack("export", export_jobs(server.url, export_key, export_project, data_dir)),
        }
        for name, start in attacks.items():
            if args.phases and name not in args.phases:
                continue
            console.print(f"phase [bold]{name}[/bold]: {args.annotators} annotators of B for {args.seconds:g} s ...")
            attack = start() if start else None
            wal = WalPeak(data_dir / "truthset.db-wal" if database_url is None else None)
            phase_started = time.perf_counter()
            # the load generator runs for --seconds; the attack goes on meanwhile and ends with it
            stopper = threading.Timer(args.seconds, attack.stop, args=(0,)) if attack else None
            if stopper:
                stopper.start()
            loop = measure_loop(
                server, project_b.id, keys, args.seconds, data_dir, request_timeout=args.request_timeout
            )
            if stopper:
                stopper.cancel()
            attacker = attack.stop(args.grace) if attack else None
            loop["phase_seconds"] = round(time.perf_counter() - phase_started, 1)
            phases.append({"phase": name, "loop": loop, "attacker": attacker, "wal": wal.stop()})
            lat = loop["latency_ms"]
            console.print(
                f"  {loop['responses_per_second']:,} responses/s; p99 next {lat['next'].get('p99')} ms, "
                f"submit {lat['submit'].get('p99')} ms; 5xx {loop['server_errors']}, errors {loop['errors']}"
            )
            if attacker:
                console.print(f"  organization A: {attacker}")
    finally:
        server.stop()
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"database": kind, "phases": phases}


def print_table(results: list[dict[str, Any]]) -> None:
    table = Table(title="Organization B's annotation loop while organization A imports (ms)")
    columns = ("database", "phase", "responses/s", "next p50/p99/max", "submit p50/p99/max", "5xx", "errors", "WAL MiB")
    for column in columns:
        table.add_column(column, justify="right")
    for r in results:
        for phase in r["phases"]:
            loop = phase["loop"]
            lat = loop["latency_ms"]
            table.add_row(
                r["database"],
                phase["phase"],
                f"{loop['responses_per_second']:,}",
                "/".join(str(lat["next"].get(q)) for q in ("p50", "p99", "max")),
                "/".join(str(lat["submit"].get(q)) for q in ("p50", "p99", "max")),
                str(loop["server_errors"]),
                str(loop["errors"] - loop["server_errors"]),
                f"{phase['wal']['peak_mib']} -> {phase['wal']['after_mib']}" if phase["wal"] else "-",
            )
    console.print(table)
    console.print("Goal: p99 under 100 ms and no 5xx in every phase.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is created), or 'auto'")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--tasks", type=int, default=30_000, help="organization B's tasks (overlap 3)")
    parser.add_argument("--jsonl-mb", type=float, default=200.0, help="size of the huge JSONL import")
    parser.add_argument("--array-mb", type=float, default=50.0, help="size of the huge JSON array import")
    parser.add_argument("--export-tasks", type=int, default=200_000, help="completed tasks the export phase exports")
    parser.add_argument("--phases", nargs="+", metavar="PHASE", help="run only these phases (e.g. alone 'export jobs')")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="a loop call slower than this fails")
    parser.add_argument("--grace", type=float, default=60.0, help="how long to wait for A's requests to end")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args()

    results = run_backends(run_one, args)
    print_table(results)
    save_results("isolation", results)


if __name__ == "__main__":
    main()

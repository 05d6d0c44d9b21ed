"""Platform benchmark: bulk import and the annotation loop over HTTP against one real server process.

    .venv/bin/python benchmarks/platform/run.py                       # SQLite, fresh data dir
    .venv/bin/python benchmarks/platform/run.py --postgres auto       # + a throwaway PostgreSQL
    .venv/bin/python benchmarks/platform/run.py --postgres postgresql+psycopg://u@127.0.0.1:5432/db

For each database it starts ONE server process (``truthset serve``, i.e. uvicorn with
``truthset.api:create_app``) on 127.0.0.1 against a fresh database, creates an organization and a
project, and measures:

* bulk import of ``--tasks`` tasks through the API with the SDK: one streamed JSONL request, then
  the same number as 10 requests (tasks/s, end to end);
* the annotation loop (lease the next task + submit a response) with 1, 4 and 16 simulated
  annotators, each a member with its own API key, for ``--seconds`` each, driven by a separate
  load-generator process (``loadgen.py``): responses/s and p50/p95/p99 latency of each call;
* correctness afterwards, straight from the database: no task has more responses than its overlap,
  no task more live leases than it still needs, ``response_count`` matches the responses.

It prints a table and writes the figures to ``benchmarks/results/platform-<db>-<time>.json``.
A benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

import truthset
from truthset.services import accounts
from truthset.storage import Database, upgrade

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
console = Console(width=140)

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["positive", "negative", "neutral"]},
        {"name": "stars", "type": "rating", "min": 1, "max": 5, "required": False},
    ],
}
ANSWER = {"sentiment": "positive", "stars": 4}
OVERLAP = 3
TARGETS = {"import_tasks_per_second": 30_000, "responses_per_second_at_16": 500, "p99_ms": 100}
LABEL_STUDIO = {
    "import_tasks_per_second": "3,800-5,500",
    "loop_1": "4.7/s",
    "loop_16": "3.1-3.5/s",
    "p99": "19-25 s",
}


# --- servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(port: int) -> list[str]:
    """``truthset serve`` when the CLI has it, else uvicorn with the app factory directly."""
    script = Path(sys.executable).with_name("truthset")
    probe = subprocess.run([str(script), "serve", "--help"], capture_output=True) if script.exists() else None
    if probe is not None and probe.returncode == 0:
        return [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return [
        sys.executable, "-m", "uvicorn", "truthset.api:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


class Server:
    """One ``truthset serve`` process on a free 127.0.0.1 port."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TRUTHSET_DATA_DIR": str(data_dir), "TRUTHSET_DATABASE_URL": database_url}
        self.command = server_command(self.port)
        self.log = open(data_dir / "server.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(self.command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {(data_dir / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start within 60 s")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Postgres:
    """A throwaway PostgreSQL cluster with its default durability (fsync and synchronous_commit on)."""

    def __init__(self) -> None:
        bindir = self._bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="truthset-bench-pg-"))
        self.user = None
        if os.geteuid() == 0:  # initdb refuses root
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.dir, self.user)
        self.port = free_port()
        self.ctl = [str(bindir / "pg_ctl"), "-D", str(self.dir / "data")]
        data = str(self.dir / "data")
        self._run([str(bindir / "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=200"
        self._run([*self.ctl, "-l", str(self.dir / "server.log"), "-w", "start", "-o", options])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _bindir() -> Path:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        for path in [*candidates, Path("/usr/local/bin")]:
            if (path / "pg_ctl").exists() and (path / "initdb").exists():
                return path
        raise RuntimeError("no PostgreSQL binaries (apt-get install postgresql)")

    def _run(self, command: list[str]) -> None:
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def stop(self) -> None:
        try:
            self._run([*self.ctl, "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def fresh_postgres_database(url: str) -> str:
    """Create a new database on the server at ``url`` and return its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"truthset_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


class WalSampler:
    """Samples the size of SQLite's ``-wal`` file every ``every`` seconds in a thread; keeps the peak per phase."""

    def __init__(self, database_path: Path, every: float = 0.05) -> None:
        self.path = database_path.with_name(database_path.name + "-wal")
        self.every = every
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-sampler", daemon=True)
        self._thread.start()

    def mark(self, phase: str) -> None:
        """From now on, samples count toward ``phase`` (e.g. "import", "loop 16")."""
        self.phase = phase

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), size)
            self.samples += 1

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        peak = max(self.peaks.values(), default=0)
        return {
            "peak_bytes": peak,
            "peak_mib": round(peak / 2**20, 1),
            "peak_mib_by_phase": {name: round(size / 2**20, 1) for name, size in self.peaks.items()},
            "samples": self.samples,
        }


# --- the measurements ------------------------------------------------------------------------------


def task_stream(n: int, prefix: str) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "data": {"text": f"Review {i}: the battery lasts two days and the screen is bright enough outdoors."},
            "unique_id": f"{prefix}-{i}",
            "metadata": {"source": "bench", "shard": i % 16},
        }


def measure_import(client: truthset.Client, n: int) -> dict[str, Any]:
    project = client.projects.create(f"import {uuid.uuid4().hex[:6]}", SPEC, overlap=OVERLAP)
    started = time.perf_counter()
    report = client.tasks.import_tasks(project.id, task_stream(n, "one"))
    one = time.perf_counter() - started
    assert report.created == n, report

    other = client.projects.create(f"import x10 {uuid.uuid4().hex[:6]}", SPEC, overlap=OVERLAP)
    per_request = n // 10
    started = time.perf_counter()
    created = 0
    for part in range(10):
        created += client.tasks.import_tasks(other.id, task_stream(per_request, f"ten-{part}")).created
    ten = time.perf_counter() - started
    assert created == per_request * 10

    started = time.perf_counter()
    again = client.tasks.import_tasks(other.id, task_stream(per_request, "ten-0"))
    repeat = time.perf_counter() - started
    assert again.created == 0 and again.existing == per_request
    return {
        "project_id": project.id,
        "tasks": n,
        "one_request": {"seconds": round(one, 2), "tasks_per_second": round(n / one)},
        "ten_requests": {"seconds": round(ten, 2), "tasks_per_second": round(per_request * 10 / ten)},
        "reimport_existing": {"tasks": per_request, "tasks_per_second": round(per_request / repeat)},
    }


def make_annotators(client: truthset.Client, n: int) -> list[str]:
    keys = []
    for i in range(n):
        member = client.members.add(f"annotator{i}-{uuid.uuid4().hex[:6]}@bench.example", role="annotator")
        keys.append(client.keys.create("bench", member_id=member.id).key)
    return keys


def measure_loop(
    server: Server,
    project_id: str,
    keys: list[str],
    seconds: float,
    workdir: Path,
    *,
    request_timeout: float | None = None,
) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": server.port,
        "project_id": project_id,
        "keys": keys,
        "seconds": seconds,
        "answer": ANSWER,
        "request_timeout": request_timeout,
    }
    spec_path = workdir / f"loadgen-{len(keys)}.json"
    spec_path.write_text(json.dumps(spec))
    cpu_before = server.cpu_seconds()
    out = subprocess.run(
        [sys.executable, str(HERE / "loadgen.py"), str(spec_path)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    result["server_cpu_seconds"] = round(server.cpu_seconds() - cpu_before, 2)
    return result


def check_correctness(database_url: str) -> dict[str, Any]:
    """Read the database directly: invariants of the queue after the run."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    queries = {
        "tasks_over_overlap": "SELECT count(*) FROM (SELECT r.task_id FROM responses r "
        "JOIN tasks t ON t.id = r.task_id GROUP BY r.task_id, t.overlap HAVING count(*) > t.overlap) x",
        "tasks_over_leased": "SELECT count(*) FROM (SELECT a.task_id FROM assignments a "
        "JOIN tasks t ON t.id = a.task_id WHERE a.status = 'active' GROUP BY a.task_id, t.overlap, t.response_count "
        "HAVING count(*) + t.response_count > t.overlap) x",
        "response_count_mismatches": "SELECT count(*) FROM tasks t WHERE t.response_count <> "
        "(SELECT count(*) FROM responses r WHERE r.task_id = t.id)",
        "lease_count_mismatches": "SELECT count(*) FROM tasks t WHERE t.lease_count <> "
        "(SELECT count(*) FROM assignments a WHERE a.task_id = t.id AND a.status = 'active')",
        "duplicate_worker_responses": "SELECT count(*) FROM (SELECT task_id, worker_id FROM responses "
        "GROUP BY task_id, worker_id HAVING count(*) > 1) x",
        "completed_short_of_overlap": "SELECT count(*) FROM tasks "
        "WHERE status = 'completed' AND response_count < overlap",
        "responses": "SELECT count(*) FROM responses",
        "completed_tasks": "SELECT count(*) FROM tasks WHERE status = 'completed'",
    }
    with engine.connect() as conn:
        found = {name: int(conn.execute(text(sql)).scalar_one()) for name, sql in queries.items()}
    engine.dispose()
    found["ok"] = all(v == 0 for k, v in found.items() if k not in ("responses", "completed_tasks"))
    return found


def run_one(kind: str, database_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"truthset-bench-{kind}-"))
    url = database_url or f"sqlite:///{data_dir / 'truthset.db'}"
    console.rule(f"[bold]{kind}[/bold]  {url.split('@')[-1]}")
    upgrade(url)
    db = Database(url)
    created = accounts.init_organization(db, "Bench", "owner@bench.example")
    db.dispose()
    server = Server(data_dir, url)
    console.print(f"server: {' '.join(server.command[-6:])} (pid {server.process.pid})")
    wal = WalSampler(data_dir / "truthset.db") if database_url is None else None
    try:
        with truthset.Client(server.url, created["api_key"], timeout=120) as client:
            console.print(f"importing {args.tasks:,} tasks ...")
            if wal:
                wal.mark("import")
            imports = measure_import(client, args.tasks)
            console.print(
                f"  one request: {imports['one_request']['tasks_per_second']:,} tasks/s; "
                f"10 requests: {imports['ten_requests']['tasks_per_second']:,} tasks/s"
            )
            keys = make_annotators(client, max(args.annotators))
        loops = []
        for n in args.annotators:
            console.print(f"annotation loop: {n} annotator(s), {args.seconds:g} s ...")
            if wal:
                wal.mark(f"loop {n}")
            result = measure_loop(server, imports["project_id"], keys[:n], args.seconds, data_dir)
            p99 = {call: result["latency_ms"][call].get("p99") for call in ("next", "submit")}
            console.print(
                f"  {result['responses_per_second']:,} responses/s, p99 next {p99['next']} ms,"
                f" submit {p99['submit']} ms, errors {result['errors']}"
            )
            loops.append(result)
        if wal:
            wal.mark("after")
        correctness = check_correctness(url)
    finally:
        wal_peak = wal.stop() if wal else None
        server.stop()
    if wal_peak:
        phases = ", ".join(f"{name} {mib} MiB" for name, mib in wal_peak["peak_mib_by_phase"].items())
        console.print(f"WAL peak: {wal_peak['peak_mib']} MiB ({phases}; {wal_peak['samples']:,} samples)")
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"database": kind, "import": imports, "loop": loops, "correctness": correctness, "wal": wal_peak}


# --- output ----------------------------------------------------------------------------------------


def print_tables(results: list[dict[str, Any]]) -> None:
    imports = Table(title="Bulk import over HTTP (SDK, streamed JSONL)")
    for column in ("database", "tasks", "1 request", "10 requests", "re-import (existing)", "target", "Label Studio"):
        imports.add_column(column, justify="right")
    for r in results:
        i = r["import"]
        imports.add_row(
            r["database"],
            f"{i['tasks']:,}",
            f"{i['one_request']['tasks_per_second']:,}/s",
            f"{i['ten_requests']['tasks_per_second']:,}/s",
            f"{i['reimport_existing']['tasks_per_second']:,}/s",
            f"{TARGETS['import_tasks_per_second']:,}/s",
            f"{LABEL_STUDIO['import_tasks_per_second']}/s",
        )
    console.print(imports)

    loop = Table(title="Annotation loop (next task + submit), p50/p95/p99 ms")
    for column in ("database", "annotators", "responses/s", "next", "submit", "errors", "server CPU/resp"):
        loop.add_column(column, justify="right")
    for r in results:
        for result in r["loop"]:
            lat = result["latency_ms"]
            per = result["server_cpu_seconds"] / max(result["responses"], 1) * 1000
            loop.add_row(
                r["database"],
                str(result["annotators"]),
                f"{result['responses_per_second']:,}",
                "/".join(str(lat["next"].get(q)) for q in ("p50", "p95", "p99")),
                "/".join(str(lat["submit"].get(q)) for q in ("p50", "p95", "p99")),
                str(result["errors"]),
                f"{per:.2f} ms",
            )
    console.print(loop)
    console.print(
        f"Targets: {TARGETS['responses_per_second_at_16']} responses/s at 16 annotators, p99 < {TARGETS['p99_ms']} ms."
        f" Label Studio: {LABEL_STUDIO['loop_1']} (1), {LABEL_STUDIO['loop_16']} (16), p99 {LABEL_STUDIO['p99']}."
    )
    for r in results:
        if r.get("wal"):
            phases = ", ".join(f"{name} {mib} MiB" for name, mib in r["wal"]["peak_mib_by_phase"].items())
            console.print(f"SQLite WAL file ({r['database']}): peak {r['wal']['peak_mib']} MiB ({phases})")
    for r in results:
        c = r["correctness"]
        verdict = "[green]OK[/green]" if c["ok"] else "[red]VIOLATED[/red]"
        console.print(
            f"Correctness ({r['database']}): {verdict} - {c['responses']:,} responses, {c['completed_tasks']:,} tasks "
            f"completed; over overlap {c['tasks_over_overlap']}, over-leased {c['tasks_over_leased']}, "
            f"count mismatches {c['response_count_mismatches'] + c['lease_count_mismatches']}, "
            f"duplicate answers {c['duplicate_worker_responses']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is created), or 'auto'")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each annotation loop run")
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks to bulk import")
    parser.add_argument("--annotators", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args()

    results = run_backends(run_one, args)
    print_tables(results)
    save_results("platform", results)


def run_backends(run: Callable[[str, str | None, argparse.Namespace], dict], args: argparse.Namespace) -> list[dict]:
    """``run`` on SQLite (unless ``--no-sqlite``) and on PostgreSQL (``--postgres URL|auto``)."""
    results = []
    if not args.no_sqlite:
        results.append(run("sqlite", None, args))
    if args.postgres:
        cluster = Postgres() if args.postgres == "auto" else None
        try:
            url = fresh_postgres_database(cluster.url if cluster else args.postgres)
            results.append(run("postgresql", url, args))
        finally:
            if cluster:
                cluster.stop()
    return results


def save_results(name: str, results: list[dict]) -> Path:
    """Write the results with the command and the machine to ``benchmarks/results/NAME-STAMP.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    meta = {
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "truthset": truthset.__version__,
        "at": stamp,
    }
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    console.print(f"results: {path}")
    return path


if __name__ == "__main__":
    main()

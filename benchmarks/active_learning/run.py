"""Active-learning queue benchmark: what ``ordering: "uncertainty"`` costs the lease, and a re-rank.

    .venv/bin/python benchmarks/active_learning/run.py                      # SQLite, 100,000 tasks
    .venv/bin/python benchmarks/active_learning/run.py --postgres auto      # + a throwaway PostgreSQL
    .venv/bin/python benchmarks/active_learning/run.py --tasks 20000 --seconds 10

For each database: two projects of ``--tasks`` tasks each with the platform benchmark's spec and
overlap 3, one with ``ordering: "priority"`` (the default), one with ``"uncertainty"``; every task
gets a model prediction with a random class and score (uploaded through the service, 5,000 per
call). Measured in this process (CPU by ``time.process_time``, so a loaded machine's waits do not
count): the predictions upload, the ``queue.rerank`` job the upload asked for (run by a job runner
here), and a second re-rank with nothing changed. Then ONE server process (``truthset serve``)
serves the annotation loop (lease + submit) with ``--annotators`` simulated annotators for
``--seconds`` on each project, driven by the platform benchmark's load generator: responses/s,
p50/p95/p99 of each call, and the server's CPU seconds per response. The loop's own refits (and,
under "uncertainty", the re-ranks they ask for) run in the server meanwhile, as in production.
Correctness afterwards, from the database, as in the platform benchmark.

A benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from rich.table import Table
from run import SPEC, Server, console, make_annotators, measure_loop, run_backends, save_results

import truthset
from truthset.jobs import Runner
from truthset.schemas import PredictionUpload, ProjectCreate
from truthset.services import accounts, active_learning, predictions, projects, tasks
from truthset.storage import Database, upgrade

OVERLAP = 3
PER_UPLOAD = 5_000
CLASSES = ("positive", "negative", "neutral")


def _timed(call: Any) -> tuple[Any, dict[str, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)}


def seed(db: Database, principal: Any, ordering: str, n: int, rng: random.Random) -> dict[str, Any]:
    """A project of ``n`` tasks with one prediction each, its queue re-ranked; the costs measured."""
    body = {
        "name": f"{ordering} {uuid.uuid4().hex[:6]}",
        "spec": SPEC,
        "quality": {"overlap": OVERLAP, "ordering": ordering},
    }
    project = projects.create_project(db, principal, ProjectCreate.model_validate(body))
    items = ((i + 1, {"data": {"text": f"{ordering} item {i}"}}) for i in range(n))
    report, imported = _timed(lambda: tasks.import_tasks(db, principal, project["id"], items))
    assert report.created == n, report
    ids = [task["id"] for task in _all_ids(db, project["id"])]

    def upload() -> None:
        for start in range(0, len(ids), PER_UPLOAD):
            chunk = [
                {
                    "task_id": i,
                    "question": "sentiment",
                    "answer": rng.choice(CLASSES),
                    "score": round(rng.uniform(0.34, 1.0), 4),
                }
                for i in ids[start : start + PER_UPLOAD]
            ]
            predictions.upload_predictions(
                db, principal, project["id"], PredictionUpload(model="bench", version="1", predictions=chunk)
            )

    _, uploaded = _timed(upload)
    jobs_run, first = _timed(lambda: Runner(db, kinds=[active_learning.JOB_KIND]).run_until_idle())
    again, second = _timed(lambda: active_learning.rerank_project(db, principal.organization_id, project["id"]))
    top = active_learning.queue_order(db, principal, project["id"], limit=5)
    return {
        "ordering": ordering,
        "project_id": project["id"],
        "tasks": n,
        "import": imported,
        "predictions_upload": uploaded,
        "rerank_jobs_run": jobs_run,
        "rerank": first,
        "rerank_unchanged": {**second, "changed": again["changed"]},
        "first_in_queue": top,
    }


def _all_ids(db: Database, project_id: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from truthset.storage import tables as t

    with db.read() as conn:
        query = select(t.tasks.c.id).where(t.tasks.c.project_id == project_id).order_by(t.tasks.c.id)
        return [dict(row) for row in conn.execute(query).mappings()]


def check_correctness(database_url: str) -> dict[str, Any]:
    """The platform benchmark's invariants of the queue, counting people's responses only (a
    prediction is a model worker's response that is no judgment: ``scores`` is set)."""
    from sqlalchemy import create_engine, text

    people = "(SELECT * FROM responses WHERE scores IS NULL)"
    queries = {
        "tasks_over_overlap": f"SELECT count(*) FROM (SELECT r.task_id FROM {people} r "
        "JOIN tasks t ON t.id = r.task_id GROUP BY r.task_id, t.overlap HAVING count(*) > t.overlap) x",
        "tasks_over_leased": "SELECT count(*) FROM (SELECT a.task_id FROM assignments a "
        "JOIN tasks t ON t.id = a.task_id WHERE a.status = 'active' GROUP BY a.task_id, t.overlap, t.response_count "
        "HAVING count(*) + t.response_count > t.overlap) x",
        "response_count_mismatches": "SELECT count(*) FROM tasks t WHERE t.response_count <> "
        f"(SELECT count(*) FROM {people} r WHERE r.task_id = t.id)",
        "lease_count_mismatches": "SELECT count(*) FROM tasks t WHERE t.lease_count <> "
        "(SELECT count(*) FROM assignments a WHERE a.task_id = t.id AND a.status = 'active')",
        "duplicate_worker_responses": "SELECT count(*) FROM (SELECT task_id, worker_id FROM responses "
        "GROUP BY task_id, worker_id HAVING count(*) > 1) x",
        "completed_short_of_overlap": "SELECT count(*) FROM tasks "
        "WHERE status = 'completed' AND response_count < overlap",
        "responses": f"SELECT count(*) FROM {people} r",
        "completed_tasks": "SELECT count(*) FROM tasks WHERE status = 'completed'",
    }
    engine = create_engine(database_url)
    with engine.connect() as conn:
        found = {name: int(conn.execute(text(sql)).scalar_one()) for name, sql in queries.items()}
    engine.dispose()
    found["ok"] = all(v == 0 for k, v in found.items() if k not in ("responses", "completed_tasks"))
    return found


def run_one(kind: str, database_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"truthset-albench-{kind}-"))
    url = database_url or f"sqlite:///{data_dir / 'truthset.db'}"
    console.rule(f"[bold]{kind}[/bold]  {url.split('@')[-1]}")
    upgrade(url)
    db = Database(url)
    created = accounts.init_organization(db, "Bench", "owner@bench.example")
    principal = accounts.authenticate(db, created["api_key"])
    rng = random.Random(13)
    seeded = []
    for ordering in ("priority", "uncertainty"):
        console.print(f"seeding {args.tasks:,} tasks with predictions, ordering {ordering} ...")
        seeded.append(seed(db, principal, ordering, args.tasks, rng))
        console.print(f"  re-rank: {seeded[-1]['rerank']} ({seeded[-1]['rerank_jobs_run']} job)")
    db.dispose()
    server = Server(data_dir, url)
    try:
        with truthset.Client(server.url, created["api_key"], timeout=120) as client:
            keys = make_annotators(client, args.annotators)
        for entry in seeded:
            console.print(f"annotation loop, {entry['ordering']}: {args.annotators} annotators, {args.seconds:g} s ...")
            entry["loop"] = measure_loop(server, entry["project_id"], keys, args.seconds, data_dir)
            loop = entry["loop"]
            loop["server_cpu_ms_per_response"] = round(1000 * loop["server_cpu_seconds"] / max(1, loop["responses"]), 2)
        correctness = check_correctness(url)
    finally:
        server.stop()
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"database": kind, "projects": seeded, "correctness": correctness}


def print_tables(results: list[dict[str, Any]]) -> None:
    costs = Table(title="Seeding and re-ranking (this process; CPU = time.process_time)")
    for column in ("database", "ordering", "tasks", "predictions upload", "re-rank", "re-rank, nothing changed"):
        costs.add_column(column, justify="right")
    loops = Table(title="Annotation loop over HTTP (one server process)")
    for column in (
        "database",
        "ordering",
        "annotators",
        "responses/s",
        "next p50/p99 ms",
        "submit p50/p99 ms",
        "server CPU ms/response",
        "errors",
    ):
        loops.add_column(column, justify="right")
    for r in results:
        for p in r["projects"]:

            def fmt(m: dict[str, Any]) -> str:
                return f"{m['wall_s']} s wall, {m['cpu_s']} s CPU"

            costs.add_row(
                r["database"],
                p["ordering"],
                f"{p['tasks']:,}",
                fmt(p["predictions_upload"]),
                fmt(p["rerank"]),
                fmt(p["rerank_unchanged"]),
            )
            loop = p["loop"]
            lat = loop["latency_ms"]
            loops.add_row(
                r["database"],
                p["ordering"],
                str(loop["annotators"]),
                f"{loop['responses_per_second']:,}",
                f"{lat['next'].get('p50')} / {lat['next'].get('p99')}",
                f"{lat['submit'].get('p50')} / {lat['submit'].get('p99')}",
                str(loop["server_cpu_ms_per_response"]),
                str(len(loop["errors"]) if isinstance(loop["errors"], list) else loop["errors"]),
            )
        console.print(f"{r['database']} correctness: {r['correctness']}")
    console.print(costs)
    console.print(loops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is created), or 'auto'")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each annotation loop run")
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks per project")
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args()
    results = run_backends(run_one, args)
    print_tables(results)
    save_results("active-learning", results)


if __name__ == "__main__":
    main()

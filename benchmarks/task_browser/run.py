"""The task browser at a million tasks: server time per page for every filter x sort it offers.

    .venv/bin/python benchmarks/task_browser/run.py [--tasks 1000000] [--postgres URL] [--no-sqlite]

Fills a fresh database with one project of N tasks by plain SQL inserts in blocks (varied status,
batch, priority, confidence, review outcome, metadata, words in the data; 5% answered by one of 20
workers; the search index is kept by its triggers / GIN index as in production), then times, for
each filter and each sort, the first page and a deep page (a cursor in the middle of the order):

- ``service``: ``services.tasks.list_tasks`` (the query behind the page and ``GET /api/v1/tasks``);
- ``page``: ``GET /projects/{id}/tasks`` through the ASGI app (httpx, signed in as the owner):
  the query, the batch and worker lists, the template.

Each figure is the median of ``--repeat`` runs, in milliseconds, 50 tasks a page (the browser's).
Target: under 200 ms per page. A benchmark, not a test: nothing asserts a timing.
For PostgreSQL, ``eval "$(scripts/start-postgres.sh)"`` starts a throwaway server and exports
``TRUTHSET_TEST_POSTGRES_URL``; pass it as ``--postgres`` (an empty database).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, text

from truthset.api import create_app
from truthset.config import Settings
from truthset.domain import TaskStatus
from truthset.schemas import MemberCreate, ProjectCreate
from truthset.services import accounts, projects, task_browse
from truthset.services.tasks import TaskFilter, list_tasks
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "q", "type": "label", "options": ["a", "b"]}],
}
PAGE = 50
ONLY: list[str | None] = [None]  # --only
BLOCK = 20_000
WORDS = [f"w{n}" for n in range(5000)]  # w0 is common (Zipf-like draw), w4999 rare
STATUSES = [TaskStatus.COMPLETED] * 6 + [TaskStatus.PENDING] * 3 + [TaskStatus.CANCELED] * 1
REVIEWS = [None] * 8 + ["accepted", "rejected"]


def _words(rng: random.Random) -> str:
    return " ".join(WORDS[min(int(rng.paretovariate(1.0)) - 1, 4999)] for _ in range(8))


def fill(db: Database, count: int, console: Console) -> dict[str, Any]:
    created = accounts.init_organization(db, "bench", "bench@example.com")
    owner = accounts.authenticate(db, created["api_key"])
    project = projects.create_project(db, owner, ProjectCreate(name="browser", spec=SPEC))
    org, pid, now, rng = owner.organization_id, project["id"], utcnow(), random.Random(7)
    batch_ids, worker_ids = new_ids(20), new_ids(20)
    with db.write() as conn:
        conn.execute(
            insert(t.batches),
            [
                {"id": b, "organization_id": org, "project_id": pid, "name": f"batch {i}", "status": "finalized"}
                | {"metadata": {}, "created_at": now}
                for i, b in enumerate(batch_ids)
            ],
        )
        conn.execute(
            insert(t.workers),
            [
                {"id": w, "organization_id": org, "kind": "model", "name": f"model {i}", "created_at": now}
                for i, w in enumerate(worker_ids)
            ],
        )
    started = time.perf_counter()
    for start in range(0, count, BLOCK):
        ids = new_ids(min(BLOCK, count - start))
        rows, answers = [], []
        for offset, task_id in enumerate(ids):
            n = start + offset
            created_at = now - timedelta(seconds=count - n)
            status = STATUSES[n % 10] if n % 50 else TaskStatus.GOLD  # 2% gold
            done = status == TaskStatus.COMPLETED
            rows.append(
                {
                    "id": task_id,
                    "organization_id": org,
                    "project_id": pid,
                    "batch_id": batch_ids[n % 20],
                    "unique_id": None,
                    "data": {"text": _words(rng)},
                    "metadata": {"source": f"s{n % 7}", "lang": ("en", "fr", "de", "es", "it")[n % 5]},
                    "priority": rng.randrange(10),
                    "status": str(status),
                    "overlap": 1,
                    "response_count": 1 if done else 0,
                    "lease_count": 0,
                    "result": {"answer": {"q": "a"}} if done else None,
                    "confidence": round(rng.random(), 4) if done else None,
                    "created_at": created_at,
                    "updated_at": created_at + timedelta(seconds=rng.randrange(86_400)),
                    "completed_at": created_at if done else None,
                    "review_status": REVIEWS[n % 10] if done else None,
                }
            )
            if n % 20 == 0:  # 5% answered by one of the workers
                answers.append(
                    {
                        "id": new_ids(1)[0],
                        "organization_id": org,
                        "project_id": pid,
                        "task_id": task_id,
                        "worker_id": worker_ids[n % 400 // 20],
                        "answer": {"q": "a"},
                        "created_at": created_at,
                    }
                )
        with db.write() as conn:
            conn.execute(insert(t.tasks), rows)
            conn.execute(insert(t.responses), answers)
        done_count = start + len(ids)
        console.print(f"\r  filled {done_count:,} tasks ({time.perf_counter() - started:.0f} s)", end="")
    console.print()
    with db.engine.connect() as conn:  # statistics, as a maintained database has them
        conn.execute(text("ANALYZE"))
        conn.commit()
    world = {"owner": owner, "project": project, "batches": batch_ids, "workers": worker_ids}
    return world | {"email": "bench@example.com", "secret": created["password"]}


def cases(world: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The browser's filters as its form takes them (the page) - the service gets the same."""
    return {
        "no filter": {},
        "status=completed": {"status": "completed"},
        "status=canceled (10%)": {"status": "canceled"},
        "batch": {"batch": world["batches"][3]},
        "confidence 0.9-1": {"min_confidence": "0.9", "max_confidence": "1"},
        "confidence 0-0.1": {"max_confidence": "0.1"},
        "worker (0.25%)": {"worker": world["workers"][5]},
        "gold only (2%)": {"gold": "yes"},
        "review=rejected": {"review": "rejected"},
        "never reviewed": {"review": "none"},
        "meta lang=fr": {"meta": "lang=fr"},
        "meta source=s3 + pending": {"meta": "source=s3", "status": "pending"},
        "search common word": {"q": "w0"},
        "search rare word": {"q": "w4321"},
        "search 2 words + completed": {"q": "w1 w2", "status": "completed"},
    }


def deep_cursor(sort: str, world: dict[str, Any], middle_id: str) -> str:
    """A cursor in the middle of the order (as deep as a client paging through would reach)."""
    name = sort.lstrip("-")
    if name == "created":
        return middle_id
    value = {"updated": utcnow() - timedelta(days=3650), "confidence": 0.5, "priority": 5}[name]
    if name == "updated":
        value = world["middle_updated"]
    return task_browse.encode_cursor(value, middle_id)


def service_filter(pid: str, form: dict[str, str]) -> TaskFilter:
    from truthset.ui._task_pages import BrowserForm, _filters

    values = {name: form.get(name, "") for name in ("status", "batch", "min_confidence", "max_confidence")}
    values |= {name: form.get(name, "") for name in ("worker", "gold", "review", "meta", "q", "sort")}
    filters, _ = _filters(pid, BrowserForm(values))
    return filters


def _service_ms(db: Database, owner: Any, filters: TaskFilter, sort: str, cursor: str | None, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        list_tasks(db, owner, filters, cursor=cursor, limit=PAGE, sort=sort)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def existing(db: Database) -> dict[str, Any]:
    """The world of a database this benchmark filled before (``--reuse``)."""
    with db.engine.connect() as conn:
        org, pid = conn.execute(text("SELECT organization_id, id FROM projects LIMIT 1")).one()
        batches = [r[0] for r in conn.execute(text("SELECT id FROM batches ORDER BY name")).all()]
        workers = [r[0] for r in conn.execute(text("SELECT id FROM workers WHERE kind = 'model' ORDER BY name"))]
        count = conn.execute(text("SELECT count(*) FROM tasks")).scalar_one()
    owner = accounts.local_admin(db, org)
    email, secret = f"viewer-{time.time_ns()}@example.com", "a long benchmark password 1"
    accounts.add_member(db, owner, MemberCreate(email=email, name="viewer", role="manager", password=secret))
    world = {"owner": owner, "project": {"id": pid}, "batches": batches, "workers": workers, "count": count}
    return world | {"email": email, "secret": secret}


async def run(
    url: str, count: int, repeat: int, console: Console, tmp: Path, reuse: bool = False, progress: bool = True
) -> Table:
    db = Database(url)
    if reuse:
        world = existing(db)
        count = world["count"]
    else:
        db.create_all()
        world = fill(db, count, console)
    pid, owner = world["project"]["id"], world["owner"]
    with db.engine.connect() as conn:
        middle = conn.execute(
            text("SELECT id, updated_at FROM tasks WHERE project_id = :p ORDER BY id LIMIT 1 OFFSET :n"),
            {"p": pid, "n": count // 2},
        ).one()
    world["middle_updated"] = middle[1]
    app = create_app(Settings(data_dir=tmp / "data"), db=db)
    table = Table(
        f"filter x sort ({count:,} tasks, {PAGE} a page, ms)",
        "sort",
        "service first",
        "service deep",
        "page first",
        "page deep",
        "rows",
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        await _sign_in(client, world)
        for name, form in cases(world).items():
            if ONLY[0] and ONLY[0] not in name:
                continue
            filters = service_filter(pid, form)
            for sort in task_browse.SORTS:
                cursor = deep_cursor(sort, world, middle[0])
                rows, _ = list_tasks(db, owner, filters, cursor=None, limit=PAGE, sort=sort)
                figures = [_service_ms(db, owner, filters, sort, c, repeat) for c in (None, cursor)]
                for c in (None, cursor):
                    params = {**form, "sort": sort, **({"cursor": c} if c else {})}
                    figures.append(await _page_ms(client, pid, params, repeat))
                table.add_row(name, sort, *(f"{f:.1f}" for f in figures), str(len(rows)))
                if progress:  # one line per case as it comes (the table follows at the end)
                    console.print(f"  {name:28} {sort:12} " + " ".join(f"{f:8.1f}" for f in figures), highlight=False)
    db.dispose()
    return table


async def _sign_in(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    import re

    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    data = {"email": world["email"], "password": world["secret"], "csrf_token": token.group(1)}
    signed = await client.post("/login", data=data)
    assert signed.status_code in (200, 303), signed.text


async def _page_ms(client: httpx.AsyncClient, pid: str, params: dict[str, str], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(f"/projects/{pid}/tasks", params=params)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL (an empty database)")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    parser.add_argument(
        "--reuse", metavar="FILE_OR_URL", help="time a database this benchmark filled before (a SQLite file or a URL)"
    )
    parser.add_argument("--keep", metavar="SQLITE_FILE", help="fill this SQLite file (kept) instead of a temporary one")
    parser.add_argument("--only", help="only the filters whose name contains this")
    args = parser.parse_args()
    ONLY[0] = args.only
    console = Console(width=160)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.reuse:
            console.print(f"SQLite (reused {args.reuse}):")
            url = args.reuse if "://" in args.reuse else f"sqlite:///{args.reuse}"
            console.print(anyio.run(run, url, 0, args.repeat, console, tmp, True))
        elif not args.no_sqlite:
            console.print("SQLite:")
            path = args.keep or tmp / "browser.db"
            console.print(anyio.run(run, f"sqlite:///{path}", args.tasks, args.repeat, console, tmp))
        if args.postgres:
            console.print("PostgreSQL:")
            console.print(anyio.run(run, args.postgres, args.tasks, args.repeat, console, tmp))


if __name__ == "__main__":
    main()

"""Pruning the images no task names: how long the ``media.prune`` job takes, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/media_prune/run.py                      # SQLite, 100,000 tasks
    .venv/bin/python benchmarks/media_prune/run.py --postgres auto --tasks 50000

Seeds a fresh database directly, in blocks of rows: ``--tasks`` tasks each naming one image
(``media:<id>`` in an image field), and ``--unnamed`` (default a fifth of ``--tasks``) more images
no task names, all uploaded three days ago, each with a small file in the media store. Then asks
for a prune of the images older than a day (``media_pruning.start``, as ``POST /media/pruning``
does) and runs the job with a job runner in this process, printing its wall time, tasks read and
images checked per second, and what went (every unnamed image with its file, and no named one). The
tasks are made just before the prune, so every deleting transaction also reads them as tasks made
while the job read (the slow case). A benchmark, not a test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from run import run_backends
from sqlalchemy import func, select

from truthset.config import Settings
from truthset.jobs import Runner
from truthset.schemas import ProjectCreate
from truthset.services import accounts, media, media_pruning, projects
from truthset.storage import Database, upgrade
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

BLOCK = 10_000
SPEC = {
    "fields": [{"name": "image", "type": "image"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}
TASK_COLUMNS = (
    "id", "organization_id", "project_id", "unique_id", "data", "metadata", "priority", "status",
    "overlap", "response_count", "lease_count", "created_at", "updated_at",
)  # fmt: skip


def seed(db: Database, owner: accounts.Principal, media_dir: Path, tasks: int, unnamed: int) -> list[str]:
    """The images (rows and files) and the tasks naming the first ``tasks`` of them; the unnamed ids."""
    project = projects.create_project(db, owner, ProjectCreate(name="images", spec=SPEC, quality={"overlap": 1}))
    org, now, old = owner.organization_id, utcnow(), utcnow() - timedelta(days=3)
    ids = new_ids(tasks + unnamed)
    for start in range(0, len(ids), BLOCK):
        rows = []
        for media_id in ids[start : start + BLOCK]:
            sha = hashlib.sha256(media_id.encode()).hexdigest()
            path = media.blob_path(media_dir, sha)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(media_id.encode())
            rows.append({"id": media_id, "organization_id": org, "sha256": sha, "content_type": "image/png",
                         "size": len(media_id), "filename": "x.png", "created_at": old,
                         "width": 1, "height": 1})  # fmt: skip
        with db.write() as conn:
            conn.execute(t.media.insert(), rows)
    for start in range(0, tasks, BLOCK):
        with db.write() as conn:
            at = repo.driver_datetime(conn, now)
            block = [
                (task_id, org, project["id"], f"t{start + i}", f'{{"image": "media:{ids[start + i]}"}}', "{}", 0,
                 "pending", 1, 0, 0, at, at)
                for i, task_id in enumerate(new_ids(min(BLOCK, tasks - start)))
            ]  # fmt: skip
            repo.insert_prepared(conn, t.tasks, TASK_COLUMNS, block)
    return ids[tasks:]


def run_one(kind: str, url: str | None, args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"truthset-prune-{kind}-"))
    url = url or f"sqlite:///{data_dir / 'truthset.db'}"
    settings = Settings(data_dir=data_dir)
    upgrade(url)
    db = Database(url)
    unnamed = args.tasks // 5 if args.unnamed is None else args.unnamed
    try:
        created = accounts.init_organization(db, "Bench", "owner@bench.example")
        owner = accounts.authenticate(db, created["api_key"])
        started = time.perf_counter()
        doomed = seed(db, owner, settings.media_dir, args.tasks, unnamed)
        if not db.is_sqlite:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        print(f"{kind}: seeded {args.tasks:,} tasks and {args.tasks + unnamed:,} images "
              f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
        job = media_pruning.start(db, owner, older_than_hours=24)
        started = time.perf_counter()
        Runner(db, kinds=[media_pruning.JOB_KIND], settings=settings).run_until_idle()
        seconds = time.perf_counter() - started
        with db.read() as conn:
            status, error, result = conn.execute(
                select(t.jobs.c.status, t.jobs.c.error, t.jobs.c.result).where(t.jobs.c.id == job["id"])
            ).one()
            left = conn.execute(select(func.count()).select_from(t.media)).scalar_one()
        files_left = sum(1 for media_id in doomed if media.blob_path(settings.media_dir, _sha(media_id)).exists())
        result = result or {}
        print(f"  pruned in {seconds:.1f} s: read {result.get('tasks_read', 0):,} tasks and checked "
              f"{result.get('media_checked', 0):,} images ({result.get('media_checked', 0) / seconds:,.0f}/s); "
              f"removed {result.get('media_removed', 0):,} images and {result.get('files_removed', 0):,} files; "
              f"job {status}{': ' + error if error else ''}; images left {left:,} (named: {args.tasks:,}), "
              f"files of unnamed images left {files_left}")  # fmt: skip
        return {"database": kind, "tasks": args.tasks, "unnamed": unnamed, "seconds": round(seconds, 2), **result}
    finally:
        db.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


def _sha(media_id: str) -> str:
    return hashlib.sha256(media_id.encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks, each naming one image")
    parser.add_argument("--unnamed", type=int, help="images no task names (default: a fifth of --tasks)")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is created), or 'auto'")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    args = parser.parse_args()
    run_backends(run_one, args)


if __name__ == "__main__":
    main()

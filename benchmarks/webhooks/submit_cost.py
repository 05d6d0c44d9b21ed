"""What webhooks cost the submit path: submits per second through the service, without a webhook,
with webhooks of the organization that want none of the submit's events, and with one that wants
``response.created`` and ``task.completed`` (two deliveries and two jobs written per submit).

    .venv/bin/python benchmarks/webhooks/submit_cost.py [--tasks 3000] [--postgres URL]

SQLite (synchronous=NORMAL, as the tests run) in a temporary directory unless ``--postgres``.
No runner runs: only the cost inside the submit's transaction is measured. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from truthset.config import Settings
from truthset.schemas import ProjectCreate, ResponseCreate, WebhookCreate
from truthset.services import accounts, projects, queue, tasks, webhooks
from truthset.storage import Database

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
HOOK = "https://93.184.216.34/hook"  # never contacted: no runner runs
ON_SUBMIT = ["response.created", "task.completed"]


def _run(db: Database, settings: Settings, n: int, label: str, events: list[str] | None) -> None:
    created = accounts.init_organization(db, label, f"owner@{label.replace(' ', '-')}.example")
    owner = accounts.authenticate(db, created["api_key"])
    project = projects.create_project(
        db, owner, ProjectCreate.model_validate({"name": label, "spec": SPEC, "quality": {"overlap": 1}})
    )
    if events is not None:
        webhooks.create_webhook(db, settings, owner, WebhookCreate.model_validate({"url": HOOK, "events": events}))
    report = tasks.import_tasks(db, owner, project["id"], [(i + 1, {"data": {"text": f"t{i}"}}) for i in range(n)])
    assert report.created == n
    with db.read() as conn:
        ids = [row[0] for row in conn.execute(text("SELECT id FROM tasks WHERE project_id = :p"), {"p": project["id"]})]
    answer = ResponseCreate(answer={"sentiment": "positive"})
    start = time.perf_counter()
    for task_id in ids:
        queue.submit(db, owner, task_id, answer)
    seconds = time.perf_counter() - start
    print(f"{label:<40} {n / seconds:8.0f} submits/s  {seconds / n * 1e6:7.0f} us/submit")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        url = args.postgres or f"sqlite:///{tmp}/bench.db"
        db = Database(url, sqlite_synchronous="NORMAL")
        db.create_all()
        for round_ in (1, 2):
            _run(db, settings, args.tasks, f"no webhook (round {round_})", None)
            _run(db, settings, args.tasks, f"webhooks, other events (round {round_})", ["batch.completed"])
            _run(db, settings, args.tasks, f"webhook on submit events (round {round_})", ON_SUBMIT)
        db.dispose()


if __name__ == "__main__":
    main()

"""truthset's own job kinds, found through the ``truthset.jobs`` entry points and run by a runner."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from truthset import jobs as registry
from truthset.jobs import Runner
from truthset.schemas import ResponseCreate
from truthset.services import jobs, queue
from truthset.storage import Database
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

BINARY = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}


def _job(db: Database, job_id: str) -> dict[str, Any]:
    with db.read() as conn:
        return dict(conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().one())


def test_the_built_in_kinds_are_registered_through_entry_points() -> None:
    assert "quality.refit" in registry.kinds()
    assert registry.handler_for("quality.refit").__module__ == "truthset.jobs.handlers"


def test_a_quality_refit_job_fits_the_project_s_models(org: Org) -> None:
    project = org.make_project(spec=BINARY, overlap=2)
    workers = [org.add_member(), org.add_member()]
    rng = random.Random(0)
    for task in org.make_tasks(project["id"], 15):
        truth = rng.choice(["positive", "negative"])
        for worker in workers:
            queue.submit(org.db, worker.principal, task["id"], ResponseCreate(answer={"sentiment": truth}))
    # 30 responses: the submits themselves asked for a refit (one job, however many asked)
    with org.db.read() as conn:
        automatic = conn.execute(select(t.jobs).where(t.jobs.c.kind == "quality.refit")).mappings().all()
    assert [(job["payload"], job["status"]) for job in automatic] == [({"project_id": project["id"]}, "queued")]
    with org.db.write() as conn:
        refit = jobs.enqueue(conn, org.id, "quality.refit", {"project_id": project["id"]}, dedupe_key="refit")
        gone = jobs.enqueue(conn, org.id, "quality.refit", {"project_id": "0" * 24})
        bad = jobs.enqueue(conn, org.id, "quality.refit", {})
    assert Runner(org.db, kinds=["quality.refit"]).run_until_idle() == 4
    done = _job(org.db, refit["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["project_id"] == project["id"]
    assert done["result"]["fitted"]["sentiment"]["version"] in (1, 2)
    with org.db.read() as conn:
        models = t.quality_models
        versions = conn.execute(select(models.c.version).where(models.c.project_id == project["id"])).scalars()
        assert sorted(versions) == [1, 2]
    # a project that is not there, or no project at all: failed at once, never retried
    assert (_job(org.db, gone["id"])["status"], _job(org.db, gone["id"])["attempts"]) == ("failed", 1)
    assert "not found" in _job(org.db, gone["id"])["error"]
    assert _job(org.db, bad["id"])["error"] == "JobFailed: the payload names no project_id"

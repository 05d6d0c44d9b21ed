"""Deleting a project with its data (services/project_deletion.py, the ``project.delete`` job).

A project with answers, reviews, history, a refit's models, a trained model's file, webhook
deliveries and an export file is deleted for good: no row of any table names it afterwards, its
files are gone, and the organization's other project, and the other organization, keep everything.
SQLite always, PostgreSQL when configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from truthset.config import Settings
from truthset.domain import Role
from truthset.errors import Conflict, Forbidden, InvalidInput, NotFound
from truthset.jobs import Runner
from truthset.schemas import ProjectUpdate, ResponseCreate, WebhookCreate
from truthset.services import export, export_jobs, project_deletion, projects, queue, refit, review, webhooks
from truthset.storage import Database
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

ANSWER = {"sentiment": "positive"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def run_jobs(db: Database, settings: Settings, *kinds: str) -> int:
    return Runner(db, kinds=list(kinds), poll_seconds=0.02, settings=settings, name="test-runner").run_until_idle()


def fill(org: Org, settings: Settings, name: str) -> dict[str, Any]:
    """A project with everything a project gathers: answered, reviewed and pending tasks in a batch,
    history, a refit's models, a model file, a project webhook with deliveries, an export file."""
    project = org.make_project(name=name, overlap=2)
    hook = WebhookCreate.model_validate(
        {
            "url": "https://93.184.216.34/hook",
            "events": ["task.completed", "response.created"],
            "project_id": project["id"],
        }
    )
    webhooks.create_webhook(org.db, settings, org.owner.principal, hook)
    batch = org.make_batch(project["id"])
    items = org.make_tasks(project["id"], 24, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    ann, bob = org.actor(Role.ANNOTATOR), org.add_member(Role.ANNOTATOR)
    for task in items[:12]:
        for who in (ann, bob):
            queue.submit(org.db, who.principal, task["id"], ResponseCreate(answer=ANSWER))
    review.submit_review(org.db, org.principal_for(Role.REVIEWER), items[0]["id"], "accept")
    refit.refit(org.db, org.owner.principal, project["id"])
    run_jobs(org.db, settings, refit.JOB_KIND)
    models = settings.data_dir / "models" / project["id"]
    models.mkdir(parents=True)
    (models / "v1.skops").write_bytes(b"model")
    export_jobs.start_export(org.db, org.owner.principal, project["id"], "jsonl", export.ExportFilter())
    run_jobs(org.db, settings, "export")
    return project


def rows_naming(db: Database, project_id: str) -> dict[str, int]:
    """Per table with a project_id column: the rows that name the project (only non-zero counts)."""
    found = {}
    with db.read() as conn:
        for table in t.metadata.sorted_tables:
            if "project_id" in table.c:
                n = conn.execute(select(func.count()).where(table.c.project_id == project_id)).scalar_one()
                if n:
                    found[table.name] = n
    return found


def counts(db: Database, organization_id: str) -> dict[str, int]:
    with db.read() as conn:
        return {
            table.name: conn.execute(
                select(func.count()).where(table.c.organization_id == organization_id)
            ).scalar_one()
            for table in (t.tasks, t.responses, t.task_events, t.reviews, t.quality_models, t.webhook_deliveries)
        }


def test_a_project_is_deleted_with_everything_stored_about_it(org: Org, other_org: Org, settings: Settings) -> None:
    doomed = fill(org, settings, "Doomed")
    kept = fill(org, settings, "Kept")
    elsewhere = fill(other_org, settings, "Doomed")
    before = rows_naming(org.db, doomed["id"])
    assert {"tasks", "responses", "task_events", "reviews", "quality_models", "webhook_deliveries", "batches"} <= set(
        before
    )
    exports = settings.exports_dir / org.id
    assert len(list(exports.iterdir())) == 2  # one export per project
    kept_before, other_before = rows_naming(org.db, kept["id"]), counts(org.db, other_org.id)

    everywhere = WebhookCreate.model_validate({"url": "https://93.184.216.34/all", "events": ["project.deleted"]})
    told = webhooks.create_webhook(org.db, settings, org.owner.principal, everywhere)
    job = project_deletion.start(org.db, org.owner.principal, doomed["id"], "Doomed")
    assert job["kind"] == "project.delete" and job["status"] == "queued"
    assert projects.get_project(org.db, org.owner.principal, doomed["id"])["archived_at"] is not None
    with pytest.raises(Conflict, match="being deleted"):  # no unarchiving while it waits
        projects.update_project(org.db, org.owner.principal, doomed["id"], ProjectUpdate(archived=False))

    assert run_jobs(org.db, settings, project_deletion.JOB_KIND) == 1
    with org.db.read() as conn:
        done = conn.execute(select(t.jobs).where(t.jobs.c.id == job["id"])).mappings().one()
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["tasks"] == 24 and done["result"]["files"] == 2  # the model file and the export
    assert done["progress_done"] == done["progress_total"] == 24

    assert rows_naming(org.db, doomed["id"]) == {}
    with org.db.read() as conn:  # the organization's webhook for every project hears of it
        (said,) = conn.execute(
            select(t.webhook_deliveries).where(t.webhook_deliveries.c.subscription_id == told["id"])
        ).mappings()
    assert said["event"] == "project.deleted" and said["project_id"] is None
    assert {k: said["payload"]["project"][k] for k in ("id", "name", "tasks")} == {
        "id": doomed["id"],
        "name": "Doomed",
        "tasks": 24,
    }
    with pytest.raises(NotFound):
        projects.get_project(org.db, org.owner.principal, doomed["id"])
    assert not (settings.data_dir / "models" / doomed["id"]).exists()
    assert len(list(exports.iterdir())) == 1  # the kept project's export stays
    assert rows_naming(org.db, kept["id"]) == kept_before
    assert counts(org.db, other_org.id) == other_before
    assert rows_naming(org.db, elsewhere["id"])["tasks"] == 24


def test_deleting_is_for_owners_and_admins_and_names_the_project(org: Org, other_org: Org) -> None:
    project = org.make_project(name="Reviews 2026")
    org.make_tasks(project["id"], 3)
    with pytest.raises(Forbidden):
        project_deletion.start(org.db, org.principal_for(Role.MANAGER), project["id"], "Reviews 2026")
    with pytest.raises(InvalidInput, match="repeat the project's name, 'Reviews 2026'"):
        project_deletion.start(org.db, org.owner.principal, project["id"], "reviews 2026")
    with pytest.raises(NotFound):  # another organization's project is not found, whatever its name
        project_deletion.start(other_org.db, other_org.owner.principal, project["id"], "Reviews 2026")
    assert projects.get_project(org.db, org.owner.principal, project["id"])["archived_at"] is None  # refused: unchanged

    first = project_deletion.start(org.db, org.principal_for(Role.ADMIN), project["id"], "Reviews 2026")
    again = project_deletion.start(org.db, org.owner.principal, project["id"], "Reviews 2026")
    assert again["id"] == first["id"]  # the deletion already waiting


def test_a_deletion_run_again_goes_on_and_ends_as_a_success(
    org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped half-way (here: after its first chunk) is run again and deletes what is left."""
    project = org.make_project(name="Big")
    org.make_tasks(project["id"], 7)
    monkeypatch.setattr(project_deletion, "CHUNK", 3)
    calls = {"n": 0}
    real = project_deletion._delete_tasks

    def crash_after_one_chunk(*args: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the runner died")
        return real(*args)

    monkeypatch.setattr(project_deletion, "_delete_tasks", crash_after_one_chunk)
    project_deletion.start(org.db, org.owner.principal, project["id"], "Big")
    run_jobs(org.db, settings, project_deletion.JOB_KIND)  # fails once, retried later (backoff)
    assert rows_naming(org.db, project["id"])["tasks"] == 4
    monkeypatch.setattr(project_deletion, "_delete_tasks", real)
    with org.db.write() as conn:  # the retry's backoff, over
        conn.execute(
            t.jobs.update().where(t.jobs.c.kind == project_deletion.JOB_KIND).values(run_after=t.jobs.c.created_at)
        )
    run_jobs(org.db, settings, project_deletion.JOB_KIND)
    assert rows_naming(org.db, project["id"]) == {}


def test_an_empty_project_is_still_deleted_at_once(org: Org) -> None:
    project = org.make_project(name="Empty")
    projects.delete_project(org.db, org.owner.principal, project["id"])
    assert rows_naming(org.db, project["id"]) == {}
    full = org.make_project(name="Full")
    org.make_tasks(full["id"], 1)
    with pytest.raises(Conflict, match=r"archive it instead, or delete it with all its data .*/deletion"):
        projects.delete_project(org.db, org.owner.principal, full["id"])


def test_an_export_that_outlives_its_deleted_project_is_not_served(org: Org, settings: Settings) -> None:
    """An export still running when the deletion cleaned up writes its file afterwards: its download
    is refused (404 export_expired) and the file removed."""
    project = org.make_project(name="Raced")
    org.make_tasks(project["id"], 2)
    job = export_jobs.start_export(org.db, org.owner.principal, project["id"], "jsonl", export.ExportFilter())
    run_jobs(org.db, settings, "export")
    path, _ = export_jobs.export_file(org.db, org.owner.principal, job["id"], settings.exports_dir)
    late = path.read_bytes()
    project_deletion.start(org.db, org.owner.principal, project["id"], "Raced")
    run_jobs(org.db, settings, project_deletion.JOB_KIND)
    assert not path.exists()
    path.write_bytes(late)  # as if the export had renamed its file after the clean-up
    with pytest.raises(NotFound, match="was deleted with its data") as refused:
        export_jobs.export_file(org.db, org.owner.principal, job["id"], settings.exports_dir)
    assert refused.value.code == "export_expired" and not path.exists()

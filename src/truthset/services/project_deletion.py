"""Deleting a project with everything stored about it, for a customer who wants their data gone.

An empty project is deleted at once (:func:`truthset.services.projects.delete_project`). One with
tasks is deleted by a ``project.delete`` job, because a project may hold millions of rows: asking
for it archives the project in the same transaction (its queue stops serving, it takes no new
tasks or answers) and queues the job, which then deletes, in short transactions of
:data:`CHUNK` tasks that take turns with the annotation loop:

- each task with its responses, leases (assignments), reviews and history events (and, on
  SQLite, its words in the full-text index, through the table's delete trigger);
- then the project's batches, fitted quality models, trained model versions and their files,
  per-project worker standings, webhook deliveries about it (their bodies hold task data) with
  their attempts, the webhook subscriptions scoped to it, and the files of its exports;
- last, the project itself.

A job that stops half-way (a crash, a restart) is run again and goes on with what is left: every
step deletes what is still there. While it runs the project cannot be unarchived. Deleting is for
owners and admins only, and the request must repeat the project's name, as a guard against a
wrong id. What is not deleted: the workers (a person or a model is the organization's, not the
project's), and the rows of the project's other jobs, which name it but hold no task data.
Uploaded images are the organization's, stored once however many projects name them: the last
transaction queues a ``media.prune`` job that removes, a day later, those no task names any more
(services/media_pruning.py).
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from sqlalchemy import Connection, delete, func, select

from truthset.config import Settings, get_settings
from truthset.domain import Principal, WebhookEvent
from truthset.errors import InvalidInput
from truthset.services import export_jobs, jobs, media_pruning, webhooks
from truthset.services.jobs import JobContext, JobFailed
from truthset.services.pacing import Pacer
from truthset.services.policy import Action, require
from truthset.services.projects import DELETION_JOB, deletion_key, load_project
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

JOB_KIND = DELETION_JOB
#: Tasks deleted per transaction (with their responses, leases, reviews and events).
CHUNK = 500
#: A task's own rows, in the order foreign keys allow: a review may name a response, a response its lease.
_TASK_ROWS = (t.task_events, t.reviews, t.responses, t.assignments)
#: The project's other rows, deleted once its tasks are gone (batches after the tasks that name them).
_PROJECT_ROWS = (t.batches, t.quality_models, t.project_models, t.project_workers)


def start(db: Database, principal: Principal, project_id: str, confirm: str | None) -> dict[str, Any]:
    """Archive the project and queue the job that deletes it with all its data; returns the job.

    403 below admin; 404 for another organization's project; 422 unless ``confirm`` is the
    project's name. Asking again while the job waits returns the same job.
    """
    require(principal, Action.DELETE_PROJECT_DATA)
    with db.write() as conn:
        project = load_project(conn, principal, project_id, lock=True)
        if confirm != project["name"]:
            raise InvalidInput(
                f"confirm: repeat the project's name, {project['name']!r}, to delete it with all its tasks and answers",
                details={"field": "confirm"},
            )
        if project["archived_at"] is None:
            now = utcnow()
            repo.change(conn, t.projects, principal.organization_id, project_id, archived_at=now, updated_at=now)
        payload = {"project_id": project_id, "name": project["name"]}
        job = jobs.enqueue(
            conn,
            principal.organization_id,
            JOB_KIND,
            payload,
            dedupe_key=deletion_key(project_id),
            created_by=principal.member_id,
        )
    return jobs.public(job)


def run(db: Database, job: JobContext) -> dict[str, Any]:
    """The ``project.delete`` job: delete what is left of the project, chunk by chunk; what it deleted."""
    project_id = job.payload.get("project_id")
    if not isinstance(project_id, str):
        raise JobFailed("the payload names no project_id")
    settings: Settings = job.settings or get_settings()
    org = job.organization_id
    with db.read() as conn:
        project = repo.get(conn, t.projects, org, project_id)
        total = _count(conn, org, project_id)
    if project is None:
        return {"project_id": project_id, "tasks": 0, "already_deleted": True}
    job.progress(0, total)
    deleted, pacer, files = 0, Pacer(db), 0
    while True:  # again if a task slipped in meanwhile (an import that began before the archiving)
        while True:
            with pacer.step(time.perf_counter):  # the writer thread does the step: wall time measures it
                removed = db.submit(_delete_tasks, db, org, project_id, hot=False).result()
            if not removed:
                break
            deleted += removed
            job.progress(min(deleted, total), total)
        files += _delete_files(db, settings, org, project_id)
        if db.submit(_delete_project, db, org, project_id, deleted, hot=False).result():
            break
    job.progress(total, total)
    return {"project_id": project_id, "name": job.payload.get("name"), "tasks": deleted, "files": files}


def _count(conn: Connection, org: str, project_id: str) -> int:
    query = select(func.count()).where(t.tasks.c.organization_id == org, t.tasks.c.project_id == project_id)
    return int(conn.execute(query).scalar_one())


def _delete_tasks(db: Database, org: str, project_id: str) -> int:
    """One chunk of the project's tasks with their own rows; how many tasks (0: none left)."""
    with db.write() as conn:
        query = repo.scoped(t.tasks, org, t.tasks.c.id).where(t.tasks.c.project_id == project_id).limit(CHUNK)
        ids = [task_id for (task_id,) in conn.execute(query)]
        if not ids:
            return 0
        for table in _TASK_ROWS:
            conn.execute(delete(table).where(table.c.organization_id == org, table.c.task_id.in_(ids)))
        conn.execute(delete(t.tasks).where(t.tasks.c.organization_id == org, t.tasks.c.id.in_(ids)))
        return len(ids)


def _delete_files(db: Database, settings: Settings, org: str, project_id: str) -> int:
    """The project's trained model files and export files; how many were removed."""
    removed = 0
    models = (settings.data_dir / "models" / project_id).resolve()
    if models.parent == (settings.data_dir / "models").resolve() and models.is_dir():
        removed += sum(1 for path in models.rglob("*") if path.is_file())
        shutil.rmtree(models)
    with db.read() as conn:
        query = repo.scoped(t.jobs, org, t.jobs.c.id, t.jobs.c.payload).where(t.jobs.c.kind == export_jobs.KIND)
        exports = [job_id for job_id, payload in conn.execute(query) if (payload or {}).get("project_id") == project_id]
    return removed + sum(export_jobs.remove_files(settings.exports_dir, org, job_id) for job_id in exports)


def _delete_project(db: Database, org: str, project_id: str, tasks: int) -> bool:
    """The project's remaining rows and the project itself, once its tasks are gone, and the
    ``project.deleted`` webhook event in the same transaction; False (nothing deleted) when a task
    is there again."""
    with db.write() as conn:
        if conn.execute(
            repo.scoped(t.tasks, org, t.tasks.c.id).where(t.tasks.c.project_id == project_id).limit(1)
        ).first():
            return False
        for table in _PROJECT_ROWS:
            conn.execute(delete(table).where(table.c.organization_id == org, table.c.project_id == project_id))
        deliveries = select(t.webhook_deliveries.c.id).where(
            t.webhook_deliveries.c.organization_id == org,
            (t.webhook_deliveries.c.project_id == project_id)
            | t.webhook_deliveries.c.subscription_id.in_(_scoped_subscriptions(org, project_id)),
        )
        conn.execute(delete(t.webhook_attempts).where(t.webhook_attempts.c.delivery_id.in_(deliveries)))
        conn.execute(delete(t.webhook_deliveries).where(t.webhook_deliveries.c.id.in_(deliveries)))
        conn.execute(
            delete(t.webhook_subscriptions).where(
                t.webhook_subscriptions.c.organization_id == org, t.webhook_subscriptions.c.project_id == project_id
            )
        )
        project = repo.get(conn, t.projects, org, project_id)
        conn.execute(delete(t.projects).where(t.projects.c.organization_id == org, t.projects.c.id == project_id))
        if project is not None:  # to the organization's webhooks for every project (its own are gone)
            gone = {"id": project_id, "name": project["name"], "tasks": tasks, "deleted_at": utcnow().isoformat() + "Z"}
            webhooks.emit(conn, org, None, str(WebhookEvent.PROJECT_DELETED), {"project": gone})
        # its images, once no other task names them: a day later (see services/media_pruning.py)
        media_pruning.schedule_after_deletion(conn, org, project_id)
    return True


def _scoped_subscriptions(org: str, project_id: str) -> Any:
    s = t.webhook_subscriptions.c
    return select(s.id).where(s.organization_id == org, s.project_id == project_id)

"""Projects and batches."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func
from sqlalchemy.exc import IntegrityError

from truthset import questions
from truthset.domain import BatchStatus, JobStatus, Principal, TaskStatus
from truthset.errors import Conflict, InvalidInput, NotFound
from truthset.questions import CompiledSpec, expanded_questions
from truthset.schemas import BatchCreate, ProjectCreate, ProjectUpdate, QualityPolicy, SpecCheck
from truthset.services import lifecycle, spec_changes, webhooks
from truthset.services.completion import completion_rules
from truthset.services.policy import Action, require
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

DEFAULT_LEASE_SECONDS = 600

# Compiled specs, cached per process by project id with the ``updated_at`` of the row they were
# compiled from: a spec may change (``update_project``, within the rules of ``spec_changes``), and
# every update moves ``updated_at``, so a copy compiled before a change (here or in another
# process) is never used after it. Losing the cache costs time, never correctness.
_spec_cache: dict[str, tuple[Any, CompiledSpec]] = {}
_spec_lock = threading.Lock()


def compiled_spec(project: dict[str, Any]) -> CompiledSpec:
    cached = _spec_cache.get(project["id"])
    if cached is not None and cached[0] == project["updated_at"]:
        return cached[1]
    spec = CompiledSpec(project["spec"])
    with _spec_lock:
        if len(_spec_cache) > 10_000:
            _spec_cache.clear()
        _spec_cache[project["id"]] = (project["updated_at"], spec)
    return spec


def spec_of_project(conn: Connection, principal: Principal, project_id: str) -> CompiledSpec:
    """The compiled spec of a project as it is now (the row is read: the spec may have changed)."""
    return compiled_spec(load_project(conn, principal, project_id))


def load_project(
    conn: Connection, principal: Principal, project_id: str, *, lock: bool = False, hold_spec: bool = False
) -> dict[str, Any]:
    """A project of the caller's organization, or 404.

    ``lock``: its row locked until the commit (a change to the project takes it so). ``hold_spec``:
    for a write checked against the project's spec (an answer, a gold answer, a task's data): the
    row is share-locked until the commit, so a spec change waits for this write, or this write for
    it and then reads the new spec. Without it, on PostgreSQL an answer checked against the old spec
    could be stored after a change that saw no answers yet (SQLite serialises writers anyway).
    """
    project = repo.get(conn, t.projects, principal.organization_id, project_id, lock=lock, key_share=hold_spec)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project


def load_task(conn: Connection, principal: Principal, task_id: str, *, lock: bool = False) -> dict[str, Any]:
    """A task of the caller's organization (``lock``: its row locked until the commit), or 404."""
    task = repo.get(conn, t.tasks, principal.organization_id, task_id, lock=lock)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


def require_active(project: dict[str, Any]) -> None:
    """The one rule for archived projects: they take no new tasks, batches or answers.

    Every write that adds work or an answer calls this inside its transaction; reads, exports and
    giving leases back still work, and unarchiving (``archived: false``) restores everything.
    """
    if project["archived_at"] is not None:
        raise Conflict(
            f"project {project['id']} is archived: it takes no new tasks or answers (unarchive it first)",
            details={"project_id": project["id"], "archived_at": project["archived_at"].isoformat()},
            code="project_archived",
        )


def create_project(
    db: Database,
    principal: Principal,
    data: ProjectCreate,
    *,
    default_lease_seconds: int = DEFAULT_LEASE_SECONDS,
    scale: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``scale``: the project's record in the Scale-compatible API (compat/scale), stored with the row."""
    require(principal, Action.MANAGE_PROJECTS)
    now = utcnow()
    with db.write() as conn:
        return repo.add(
            conn,
            t.projects,
            {
                "id": new_id(),
                "organization_id": principal.organization_id,
                "name": data.name,
                "description": data.description,
                "instructions": data.instructions,
                "spec": data.spec.model_dump(mode="json"),
                "quality": checked_policy(data.quality, data.spec.model_dump(mode="json")),
                "lease_seconds": data.lease_seconds or default_lease_seconds,
                "created_at": now,
                "updated_at": now,
                "archived_at": None,
                **({"scale": scale} if scale is not None else {}),
            },
        )


def get_project(db: Database, principal: Principal, project_id: str) -> dict[str, Any]:
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
    require(principal, Action.READ_PROJECTS)
    return project


def list_projects(
    db: Database,
    principal: Principal,
    *,
    cursor: str | None,
    limit: int,
    include_archived: bool = False,
    only_archived: bool = False,
) -> tuple[list, str | None]:
    require(principal, Action.READ_PROJECTS)
    query = repo.scoped(t.projects, principal.organization_id)
    if only_archived:
        query = query.where(t.projects.c.archived_at.is_not(None))
    elif not include_archived:
        query = query.where(t.projects.c.archived_at.is_(None))
    with db.read() as conn:
        return repo.page(conn, query, t.projects, cursor=cursor, limit=limit)


def update_project(db: Database, principal: Principal, project_id: str, data: ProjectUpdate) -> dict[str, Any]:
    """Change a project. A new spec must keep fitting the stored work (``spec_changes``); the
    policy is checked against the spec it will apply to (the new one when both change)."""
    with db.write() as conn:
        project = load_project(conn, principal, project_id, lock=True)
        require(principal, Action.MANAGE_PROJECTS)
        values: dict[str, Any] = data.model_dump(exclude_none=True, exclude={"archived", "quality", "spec"})
        spec = project["spec"]
        if data.spec is not None:
            spec = data.spec.model_dump(mode="json")
            has_tasks, has_answers = _stored_work(conn, principal, project_id)
            spec_changes.check_change(project["spec"], spec, has_tasks=has_tasks, has_answers=has_answers)
            values["spec"] = spec
        if data.quality is not None:
            values["quality"] = checked_policy(data.quality, spec)
        elif data.spec is not None:  # the stored policy may name a question the new spec lacks
            values["quality"] = checked_policy(QualityPolicy.model_validate(project["quality"]), spec)
        if data.archived is not None:
            if not data.archived and _being_deleted(conn, principal.organization_id, project_id):
                raise Conflict(
                    f"project {project_id} is being deleted with its data: it cannot be unarchived",
                    details={"project_id": project_id},
                    code="project_being_deleted",
                )
            values["archived_at"] = utcnow() if data.archived else None
        values["updated_at"] = utcnow()
        repo.change(conn, t.projects, principal.organization_id, project_id, **values)
        return {**project, **values}


#: The job that deletes a project with its data (services/project_deletion.py), and its dedupe key.
DELETION_JOB = "project.delete"


def deletion_key(project_id: str) -> str:
    return f"delete:{project_id}"


def _being_deleted(conn: Connection, organization_id: str, project_id: str) -> bool:
    """Whether a deletion of the project with its data is waiting or running (few such jobs at once)."""
    c = t.jobs.c
    query = repo.scoped(t.jobs, organization_id, c.payload).where(
        c.kind == DELETION_JOB, c.status.in_([str(JobStatus.QUEUED), str(JobStatus.RUNNING)])
    )
    return any((payload or {}).get("project_id") == project_id for (payload,) in conn.execute(query))


def _stored_work(conn: Connection, principal: Principal, project_id: str) -> tuple[bool, bool]:
    """(has tasks, has answers): answers are responses or gold tasks' known answers."""
    org = principal.organization_id
    task = conn.execute(repo.scoped(t.tasks, org, t.tasks.c.id).where(t.tasks.c.project_id == project_id).limit(1))
    if task.first() is None:
        return False, False
    response = conn.execute(
        repo.scoped(t.responses, org, t.responses.c.id).where(t.responses.c.project_id == project_id).limit(1)
    ).first()
    gold = conn.execute(
        repo.scoped(t.tasks, org, t.tasks.c.id)
        .where(t.tasks.c.project_id == project_id, t.tasks.c.gold.is_not(None))
        .limit(1)
    ).first()
    return True, response is not None or gold is not None


def delete_project(db: Database, principal: Principal, project_id: str) -> None:
    """Delete a project that has no tasks (nothing stored can be lost); archive one that has.

    Its (empty) batches and per-project worker standings go with it.
    """
    with db.write() as conn:
        load_project(conn, principal, project_id, lock=True)
        require(principal, Action.MANAGE_PROJECTS)
        if _stored_work(conn, principal, project_id)[0]:
            raise Conflict(
                f"project {project_id} has tasks: archive it instead, or delete it with all its data "
                f"(owners and admins: POST /api/v1/projects/{project_id}/deletion with its name)",
                details={"project_id": project_id},
                code="project_has_tasks",
            )
        org = principal.organization_id
        for table in (t.project_workers, t.quality_models, t.batches):
            conn.execute(delete(table).where(table.c.organization_id == org, table.c.project_id == project_id))
        conn.execute(delete(t.projects).where(t.projects.c.organization_id == org, t.projects.c.id == project_id))


def check_spec(db: Database, principal: Principal, data: SpecCheck) -> dict[str, Any]:
    """What creating (or, with ``project_id``, updating) a project with this spec would store, or
    the error it would give: the spec editor checks as the manager types, without saving."""
    require(principal, Action.MANAGE_PROJECTS)
    spec = data.spec.model_dump(mode="json")
    quality = checked_policy(data.quality, spec)
    if data.project_id is not None:
        with db.read() as conn:
            project = load_project(conn, principal, data.project_id)
            has_tasks, has_answers = _stored_work(conn, principal, data.project_id)
        spec_changes.check_change(project["spec"], spec, has_tasks=has_tasks, has_answers=has_answers)
    compiled = CompiledSpec(spec)
    return {
        "spec": spec,
        "quality": quality,
        # as the workbench gets them: a question asked for each candidate is one copy per candidate
        "questions": [
            questions.without_workbench_keys({**q.model_dump(mode="json"), "group": q.group})
            for q in compiled.questions
        ],
    }


def checked_policy(policy: QualityPolicy, spec: dict[str, Any]) -> dict[str, Any]:
    """The policy as stored, after checking that the questions it names are the spec's."""
    # the spec's names, and the names of the copies of a question asked for each candidate
    names = list(dict.fromkeys(name for q in expanded_questions(spec) for name in (q["group"], q["name"])))
    for where, named in (("quality.questions", list(policy.questions)), ("quality.deciding", policy.deciding or [])):
        unknown = [n for n in named if n not in names]
        if unknown:
            raise InvalidInput(
                f"{where} names {', '.join(map(repr, unknown))}, not a question of the spec ({', '.join(names)})",
                details={"field": where},
            )
    if policy.deciding == []:
        raise InvalidInput("quality.deciding must name at least one question", details={"field": "quality.deciding"})
    learnable = [q["name"] for q in expanded_questions(spec) if q.get("type") in ("label", "labels")]
    if policy.retrain is not None:  # what model.train can learn; stored named (default: the first)
        name = policy.retrain.question or (learnable[0] if learnable else None)
        if name not in learnable:
            raise InvalidInput(
                f"quality.retrain.question: {name!r} is not a label or labels question of the spec",
                details={"field": "quality.retrain.question"},
            )
        policy = policy.model_copy(update={"retrain": policy.retrain.model_copy(update={"question": name})})
    return policy.stored()


def project_overlap(project: dict[str, Any]) -> int:
    """Judgments a new task is first asked for: the largest min_overlap of its deciding questions."""
    return completion_rules(project).initial_overlap


# --- batches -----------------------------------------------------------------------------------


def load_batch(conn: Connection, principal: Principal, batch_id: str) -> dict[str, Any]:
    batch = repo.get(conn, t.batches, principal.organization_id, batch_id, lock=True)
    if batch is None:
        raise NotFound(f"batch {batch_id} not found")
    return batch


def create_batch(db: Database, principal: Principal, project_id: str, data: BatchCreate) -> dict[str, Any]:
    try:
        with db.write() as conn:
            project = load_project(conn, principal, project_id)
            require(principal, Action.MANAGE_TASKS)
            require_active(project)
            clash = conn.execute(
                repo.scoped(t.batches, principal.organization_id, t.batches.c.id).where(
                    t.batches.c.project_id == project_id, t.batches.c.name == data.name
                )
            ).first()
            if clash:
                raise Conflict(f"the project already has a batch named {data.name!r}", details={"field": "name"})
            batch = repo.add(
                conn,
                t.batches,
                {
                    "id": new_id(),
                    "organization_id": principal.organization_id,
                    "project_id": project_id,
                    "name": data.name,
                    "status": str(BatchStatus.OPEN),
                    "metadata": data.metadata,
                    "created_at": utcnow(),
                    "finalized_at": None,
                    "completed_at": None,
                },
            )
    except IntegrityError:  # the same name created at the same moment (PostgreSQL)
        raise Conflict(f"the project already has a batch named {data.name!r}", details={"field": "name"}) from None
    return {**batch, "counts": {}}


def _with_counts(conn: Connection, principal: Principal, batch: dict[str, Any]) -> dict[str, Any]:
    return {
        **batch,
        "counts": repo.status_counts(conn, principal.organization_id, t.tasks.c.batch_id, batch["id"]),
    }


def get_batch(db: Database, principal: Principal, batch_id: str) -> dict[str, Any]:
    with db.read() as conn:
        batch = load_batch(conn, principal, batch_id)
        require(principal, Action.READ_TASKS)
        batch = _with_counts(conn, principal, batch)
    return _settled(db, principal, batch)


def _settled(db: Database, principal: Principal, batch: dict[str, Any]) -> dict[str, Any]:
    """A finalized batch whose tasks are all closed is completed: finish the check a crash cut short.

    The last task's completion re-checks its batch just after committing (see
    :func:`complete_batch_if_done`); a process that died in between left the batch finalized.
    """
    open_tasks = batch["counts"].get(str(TaskStatus.STAGED), 0) + batch["counts"].get(str(TaskStatus.PENDING), 0)
    if batch["status"] != str(BatchStatus.FINALIZED) or open_tasks:
        return batch
    complete_batch_if_done(db, principal.organization_id, batch["id"])
    with db.read() as conn:
        return {**load_batch(conn, principal, batch["id"]), "counts": batch["counts"]}


def list_batches(
    db: Database, principal: Principal, project_id: str, *, cursor: str | None, limit: int
) -> tuple[list, str | None]:
    with db.read() as conn:
        load_project(conn, principal, project_id)
        require(principal, Action.READ_TASKS)
        query = repo.scoped(t.batches, principal.organization_id).where(t.batches.c.project_id == project_id)
        rows, next_cursor = repo.page(conn, query, t.batches, cursor=cursor, limit=limit)
        batches = [_with_counts(conn, principal, b) for b in rows]
    return [_settled(db, principal, b) for b in batches], next_cursor


def finalize_batch(db: Database, principal: Principal, batch_id: str) -> dict[str, Any]:
    """Open -> finalized: its staged tasks join the queue. Finalizing twice is harmless."""
    with db.write() as conn:
        batch = load_batch(conn, principal, batch_id)
        require(principal, Action.MANAGE_TASKS)
        status = BatchStatus(batch["status"])
        if status is BatchStatus.OPEN:
            require_active(load_project(conn, principal, batch["project_id"]))  # its tasks would join the queue
            now = utcnow()
            lifecycle.move_batch(conn, batch_id, TaskStatus.PENDING)
            repo.bump_queue_epoch(conn, batch["project_id"])  # its tasks join the queue, anywhere in its order
            values: dict[str, Any] = {"status": str(BatchStatus.FINALIZED), "finalized_at": now}
            if not repo.batch_has_open_tasks(conn, principal.organization_id, batch_id):
                values.update(status=str(BatchStatus.COMPLETED), completed_at=now)
            repo.change(conn, t.batches, principal.organization_id, batch_id, **values)
            batch.update(values)
        elif status in (BatchStatus.CANCELED, BatchStatus.PAUSED):
            raise Conflict(f"a {status} batch cannot be finalized")
        return _with_counts(conn, principal, batch)


def pause_batch(db: Database, principal: Principal, batch_id: str) -> dict[str, Any]:
    """Finalized -> paused: its waiting tasks leave the queue (staged) until it is resumed.

    Tasks out on a live lease when it is paused stay with their worker (the answer counts); one that
    comes back unanswered waits in the queue again, so pausing a paused batch takes those out too.
    """
    with db.write() as conn:
        batch = load_batch(conn, principal, batch_id)
        require(principal, Action.MANAGE_TASKS)
        status = BatchStatus(batch["status"])
        if status not in (BatchStatus.FINALIZED, BatchStatus.PAUSED):
            raise Conflict(f"a {status} batch cannot be paused (only a finalized one)", details={"status": str(status)})
        repo.expire_leases(conn, batch["project_id"], utcnow())  # their tasks are paused too
        lifecycle.pause_batch(conn, batch_id)
        if status is BatchStatus.FINALIZED:
            repo.change(conn, t.batches, principal.organization_id, batch_id, status=str(BatchStatus.PAUSED))
            batch["status"] = str(BatchStatus.PAUSED)
        return _with_counts(conn, principal, batch)


def resume_batch(db: Database, principal: Principal, batch_id: str) -> dict[str, Any]:
    """Paused -> finalized: its tasks join the queue again (completed at once if none is open)."""
    with db.write() as conn:
        batch = load_batch(conn, principal, batch_id)
        require(principal, Action.MANAGE_TASKS)
        status = BatchStatus(batch["status"])
        if status is not BatchStatus.PAUSED:
            raise Conflict(f"a {status} batch cannot be resumed (only a paused one)", details={"status": str(status)})
        require_active(load_project(conn, principal, batch["project_id"]))  # its tasks would join the queue
        lifecycle.move_batch(conn, batch_id, TaskStatus.PENDING)
        repo.bump_queue_epoch(conn, batch["project_id"])
        values: dict[str, Any] = {"status": str(BatchStatus.FINALIZED)}
        if not repo.batch_has_open_tasks(conn, principal.organization_id, batch_id):
            values.update(status=str(BatchStatus.COMPLETED), completed_at=utcnow())
        repo.change(conn, t.batches, principal.organization_id, batch_id, **values)
        batch.update(values)
        return _with_counts(conn, principal, batch)


def cancel_batch(db: Database, principal: Principal, batch_id: str) -> dict[str, Any]:
    """Cancel the batch and every task in it that is not completed; completed results stay."""
    with db.write() as conn:
        batch = load_batch(conn, principal, batch_id)
        require(principal, Action.MANAGE_TASKS)
        if batch["status"] == str(BatchStatus.COMPLETED):
            raise Conflict("a completed batch cannot be canceled")
        if batch["status"] != str(BatchStatus.CANCELED):
            lifecycle.move_batch(conn, batch_id, TaskStatus.CANCELED)
            repo.change(conn, t.batches, principal.organization_id, batch_id, status=str(BatchStatus.CANCELED))
            batch["status"] = str(BatchStatus.CANCELED)
        return _with_counts(conn, principal, batch)


def mark_batch_completed_if_done(conn: Connection, organization_id: str, batch_id: str | None) -> None:
    if batch_id is None:
        return
    batch = repo.get(conn, t.batches, organization_id, batch_id)
    if (
        batch
        and batch["status"] == str(BatchStatus.FINALIZED)
        and not repo.batch_has_open_tasks(conn, organization_id, batch_id)
    ):
        values = {"status": str(BatchStatus.COMPLETED), "completed_at": utcnow()}
        repo.change(conn, t.batches, organization_id, batch_id, **values)
        event = {"batch": webhooks.batch_data({**batch, **values})}
        webhooks.emit(conn, organization_id, batch["project_id"], "batch.completed", event)


def complete_batch_if_done(db: Database, organization_id: str, batch_id: str | None) -> None:
    """Check a batch again once the transaction that completed or canceled one of its tasks committed.

    Inside that transaction, PostgreSQL's READ COMMITTED cannot see a concurrent transaction finishing
    the batch's other last task, so two racing last tasks could each see the other still open and
    leave the batch finalized forever. After both commit, the later of these checks sees them both.
    """
    if batch_id is None:
        return
    with db.read() as conn:
        batch = repo.get(conn, t.batches, organization_id, batch_id)
        if (
            batch is None
            or batch["status"] != str(BatchStatus.FINALIZED)
            or repo.batch_has_open_tasks(conn, organization_id, batch_id)
        ):
            return
    with db.write() as conn:
        mark_batch_completed_if_done(conn, organization_id, batch_id)


# --- counts for the UI ---------------------------------------------------------------------------


def project_counts(db: Database, principal: Principal, project_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Task counts by status of each project in ``project_ids``, in one query: ``{project_id:
    {status: count}}``, an empty dict for a project without tasks.

    Anyone who may read projects may read their counts (the project list shows how much is waiting).
    The query is scoped to the principal's organization: another organization's project counts
    nothing, exactly like a missing one.
    """
    require(principal, Action.READ_PROJECTS)
    wanted = list(dict.fromkeys(project_ids))
    counts: dict[str, dict[str, int]] = {project_id: {} for project_id in wanted}
    if not wanted:
        return counts
    with db.read() as conn:
        for start in range(0, len(wanted), 500):  # a bounded number of bound parameters per statement
            query = (
                repo.scoped(t.tasks, principal.organization_id, t.tasks.c.project_id, t.tasks.c.status, func.count())
                .where(t.tasks.c.project_id.in_(wanted[start : start + 500]))
                .group_by(t.tasks.c.project_id, t.tasks.c.status)
            )
            for project_id, status, n in conn.execute(query):
                counts[project_id][status] = int(n)
    return counts

"""The queue: leases (assignments) and responses; a task with the judgments it asked for goes to results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from truthset.domain import AssignmentStatus, Principal, TaskStatus
from truthset.errors import Busy, Conflict, InvalidInput, NotFound
from truthset.questions import AnswerError, CompiledSpec
from truthset.schemas import ResponseCreate
from truthset.services import auto_label, gold, predictions, refit, results, webhooks
from truthset.services.policy import Action, allowed, require
from truthset.services.projects import (
    compiled_spec,
    complete_batch_if_done,
    load_project,
    load_task,
    require_active,
    spec_of_project,
)
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow


@dataclass(frozen=True)
class _Frontier:
    """Where a worker's last search of a project's queue ended, and in which queue epoch.

    Every task before ``position`` (in queue order: priority desc, then queue rank, then id) was then
    ineligible for the worker: done, full, or already had by them. Only the events that bump the
    project's ``queue_epoch`` (a lease given back or expired, new pending tasks, a re-rank of an
    uncertainty-ordered queue: services/active_learning.py) can change that, so within
    the same epoch the next search may start at ``position``. Without it, a worker who answered
    thousands of tasks still waiting for other workers walked past all of them on every call.

    ``position`` is the task last leased, included in the next search (its own assignment excludes it
    at the cost of one probe): the frontier is remembered before the transaction commits, and if the
    lease is rolled back the task must still be found.
    """

    epoch: int
    position: tuple[int, int, str]  # (priority, queue rank, task id) of the last task leased


_FRONTIERS: dict[tuple[str, str], _Frontier] = {}  # (project, worker); a hint, so losing it is harmless
_MAX_FRONTIERS = 100_000


def next_assignment(db: Database, principal: Principal, project_id: str) -> dict[str, Any] | None:
    """Lease the next task of a project to the caller's worker, or return None when none is left.

    One transaction: expired leases go back to the queue, then the best task that still needs a
    worker and that this worker has never had is leased. SQLite runs it under BEGIN IMMEDIATE;
    PostgreSQL locks the chosen row with SKIP LOCKED. Either way a task never gets more leases
    than its overlap still needs.
    """
    require(principal, Action.ANNOTATE)
    key = (project_id, principal.worker_id)
    # A lease lost to a power cut is harmless (the task is simply served again), so it skips the
    # fsync; responses always get one.
    with db.write(durable=False) as conn:
        project = load_project(conn, principal, project_id)
        require_active(project)
        now = utcnow()
        # leases that came back move the epoch on: then search from the top, and remember nothing
        expired = repo.expire_leases(conn, project_id, now)
        gold_policy = gold.policy_of(project)  # None (and nothing more to do) while gold is off
        turn = gold.turn(conn, principal, project, gold_policy, now) if gold_policy else None
        if turn is None or turn.may_serve_real:
            task = _lease_real(conn, key, project, principal.worker_id, expired)
            if turn is not None and task is not None:
                gold.count_real(conn, turn, now)
        else:
            task = turn.task  # gold, or nothing while a qualifying worker has no gold left to answer
        if task is None:
            return None
        assignment = repo.add(
            conn,
            t.assignments,
            {
                "id": new_id(),
                "organization_id": principal.organization_id,
                "project_id": project_id,
                "task_id": task["id"],
                "worker_id": principal.worker_id,
                "status": str(AssignmentStatus.ACTIVE),
                "created_at": now,
                "expires_at": now + timedelta(seconds=project["lease_seconds"]),
                "ended_at": None,
            },
        )
        shown = _prefill(conn, project, task["id"])
    # labelling is blind: no task is served with the answers given so far (its result, confidence,
    # count), which would anchor the worker on them and, for a gold task, say what it is
    task = gold.disguise(task)
    return {**assignment, **_worker_view(compiled_spec(project), task, assignment["id"]), "predictions": shown}


def _prefill(conn: Connection, project: dict[str, Any], task_id: str) -> dict[str, Any]:
    """The predictions a lease pre-fills (the policy's ``prefill_predictions``; docs/models.md)."""
    if not predictions.prefill_enabled(project):
        return {}
    spec = compiled_spec(project)
    models, _versions = results.current_models(conn, project, spec)
    return predictions.best_predictions(conn, project, spec, task_id, models)


def _worker_view(spec: CompiledSpec, task: dict[str, Any], seed: str) -> dict[str, Any]:
    """The task as the worker sees it and the order of its compared candidates (docs/questions.md).

    A blind comparison shows candidates without model names; each assignment shows them in its own
    order (``display``: field -> task indexes in the order shown), which the answer records.
    """
    data, display = spec.worker_view(task["data"], seed)
    return {"task": {**task, "data": data}, "display": display}


def _lease_real(
    conn: Connection, key: tuple[str, str], project: dict[str, Any], worker_id: str, expired: int
) -> dict[str, Any] | None:
    """Lease the worker's next task of the normal queue, starting from their frontier when it holds."""
    frontier = None if expired else _FRONTIERS.get(key)
    if frontier is not None and frontier.epoch != project["queue_epoch"]:
        frontier = None
    after = frontier.position if frontier else None
    task = repo.lease_next_task(conn, project["id"], worker_id, after=after)
    if task is None and conn.dialect.name == "postgresql":
        task = _lease_past_locked_rows(conn, project["id"], worker_id, searched_from_top=after is None)
    if expired:
        _FRONTIERS.pop(key, None)
    elif task is not None:
        position = (task["priority"], task["queue_rank"] or 0, task["id"])
        _remember_frontier(key, _Frontier(project["queue_epoch"], position))
    # (with no task a frontier stays valid: nothing behind it either)
    return task


def _lease_past_locked_rows(
    conn: Connection, project_id: str, worker_id: str, *, searched_from_top: bool
) -> dict[str, Any] | None:
    """PostgreSQL, after a search found nothing: make sure "nothing" is true, or say "try again".

    The search passes over rows other transactions hold (SKIP LOCKED), and a task some submit is
    writing may still have a slot for this worker once it commits. Passed over like that, it may
    even lie behind the worker's frontier, which holds only for tasks that were ineligible. So the
    queue is searched again from the top, and if only locked rows are left the worker is told to
    retry in a moment (503 ``busy``, which clients retry) rather than that nothing is left, which
    made a worker stop while a slot it could fill was still open (seen in the two-server test).
    """
    if not searched_from_top:
        task = repo.lease_next_task(conn, project_id, worker_id)
        if task is not None:
            return task
    if repo.eligible_task_exists(conn, project_id, worker_id):
        raise Busy("the tasks left for you are being written by other requests; try again")
    return None


def _remember_frontier(key: tuple[str, str], frontier: _Frontier) -> None:
    if len(_FRONTIERS) >= _MAX_FRONTIERS:
        _FRONTIERS.clear()
    _FRONTIERS[key] = frontier


def _load_assignment(conn: Connection, principal: Principal, assignment_id: str) -> dict[str, Any]:
    assignment = repo.get(conn, t.assignments, principal.organization_id, assignment_id, lock=True)
    if assignment is None:
        raise NotFound(f"assignment {assignment_id} not found")
    if assignment["worker_id"] != principal.worker_id:
        # someone else's lease in the same organization: not visible to this worker
        raise NotFound(f"assignment {assignment_id} not found")
    return assignment


def _end_lease(conn: Connection, assignment: dict[str, Any], status: AssignmentStatus) -> dict[str, Any]:
    """Close an active lease and give its slot back to the task."""
    now = utcnow()
    repo.change(conn, t.assignments, assignment["organization_id"], assignment["id"], status=str(status), ended_at=now)
    repo.return_leases(conn, assignment["project_id"], {assignment["task_id"]: 1})
    return {**assignment, "status": str(status), "ended_at": now}


def _finish(db: Database, principal: Principal, assignment_id: str, status: AssignmentStatus) -> dict[str, Any]:
    require(principal, Action.ANNOTATE)
    with db.write() as conn:
        assignment = _load_assignment(conn, principal, assignment_id)
        if assignment["status"] != str(AssignmentStatus.ACTIVE):
            raise Conflict(f"the assignment is already {assignment['status']}")
        assignment = _end_lease(conn, assignment, status)
        task = repo.get(conn, t.tasks, principal.organization_id, assignment["task_id"])
        spec = spec_of_project(conn, principal, task["project_id"])
    return {**assignment, **_worker_view(spec, task, assignment["id"])}


def skip(db: Database, principal: Principal, assignment_id: str) -> dict[str, Any]:
    """The worker won't answer this task: it goes back to the queue, never to them again."""
    return _finish(db, principal, assignment_id, AssignmentStatus.SKIPPED)


def release(db: Database, principal: Principal, assignment_id: str) -> dict[str, Any]:
    """The worker stops without answering: the task goes back to the queue (them included)."""
    return _finish(db, principal, assignment_id, AssignmentStatus.RELEASED)


def submit(
    db: Database,
    principal: Principal,
    task_id: str,
    data: ResponseCreate,
    *,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Store a worker's response; at the task's overlap, score it and complete it or ask one more worker.

    A retried submit with the same ``Idempotency-Key`` returns the first response unchanged; the
    same key with a different request is refused (422 ``idempotency_key_reused``), as the IETF
    Idempotency-Key draft says. Keys belong to the caller's worker: another member's never match.
    """
    require(principal, Action.ANNOTATE)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise InvalidInput("Idempotency-Key must be 1 to 200 characters", details={"field": "Idempotency-Key"})
    try:
        with db.write() as conn:
            result = _submit(conn, principal, task_id, data, idempotency_key)
    except IntegrityError:
        # A concurrent duplicate (same worker, same task or key) won the race: report it as such.
        with db.read() as conn:
            if idempotency_key and (
                prior := repo.response_by_idempotency_key(conn, principal.worker_id, idempotency_key)
            ):
                _check_same_request(conn, principal, prior, task_id, data)
                task = repo.get(conn, t.tasks, principal.organization_id, prior["task_id"])
                spec = spec_of_project(conn, principal, prior["project_id"])
                return _as_worker_sees(principal, {"response": prior, "task": task, "replayed": True}, spec)
        raise Conflict("you have already answered this task") from None
    if not result["replayed"] and result["task"]["status"] == str(TaskStatus.COMPLETED):
        complete_batch_if_done(db, principal.organization_id, result["task"]["batch_id"])
    return _as_worker_sees(principal, result, result.pop("spec", None))


def _as_worker_sees(principal: Principal, result: dict[str, Any], spec: CompiledSpec | None = None) -> dict[str, Any]:
    """A submit's outcome as the worker sees it: candidates compared blind keep their model names
    hidden, and a gold task looks like any task.

    A worker who may not read tasks (an annotator) sees every task the way a gold task is shown:
    pending, without a result or others' answers. Were only gold disguised, a project that completes
    real tasks at one answer would tell its workers which tasks are gold (the reply that stays
    "pending"), and a result would tell them the crowd's answer.
    """
    task = result["task"]
    if task is not None and (task["status"] == str(TaskStatus.GOLD) or not allowed(principal, Action.READ_TASKS)):
        task = gold.disguise(task, answered=True)
    if task is not None and spec is not None:
        task = _worker_view(spec, task, result["response"]["assignment_id"] or "")["task"]
    return {**result, "task": task}


def _submit(
    conn: Connection, principal: Principal, task_id: str, data: ResponseCreate, idempotency_key: str | None
) -> dict[str, Any]:
    task = load_task(conn, principal, task_id, lock=True)
    priors = repo.prior_responses(conn, principal.worker_id, task_id, idempotency_key)
    for prior in priors:
        if idempotency_key is not None and prior["idempotency_key"] == idempotency_key:
            _check_same_request(conn, principal, prior, task_id, data)
            spec = spec_of_project(conn, principal, prior["project_id"])
            return {"response": prior, "task": task, "replayed": True, "spec": spec}
    if any(prior["task_id"] == task_id for prior in priors):
        raise Conflict("you have already answered this task")
    is_gold = task["status"] == str(TaskStatus.GOLD)  # answered like any task, then scored, never completed
    if task["status"] != str(TaskStatus.PENDING) and not is_gold:
        raise Conflict(f"the task is {task['status']}; it takes no more responses", details={"status": task["status"]})
    project = load_project(conn, principal, task["project_id"], hold_spec=True)
    require_active(project)  # checked in this transaction: an answer racing an archive is refused or kept whole
    spec = compiled_spec(project)
    try:
        answer = spec.validate_answer(data.answer, task["data"])  # with the task: span offsets within its text
    except AnswerError as exc:
        raise InvalidInput(f"answer.{exc}", details={"field": "answer"}) from None
    now = utcnow()
    assignment_id, leased = _close_lease_for_submit(conn, principal, task, data.assignment_id, now, gold=is_gold)
    try:  # the order a ranking showed comes from the lease the worker was shown (named, else the closed one)
        answer = spec.bind_answer(answer, task["data"], data.assignment_id or assignment_id)
    except AnswerError as exc:
        raise InvalidInput(f"answer.{exc}", details={"field": "answer"}) from None
    prefill = predictions.record_prefill(conn, principal.organization_id, task_id, spec, answer, data.prefill)
    response = repo.add(
        conn,
        t.responses,
        {
            "id": new_id(),
            "organization_id": principal.organization_id,
            "project_id": task["project_id"],
            "task_id": task_id,
            "worker_id": principal.worker_id,
            "assignment_id": assignment_id,
            "answer": answer,
            "idempotency_key": idempotency_key,
            "duration_ms": data.duration_ms,
            "created_at": now,
            "prefill": prefill,
        },
    )
    event = {"response": webhooks.response_data(response)}
    webhooks.emit(conn, principal.organization_id, task["project_id"], "response.created", event)
    refit.note_response(conn, project, spec)  # answers to gold tasks inform worker models too
    # The task row is locked (FOR UPDATE; SQLite serialises writers), so its new counts are known
    # here. A task this answer makes due for scoring gets them in the same UPDATE as its result: one
    # write of the row (and of its indexes) per submit instead of two.
    count, leases = task["response_count"] + 1, task["lease_count"] - int(leased)
    if is_gold or count < task["overlap"]:
        count, leases = repo.count_response(conn, task_id, leased=leased, now=now)
    task = {**task, "response_count": count, "lease_count": leases, "updated_at": now}
    if is_gold:
        gold.score(conn, principal, project, task, response, now)
    elif count >= task["overlap"]:
        task = results.after_response(conn, task, project, spec, counts_unsaved=True)
        auto_label.after_human_completion(conn, task, project)  # an audit's outcome (policy on only)
    return {"response": response, "task": task, "replayed": False, "spec": spec}


def _check_same_request(
    conn: Connection, principal: Principal, prior: dict[str, Any], task_id: str, data: ResponseCreate
) -> None:
    """A replay must repeat the request that stored ``prior``: the stored response is its fingerprint.

    The answer is compared as stored (normalised by the spec, which never changes). The stored
    assignment is the lease the answer closed, named or not, so only a named one is compared.
    """
    differs = []
    if prior["task_id"] != task_id:
        differs.append("task_id")
    if prior["duration_ms"] != data.duration_ms:
        differs.append("duration_ms")
    if data.assignment_id is not None and prior["assignment_id"] != data.assignment_id:
        differs.append("assignment_id")
    spec = spec_of_project(conn, principal, prior["project_id"])
    try:
        answer = spec.comparable(spec.validate_answer(data.answer))
    except AnswerError:
        answer = None
    if answer != spec.comparable(prior["answer"]):
        differs.append("answer")
    if differs:
        raise InvalidInput(
            f"Idempotency-Key was already used for a different request (its {', '.join(differs)} differed): "
            "use a new key for a new request",
            details={"field": "Idempotency-Key", "differs": differs},
            code="idempotency_key_reused",
        )


def _close_lease_for_submit(
    conn: Connection,
    principal: Principal,
    task: dict[str, Any],
    assignment_id: str | None,
    now: datetime,
    *,
    gold: bool = False,
) -> tuple[str, bool]:
    """Close the worker's live lease on the task; without one, accept only while a slot is free.

    A gold task has no slots: an answer without a live lease is accepted from a worker it was
    served to (their lease expired), refused with the same words as a full task otherwise.

    Returns the assignment the response belongs to, and whether it was a live lease (whose slot
    the response now takes). An answer without a live lease gets a closed assignment of its own,
    so the queue needs only the assignments to know what a worker has had.
    """
    if assignment_id is not None:
        named = _load_assignment(conn, principal, assignment_id)
        if named["task_id"] != task["id"]:
            raise InvalidInput("the assignment is for another task", details={"field": "assignment_id"})
    closed = repo.close_active_lease(conn, task["id"], principal.worker_id, str(AssignmentStatus.SUBMITTED), now)
    if closed is not None:
        return closed, True
    # No live lease (never leased, or it expired): a late answer is still welcome if a slot is free,
    # since dropping finished work would be worse; otherwise the task was handed to someone else.
    full = task["response_count"] + task["lease_count"] >= task["overlap"]
    if (gold and not repo.worker_had_task(conn, task["id"], principal.worker_id)) or (not gold and full):
        raise Conflict("the task has all the workers it needs; your lease expired or you had none")
    record = repo.add(
        conn,
        t.assignments,
        {
            "id": new_id(),
            "organization_id": principal.organization_id,
            "project_id": task["project_id"],
            "task_id": task["id"],
            "worker_id": principal.worker_id,
            "status": str(AssignmentStatus.SUBMITTED),
            "created_at": now,
            "expires_at": now,
            "ended_at": now,
        },
    )
    return record["id"], False

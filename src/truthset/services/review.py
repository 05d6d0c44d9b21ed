"""Review: a share of completed tasks goes to a reviewer, who accepts, rejects or fixes the result.

Routing (:func:`send_to_review_if_due`, called once where a task completes): a task goes to the
review queue (``review_status`` "pending") when it completed below target with ``at_max_overlap:
review``, when ``review.low_confidence`` is on and a deciding question is below its target, when it
was rejected before, or when a stable draw from its id falls under ``review.sample_rate`` (the same
task always draws the same number, so a replay or a retry routes it alike). Gold tasks are never
reviewed: their answer is known.

The review lease: :func:`next_review` claims one pending task for the caller in one statement
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), never one the caller
answered or skipped. The claim is the task's ``review_status`` "reviewing" plus a ``review_claimed``
task event naming the reviewer and the deadline (the project's ``lease_seconds``). Tasks under review
at a time are few (one per active reviewer), so expiring claims reads only those: their latest claim
event says whose it is and until when. An expired claim goes back to "pending" on the next call.
Reusing ``assignments`` instead would have mixed review claims into the annotation queue's lease
counts and its "seen by this worker" test.

The verdicts (:func:`submit_review`): each writes a ``reviews`` row and a ``reviewed`` task event.

- accept: ``review_status`` "accepted"; the result records the review.
- reject (a reason is required): the task goes back to the annotation queue through
  :func:`lifecycle.reopen` (completed -> pending), asking for the policy's ``min_overlap`` more
  judgments (at least one) from workers who have not answered it; it is reviewed again when it
  completes. Its rejected result is kept in the event.
- fix: the reviewer's answer, validated against the spec, is stored as a new response of the
  reviewer's worker and becomes the result's answer (method ``review_fix``), outranking the crowd.

Rejections and fixes count against the workers whose answers they overrule (services/quality.py).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from truthset.domain import AssignmentStatus, Principal, ReviewStatus, TaskStatus, Verdict
from truthset.errors import Busy, Conflict, Forbidden, InvalidInput
from truthset.questions import AnswerError, Stated
from truthset.services import lifecycle, webhooks
from truthset.services.completion import CompletionRules, Decision, Outcome, completion_rules
from truthset.services.events import add_event
from truthset.services.policy import Action, require
from truthset.services.projects import compiled_spec, load_project, load_task, require_active
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

CLAIMED = "review_claimed"
SKIPPED = "review_skipped"
REQUESTED = "review_requested"
REVIEWED = "reviewed"
FIX_METHOD = "review_fix"
MAX_REASON = 2000
#: How many gold answers the policy's ``review.fix_confidence`` weighs against a reviewer's own gold
#: record (:func:`reviewer_confidence`): ten answers all right move 0.95 to 0.975, five of ten to 0.725.
FIX_PRIOR_ANSWERS = 10


# --- routing -----------------------------------------------------------------------------------


def sample_draw(task_id: str) -> float:
    """A number in [0, 1) fixed by the task's id: the task's draw against ``review.sample_rate``."""
    digest = hashlib.sha256(task_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def review_reasons(task: dict[str, Any], decision: Decision, rules: CompletionRules) -> list[str]:
    """Why a task that has just completed goes to review (empty: it does not)."""
    if not decision.complete or task.get("gold") is not None:
        return []
    policy = rules.policy.review
    reasons = []
    if decision.outcome is Outcome.REVIEW:
        reasons.append("at_max_overlap")
    if policy.low_confidence and decision.below_target:
        reasons.append("low_confidence")
    if task.get("review_status") == str(ReviewStatus.REJECTED):
        reasons.append("rejected_before")
    if policy.sample_rate > 0 and sample_draw(task["id"]) < policy.sample_rate:
        reasons.append("sampled")
    return reasons


def send_to_review_if_due(
    conn: Connection, task: dict[str, Any], decision: Decision, rules: CompletionRules
) -> dict[str, Any]:
    """Put a task that has just completed in the review queue when the policy says so; returns the task.

    Call it in the transaction that completed the task, with the decision that completed it.
    """
    reasons = review_reasons(task, decision, rules)
    if not reasons:
        return task
    pending = str(ReviewStatus.PENDING)
    repo.change(conn, t.tasks, task["organization_id"], task["id"], review_status=pending)
    add_event(conn, task, REQUESTED, {"reasons": reasons, "below_target": list(decision.below_target)})
    return {**task, "review_status": pending}


# --- the review lease --------------------------------------------------------------------------


@functools.cache
def _claim_statement() -> Any:
    """Take the oldest pending review of a project that the worker neither answered nor skipped."""
    best = _claimable().with_for_update(skip_locked=True).scalar_subquery()
    return (
        update(t.tasks)
        .where(t.tasks.c.id == best, t.tasks.c.review_status == str(ReviewStatus.PENDING))
        .values(review_status=str(ReviewStatus.REVIEWING), updated_at=bindparam("p_now"))
        .returning(*t.tasks.c)
    )


@functools.cache
def _claimable() -> Any:
    """The oldest pending review of a project that the worker neither answered nor skipped."""
    worker = t.responses.c.worker_id
    answered = (
        select(t.responses.c.id)
        .where(t.responses.c.task_id == t.tasks.c.id, worker == bindparam("p_worker_id"))
        .exists()
    )
    skipped = (
        select(t.task_events.c.id)
        .where(
            t.task_events.c.task_id == t.tasks.c.id,
            t.task_events.c.kind == SKIPPED,
            t.task_events.c.worker_id == bindparam("p_worker_id"),
        )
        .exists()
    )
    return (
        select(t.tasks.c.id)
        .where(
            t.tasks.c.project_id == bindparam("p_project_id"),
            t.tasks.c.review_status == str(ReviewStatus.PENDING),
            t.tasks.c.status == str(TaskStatus.COMPLETED),
            ~answered,
            ~skipped,
        )
        .order_by(t.tasks.c.id)
        .limit(1)
    )


def next_review(db: Database, principal: Principal, project_id: str) -> dict[str, Any] | None:
    """Claim the next task waiting for review for the caller, or None when none is left.

    Returns the task, its responses (with their workers' names) and the claim's deadline.
    """
    require(principal, Action.REVIEW)
    with db.write(durable=False) as conn:  # a lost claim only expires: no fsync needed
        project = load_project(conn, principal, project_id)
        require_active(project)  # an archived project takes no verdicts: claim nothing
        now = utcnow()
        _expire_claims(conn, project_id, now)
        params = {"p_project_id": project_id, "p_worker_id": principal.worker_id, "p_now": now}
        row = conn.execute(_claim_statement(), params).mappings().first()
        if row is None:
            _nothing_left_or_busy(conn, params)
            return None
        task = dict(row)
        expires_at = now + timedelta(seconds=project["lease_seconds"])
        add_event(conn, task, CLAIMED, {"expires_at": expires_at.isoformat()}, worker_id=principal.worker_id)
        responses = responses_with_workers(conn, principal, task["id"])
    return {"task": task, "responses": responses, "expires_at": expires_at}


def _nothing_left_or_busy(conn: Connection, params: dict[str, Any]) -> None:
    """PostgreSQL: the claim passed over rows other transactions hold; if one of them may still be
    waiting for review, say "try again" (503 ``busy``) rather than that nothing is left."""
    if conn.dialect.name == "postgresql" and conn.execute(_claimable(), params).first() is not None:
        raise Busy("the reviews left for you are being written by other requests; try again")


def _expire_claims(conn: Connection, project_id: str, now: datetime) -> None:
    """Claims past their deadline go back to "pending" (only the tasks under review are read)."""
    reviewing = select(t.tasks.c.id).where(
        t.tasks.c.project_id == project_id, t.tasks.c.review_status == str(ReviewStatus.REVIEWING)
    )
    for task_id in conn.execute(reviewing).scalars().all():
        claim = _latest_claim(conn, task_id)
        if claim is None or claim[1] <= now:
            conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id == task_id, t.tasks.c.review_status == str(ReviewStatus.REVIEWING))
                .values(review_status=str(ReviewStatus.PENDING))
            )


def _latest_claim(conn: Connection, task_id: str) -> tuple[str | None, datetime] | None:
    """(reviewer's worker, deadline) of the task's latest review claim."""
    e = t.task_events
    query = select(e.c.worker_id, e.c.data).where(e.c.task_id == task_id, e.c.kind == CLAIMED)
    row = conn.execute(query.order_by(e.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return row[0], datetime.fromisoformat(row[1]["expires_at"])


def skip_review(db: Database, principal: Principal, task_id: str) -> dict[str, Any]:
    """The caller won't review this task: it goes back to the review queue, never to them again."""
    require(principal, Action.REVIEW)
    with db.write() as conn:
        task = load_task(conn, principal, task_id, lock=True)
        if task["review_status"] not in (str(ReviewStatus.PENDING), str(ReviewStatus.REVIEWING)):
            raise Conflict("the task is not waiting for review", details={"review_status": task["review_status"]})
        _check_claim(conn, task, principal, utcnow())
        add_event(conn, task, SKIPPED, {}, worker_id=principal.worker_id)
        if task["review_status"] == str(ReviewStatus.REVIEWING):
            pending = str(ReviewStatus.PENDING)
            repo.change(conn, t.tasks, task["organization_id"], task_id, review_status=pending, updated_at=utcnow())
            task = {**task, "review_status": pending}
    return task


# --- verdicts ----------------------------------------------------------------------------------


def submit_review(
    db: Database,
    principal: Principal,
    task_id: str,
    verdict: Verdict | str,
    reason: str | None = None,
    answer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Accept, reject (with a reason) or fix (with an answer) a completed task's result.

    Any completed task may be reviewed, sent to review or not, except while another reviewer's claim
    on it runs, and never by a worker who answered it. Returns the review and the task after it.
    """
    require(principal, Action.REVIEW)
    verdict = Verdict(verdict)
    reason = _checked_input(verdict, reason, answer)
    with db.write() as conn:
        task = load_task(conn, principal, task_id, lock=True)
        project = load_project(conn, principal, task["project_id"], hold_spec=True)
        require_active(project)
        if task["status"] != str(TaskStatus.COMPLETED):
            raise Conflict(
                f"only a completed task can be reviewed; this one is {task['status']}",
                details={"status": task["status"]},
            )
        now = utcnow()
        _check_claim(conn, task, principal, now)
        response = _store_fix(conn, principal, task, project, answer, now) if verdict is Verdict.FIX else None
        review = repo.add(
            conn,
            t.reviews,
            {
                "id": new_id(),
                "organization_id": task["organization_id"],
                "project_id": task["project_id"],
                "task_id": task_id,
                "reviewer_id": principal.worker_id,
                "verdict": str(verdict),
                "reason": reason,
                "response_id": response["id"] if response else None,
                "created_at": now,
            },
        )
        task = _apply(conn, task, project, review, response, now)
        event = {"review": webhooks.review_data(review), "task": webhooks.task_data(task)}
        webhooks.emit(conn, task["organization_id"], task["project_id"], "review.done", event)
    return {"review": review, "task": task}


def _checked_input(verdict: Verdict, reason: str | None, answer: dict[str, Any] | None) -> str | None:
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput(f"reason must be at most {MAX_REASON} characters", details={"field": "reason"})
    if verdict is Verdict.REJECT and reason is None:
        raise InvalidInput("a rejection needs a reason: say what is wrong", details={"field": "reason"})
    if verdict is Verdict.FIX and answer is None:
        raise InvalidInput("a fix needs the corrected answer", details={"field": "answer"})
    if verdict is not Verdict.FIX and answer is not None:
        raise InvalidInput(f"answer is only sent with a fix, not with {verdict}", details={"field": "answer"})
    return reason


def _check_claim(conn: Connection, task: dict[str, Any], principal: Principal, now: datetime) -> None:
    """Refuse a worker who answered the task, and a task another reviewer holds right now."""
    answered = select(t.responses.c.id).where(
        t.responses.c.task_id == task["id"], t.responses.c.worker_id == principal.worker_id
    )
    if conn.execute(answered).first() is not None:
        raise Forbidden("you answered this task (a fix counts as an answer): another reviewer must review it")
    if task["review_status"] != str(ReviewStatus.REVIEWING):
        return
    claim = _latest_claim(conn, task["id"])
    if claim is not None and claim[0] != principal.worker_id and claim[1] > now:
        raise Conflict(
            "another reviewer is reviewing this task",
            details={"review_status": task["review_status"], "until": claim[1].isoformat()},
            code="review_claimed",
        )


def _store_fix(
    conn: Connection,
    principal: Principal,
    task: dict[str, Any],
    project: dict[str, Any],
    answer: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The reviewer's answer as a response of their worker (with a closed assignment, as every response has)."""
    try:
        spec = compiled_spec(project)
        # checked against the task's data too; the review page shows compared candidates as imported
        checked = spec.bind_answer(spec.validate_answer(answer or {}, task["data"]), task["data"], None)
    except AnswerError as exc:
        raise InvalidInput(f"answer.{exc}", details={"field": "answer"}) from None
    base = {
        "organization_id": task["organization_id"],
        "project_id": task["project_id"],
        "task_id": task["id"],
        "worker_id": principal.worker_id,
        "created_at": now,
    }
    assignment = repo.add(
        conn,
        t.assignments,
        {**base, "id": new_id(), "status": str(AssignmentStatus.SUBMITTED), "expires_at": now, "ended_at": now},
    )
    response = repo.add(
        conn,
        t.responses,
        {
            **base,
            "id": new_id(),
            "assignment_id": assignment["id"],
            "answer": checked,
            "idempotency_key": None,
            "duration_ms": None,
        },
    )
    repo.count_response(conn, task["id"], leased=False, now=now)
    event = {"response": webhooks.response_data(response)}
    webhooks.emit(conn, task["organization_id"], task["project_id"], "response.created", event)
    return response


def _apply(
    conn: Connection,
    task: dict[str, Any],
    project: dict[str, Any],
    review: dict[str, Any],
    response: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The verdict's effect on the task, and its ``reviewed`` event."""
    verdict = Verdict(review["verdict"])
    before = (task["result"] or {}).get("answer")
    outcome = {
        "verdict": str(verdict),
        "review_id": review["id"],
        "reviewer_id": review["reviewer_id"],
        "reason": review["reason"],
        "at": now.isoformat(),
    }
    data: dict[str, Any] = {**outcome, "answer_before": before}
    if verdict is Verdict.REJECT:
        overlap = _overlap_after_reject(task, project)
        task = lifecycle.reopen(
            conn,
            task,
            overlap,
            # a task with its own fixed overlap keeps one: the new total
            fixed_overlap=None if task.get("fixed_overlap") is None else overlap,
            result=None,
            confidence=None,
            review_status=str(ReviewStatus.REJECTED),
        )
        data["overlap"] = task["overlap"]
    else:
        result = dict(task["result"] or {})
        reviewer = reviewer_confidence(conn, project, review["reviewer_id"])
        if verdict is Verdict.FIX:
            assert response is not None
            result = recompute_with_fix(
                result, response, reviewer, compiled_spec(project).as_result(response["answer"])
            )
            data["response_id"] = response["id"]
            data["answer_after"] = result["answer"]
        else:
            result = recompute_with_accept(result, reviewer)
        result["review"] = outcome
        status = ReviewStatus.FIXED if verdict is Verdict.FIX else ReviewStatus.ACCEPTED
        values = {"result": result, "review_status": str(status), "updated_at": now}
        if result.get("questions") or verdict is Verdict.FIX:
            values["confidence"] = _weakest_deciding(result)
        repo.change(conn, t.tasks, task["organization_id"], task["id"], **values)
        task = {**task, **values}
    add_event(conn, task, REVIEWED, data, worker_id=review["reviewer_id"])
    return task


def _overlap_after_reject(task: dict[str, Any], project: dict[str, Any]) -> int:
    """The judgments a rejected task asks for in all: a fresh ``min_overlap`` (at least one) more.

    A task with its own fixed overlap asks for that many again. Under a confidence target the task
    completes as soon as its deciding questions reach it, which may be before all of them arrive.
    """
    more = task["fixed_overlap"] if task.get("fixed_overlap") else completion_rules(project).initial_overlap
    return int(task["response_count"]) + max(1, int(more))


def reviewer_confidence(conn: Connection, project: dict[str, Any], reviewer_id: str) -> float:
    """How far a verdict of ``reviewer_id`` is trusted: what a fix states, what an acceptance adds.

    The policy's ``review.fix_confidence`` moved toward the reviewer's gold record on the project, as
    the mean of a Beta posterior whose prior (the policy's value) weighs :data:`FIX_PRIOR_ANSWERS`
    gold answers. A reviewer is one person: never 1.0, no certainty from one vote.
    """
    prior = completion_rules(project).policy.review.fix_confidence
    standing = repo.standing(conn, project["organization_id"], project["id"], reviewer_id)
    answers = int(standing["gold_answers"]) if standing else 0
    correct = float(standing["gold_correct"]) if standing else 0.0
    return round((prior * FIX_PRIOR_ANSWERS + correct) / (FIX_PRIOR_ANSWERS + answers), 6)


def recompute_with_fix(
    result: dict[str, Any],
    fix: dict[str, Any],
    confidence: float,
    stated: Mapping[str, Stated],
) -> dict[str, Any]:
    """The result once a reviewer's fix outranks the crowd: each question the fix answers takes its
    value, at the reviewer's ``confidence`` (:func:`reviewer_confidence`), with method ``review_fix``
    (which a refit leaves alone). A question whose target is above that confidence is marked as
    below it (``reached_target`` false, the result ``low_confidence``): the reviewer settled the
    answer, and the confidence says how far to trust it.

    ``stated``: the fix's answer as a result states it, per question
    (:meth:`~truthset.questions.CompiledSpec.as_result`): a ranking's winner index, not the stored
    response's ``{"winner", "shown_order"}``, so a fixed task reads like any other (an export's
    preference pair, a typed Parquet column).

    The crowd's figures (and its aggregator's details, which describe the crowd's answer) stay in
    ``questions[name]["crowd"]`` so the history and the export can say what was overruled.
    """
    names = list(fix["answer"])
    questions = dict(result.get("questions") or {})
    for name in names:
        crowd = questions.get(name) or {}
        target = crowd.get("target_confidence")
        questions[name] = {
            **crowd,
            "answer": stated[name].answer,
            "confidence": confidence,
            "method": FIX_METHOD,
            "tie": stated[name].tie or False,
            "details": stated[name].details,
            "reached_target": target is None or confidence >= target,
            "response_id": fix["id"],
            "crowd": _crowd_figures(crowd),
        }
    return {
        **result,
        "answer": {**(result.get("answer") or {}), **{name: stated[name].answer for name in names}},
        "confidence": {**(result.get("confidence") or {}), **dict.fromkeys(names, confidence)},
        "methods": {**(result.get("methods") or {}), **dict.fromkeys(names, FIX_METHOD)},
        "questions": questions,
        "response_ids": [*(result.get("response_ids") or []), fix["id"]],
        "response_count": int(result.get("response_count") or 0) + 1,
        "workers": [*(result.get("workers") or []), fix["worker_id"]],
        "low_confidence": any(not q.get("reached_target", True) for q in _deciding(questions)),
    }


def recompute_with_accept(result: dict[str, Any], reviewer: float) -> dict[str, Any]:
    """The result once a reviewer accepted it: each question's confidence is updated by the
    reviewer's agreement, as an independent check that upholds a right answer with probability
    ``reviewer`` (:func:`reviewer_confidence`) and a wrong one with ``1 - reviewer``:
    ``c r / (c r + (1 - c)(1 - r))``. A 0.70 answer accepted by a 0.95 reviewer states 0.978; an
    accepted answer never states less than before, and never 1.0.

    Why: tasks go to review *because* they are below target; an acceptance that left them there
    would keep every reviewed task out of a ``min_confidence`` export. The crowd's figures stay in
    ``questions[name]["crowd"]``; the method is the crowd's (the answer is theirs).
    """
    questions = dict(result.get("questions") or {})
    confidences = dict(result.get("confidence") or {})
    for name, question in questions.items():
        before = question.get("confidence")
        if not isinstance(before, int | float) or question.get("answer") is None:
            continue  # nothing answered (an undecided tie): the reviewer upheld no answer
        after = round(_upheld(float(before), reviewer), 6)
        target = question.get("target_confidence")
        questions[name] = {
            **question,
            "confidence": after,
            "reached_target": target is None or after >= target,
            "crowd": question.get("crowd") or _crowd_figures(question),  # kept from a first review
        }
        confidences[name] = after
    return {
        **result,
        "confidence": confidences,
        "questions": questions,
        "low_confidence": any(not q.get("reached_target", True) for q in _deciding(questions)),
    }


def _crowd_figures(question: dict[str, Any]) -> dict[str, Any]:
    """What the crowd's result said of a question, kept when a review changes it (history, export)."""
    return {key: question.get(key) for key in ("answer", "confidence", "method", "tie", "details") if key in question}


def _upheld(confidence: float, reviewer: float) -> float:
    right = confidence * reviewer
    return max(confidence, right / (right + (1.0 - confidence) * (1.0 - reviewer)))


def _deciding(questions: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for q in questions.values() if q.get("deciding", True)]


def _weakest_deciding(result: dict[str, Any]) -> float | None:
    """A task's confidence: its weakest deciding question's (as services/results.py has it)."""
    questions = result.get("questions") or {}
    if not questions:
        return min((result.get("confidence") or {}).values(), default=None)
    return min((q["confidence"] for q in _deciding(questions)), default=None)


# --- reading -----------------------------------------------------------------------------------


def list_reviews(db: Database, principal: Principal, task_id: str) -> list[dict[str, Any]]:
    """A task's reviews, oldest first, with each reviewer's name."""
    require(principal, Action.READ_TASKS)
    with db.read() as conn:
        load_task(conn, principal, task_id)
        query = repo.scoped(t.reviews, principal.organization_id).where(t.reviews.c.task_id == task_id)
        rows = [dict(r) for r in conn.execute(query.order_by(t.reviews.c.id)).mappings()]
        names = worker_names(conn, principal, [r["reviewer_id"] for r in rows])
    return [{**r, "reviewer_name": names.get(r["reviewer_id"])} for r in rows]


def responses_with_workers(conn: Connection, principal: Principal, task_id: str) -> list[dict[str, Any]]:
    """A task's responses in order, each with its worker's name and kind."""
    responses = repo.responses_of_task(conn, principal.organization_id, task_id)
    workers = _workers(conn, principal, [r["worker_id"] for r in responses])
    unknown: dict[str, Any] = {"name": None, "kind": None}
    return [
        {
            **r,
            "worker_name": workers.get(r["worker_id"], unknown)["name"],
            "worker_kind": workers.get(r["worker_id"], unknown)["kind"],
        }
        for r in responses
    ]


def worker_names(conn: Connection, principal: Principal, worker_ids: Sequence[str | None]) -> dict[str, str]:
    return {worker_id: w["name"] for worker_id, w in _workers(conn, principal, worker_ids).items()}


def _workers(conn: Connection, principal: Principal, worker_ids: Sequence[str | None]) -> dict[str, dict[str, Any]]:
    ids = sorted({w for w in worker_ids if w})
    if not ids:
        return {}
    w = t.workers
    query = repo.scoped(w, principal.organization_id, w.c.id, w.c.name, w.c.kind).where(w.c.id.in_(ids))
    return {row.id: {"name": row.name, "kind": row.kind} for row in conn.execute(query)}

"""Gold: tasks with a known answer, mixed into each worker's queue to measure them (docs/quality.md, "Gold").

- Marking: a manager gives a task its answer (checked against the spec like a response); the task
  leaves the normal queue (status ``gold``) and comes back when unmarked.
- Serving (:func:`turn`, called by ``queue.next_assignment`` only when the project's policy turns
  gold on): a new worker first answers ``qualification`` gold tasks; after that each lease is gold
  with a probability that keeps the worker's gold share within one task of ``rate``. A gold task is
  disguised as an ordinary pending task (:func:`disguise`).
- Scoring (:func:`score`, called by ``queue.submit`` for a gold task): the answer is compared with
  the gold answer on the deciding questions; the share right is added to the worker's standing
  (``project_workers``), and the worker is paused when gold shows they are surely below the policy's
  ``min_accuracy``: the upper end of a 95% Jeffreys interval below it.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from scipy.stats import beta
from sqlalchemy import Connection

from truthset import questions
from truthset.domain import BatchStatus, Principal, TaskStatus
from truthset.errors import Busy, Forbidden, InvalidInput, NotFound
from truthset.questions import AnswerError, CompiledSpec
from truthset.schemas import GoldPolicy
from truthset.services import lifecycle, results
from truthset.services.completion import completion_rules
from truthset.services.events import add_event
from truthset.services.policy import Action, require
from truthset.services.projects import (
    compiled_spec,
    complete_batch_if_done,
    load_project,
    load_task,
    mark_batch_completed_if_done,
    require_active,
)
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

log = logging.getLogger("truthset.gold")

ACTIVE, QUALIFYING, PAUSED = "active", "qualifying", "paused"
#: Which gold task comes when: a source of randomness only, so a worker cannot count their way to gold.
_RNG = random.Random()
#: Question types compared as they are stored; ``labels`` as a set, ``text`` with whitespace normalised.
_TEXT_TYPES = frozenset({"text"})


def policy_of(project: Mapping[str, Any]) -> GoldPolicy | None:
    """The project's gold policy when gold is on (a rate or a qualification set), else None.

    One lookup in the per-project-version cache of :func:`completion_rules`: with gold off, the
    queue pays nothing more.
    """
    gold = completion_rules(project).policy.gold
    return gold if gold.rate > 0 or gold.qualification > 0 else None


# --- what a worker sees ------------------------------------------------------------------------------


def disguise(task: Mapping[str, Any], *, answered: bool = False) -> dict[str, Any]:
    """A task as a worker labelling it sees it (gold or not): a pending task, without the gold answer,
    the result or others' answers.

    ``response_count`` is the worker's own (0 on the lease, 1 once they answered): how many others
    answered would anchor them, and tell a gold task from a real one.
    """
    return {
        **task,
        "status": str(TaskStatus.PENDING),
        "gold": None,
        "result": None,
        "confidence": None,
        "completed_at": None,
        "response_count": int(answered),
    }


# --- serving -----------------------------------------------------------------------------------------


@dataclass
class Turn:
    """One ``next`` call of a worker on a project with gold on."""

    standing: dict[str, Any]
    task: dict[str, Any] | None  # a gold task leased to the worker in this call, if any

    @property
    def may_serve_real(self) -> bool:
        """Whether a real (non-gold) task may be leased when no gold was: not while qualifying."""
        return self.task is None and self.standing["status"] == ACTIVE


def turn(conn: Connection, principal: Principal, project: Mapping[str, Any], policy: GoldPolicy, now: datetime) -> Turn:
    """Check the worker may take tasks (403 ``worker_paused`` if not) and lease gold when it is due."""
    standing = ensure_standing(conn, principal, project, policy, now)
    if standing["status"] == PAUSED:
        raise Forbidden(
            f"you are paused on this project: {standing['reason']}",
            details={"project_id": project["id"], "reason": standing["reason"]},
            code="worker_paused",
        )
    task = None
    if _gold_due(standing, policy):
        task = repo.lease_gold_task(conn, project["id"], principal.worker_id)
    if task is not None:
        _count_served(conn, standing, gold=True, now=now)
    elif standing["status"] == QUALIFYING and repo.unseen_gold_exists(conn, project["id"], principal.worker_id):
        # every gold task this worker may still take is being answered by others right now (their
        # submits hold the rows for a moment): "no task for you" would be wrong, so "try again"
        raise Busy("the gold tasks left for your qualification are being answered by others; try again")
    return Turn(standing, task)


def _gold_due(standing: Mapping[str, Any], policy: GoldPolicy) -> bool:
    """Qualifying: always. Active: with the probability that keeps gold_served near rate x tasks_served.

    The deficit ``rate * (served + 1) - gold_served`` is the gold this lease would need for the
    share to be exactly ``rate``; serving gold with that probability (certainly once a whole task
    behind, never when ahead) keeps the worker's gold count within one of ``rate`` x tasks served,
    at positions nobody can predict.
    """
    if standing["status"] == QUALIFYING:
        return True
    deficit = policy.rate * (standing["tasks_served"] + 1) - standing["gold_served"]
    return deficit > 0 and _RNG.random() < deficit


def count_real(conn: Connection, current: Turn, now: datetime) -> None:
    """A real task was leased in this turn: it counts toward the worker's tasks served."""
    _count_served(conn, current.standing, gold=False, now=now)


def _count_served(conn: Connection, standing: dict[str, Any], *, gold: bool, now: datetime) -> None:
    standing["tasks_served"] += 1
    standing["gold_served"] += int(gold)
    repo.change(
        conn,
        t.project_workers,
        standing["organization_id"],
        standing["id"],
        tasks_served=standing["tasks_served"],
        gold_served=standing["gold_served"],
        updated_at=now,
    )


def ensure_standing(
    conn: Connection, principal: Principal, project: Mapping[str, Any], policy: GoldPolicy, now: datetime
) -> dict[str, Any]:
    """The worker's standing on the project, created on first use (qualifying when the policy asks it)."""
    found = repo.standing(conn, principal.organization_id, project["id"], principal.worker_id)
    if found is not None:
        return found
    repo.add_standing(
        conn,
        {
            "id": new_id(),
            "organization_id": principal.organization_id,
            "project_id": project["id"],
            "worker_id": principal.worker_id,
            **_FRESH,
            "status": QUALIFYING if policy.qualification > 0 else ACTIVE,
            "updated_at": now,
        },
    )
    found = repo.standing(conn, principal.organization_id, project["id"], principal.worker_id)
    assert found is not None, "a worker's standing vanished inside its own transaction"
    return found


# --- scoring -----------------------------------------------------------------------------------------


def paused_workers(conn: Connection, project: Mapping[str, Any], worker_ids: Any = None) -> set[str]:
    """The workers paused on the project (among ``worker_ids``, when given)."""
    pw = t.project_workers
    query = repo.scoped(pw, project["organization_id"], pw.c.worker_id).where(
        pw.c.project_id == project["id"], pw.c.status == PAUSED
    )
    if worker_ids is not None:
        query = query.where(pw.c.worker_id.in_(sorted(worker_ids)))
    return set(conn.execute(query).scalars())


def jeffreys_interval(correct: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed Jeffreys interval of a share: Beta(correct + 1/2, n - correct + 1/2) quantiles.

    Few answers give a wide interval (n = 0 gives 0-1). Partial credit makes ``correct`` fractional,
    which the Beta posterior takes as it is. At 0 (or n) correct the lower (or upper) end is 0 (1),
    as Brown, Cai and DasGupta recommend. Reference: L. D. Brown, T. T. Cai and A. DasGupta,
    "Interval Estimation for a Binomial Proportion", Statistical Science 16(2):101-133, 2001,
    https://doi.org/10.1214/ss/1009213286.
    """
    if n <= 0:
        return 0.0, 1.0
    tail = (1 - level) / 2
    a, b = correct + 0.5, n - correct + 0.5
    low = 0.0 if correct <= 0 else float(beta.ppf(tail, a, b))
    high = 1.0 if correct >= n else float(beta.ppf(1 - tail, a, b))
    return low, high


def _same(question_type: str, expected: Any, given: Any) -> bool:
    if given is None:
        return False
    if question_type == "labels":
        return set(expected) == set(given)
    if question_type in _TEXT_TYPES:
        return " ".join(str(expected).split()) == " ".join(str(given).split())
    return bool(expected == given)  # label, rating (distance 0) and any other type: exactly equal


def _right(question: Any, expected: Any, given: Any) -> bool:
    """A type that defines ``gold_matches(question, expected, given)`` says what counts as right
    (a number within its tolerance, a rubric's scores without its comments); else ``_same``."""
    matches = getattr(questions.get(question.type), "gold_matches", None)
    if matches is None or given is None:
        return _same(question.type, expected, given)
    return bool(matches(question, expected, given))


def grade(project: Mapping[str, Any], gold_answer: Mapping[str, Any], answer: Mapping[str, Any]) -> dict[str, bool]:
    """Per question scored (the deciding ones the gold answer has; else every one it has): right or not."""
    by_name = {q.name: q for q in compiled_spec(dict(project)).questions}
    deciding = [rule.name for rule in completion_rules(project).deciding if rule.name in gold_answer]
    names = deciding or [name for name in by_name if name in gold_answer]
    return {name: _right(by_name[name], gold_answer[name], answer.get(name)) for name in names}


def score(
    conn: Connection,
    principal: Principal,
    project: Mapping[str, Any],
    task: Mapping[str, Any],
    response: Mapping[str, Any],
    now: datetime,
) -> None:
    """Score a response to a gold task and update the worker's standing (pausing or qualifying them)."""
    right = grade(project, task["gold"] or {}, response["answer"])
    share = sum(right.values()) / len(right) if right else 0.0
    policy = completion_rules(project).policy.gold
    standing = ensure_standing(conn, principal, project, policy, now)
    standing["gold_answers"] += 1
    standing["gold_correct"] = float(standing["gold_correct"]) + share
    status, reason = _judge(standing, policy)
    repo.change(
        conn,
        t.project_workers,
        standing["organization_id"],
        standing["id"],
        gold_answers=standing["gold_answers"],
        gold_correct=standing["gold_correct"],
        status=status,
        reason=reason,
        updated_at=now,
    )
    data = {"response_id": response["id"], "score": round(share, 6), "right": right}
    if status != standing["status"]:
        data["worker_status"] = status
    add_event(conn, task, "gold_answered", data, worker_id=principal.worker_id)


def _judge(standing: Mapping[str, Any], policy: GoldPolicy) -> tuple[str, str | None]:
    """The worker's status after a gold answer: qualified, paused, or as it was."""
    n, correct = int(standing["gold_answers"]), float(standing["gold_correct"])
    status, reason = standing["status"], standing["reason"]
    minimum = policy.min_accuracy
    if status == QUALIFYING and n >= policy.qualification:
        if minimum is None or correct / n >= minimum:
            return ACTIVE, None
        return PAUSED, (
            f"failed the qualification: {correct:g} of {n} gold answers right "
            f"(accuracy {correct / n:.2f}, the project asks at least {minimum:.2f})"
        )
    if status == ACTIVE and minimum is not None and n >= policy.min_answers:
        low, high = jeffreys_interval(correct, n)
        if high < minimum:
            return PAUSED, (
                f"gold accuracy {correct / n:.2f} ({correct:g} of {n} gold answers right; 95% interval "
                f"{low:.2f}-{high:.2f}) is surely below the project's minimum {minimum:.2f}"
            )
    return status, reason


# --- marking and unmarking -----------------------------------------------------------------------------


def _gold_answer(
    spec: CompiledSpec, answer: Any, field: str = "answer", data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    try:
        return spec.validate_answer(answer, data)
    except AnswerError as exc:
        raise InvalidInput(f"{field}.{exc}", details={"field": field}) from None


def mark_gold(db: Database, principal: Principal, task_id: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    """Make a task gold with this answer (or change a gold task's answer)."""
    with db.write() as conn:
        task = load_task(conn, principal, task_id, lock=True)
        require(principal, Action.MANAGE_TASKS)
        project = load_project(conn, principal, task["project_id"], hold_spec=True)
        require_active(project)
        task = _mark(conn, principal, task, _gold_answer(compiled_spec(project), answer, data=task["data"]))
    complete_batch_if_done(db, principal.organization_id, task["batch_id"])
    return task


def _mark(conn: Connection, principal: Principal, task: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    data: dict[str, Any] = {"answer": answer, "by": principal.member_id}
    if task["status"] == str(TaskStatus.GOLD):
        if task["gold"] == answer:
            return task
        data["previous"] = task["gold"]
        repo.change(conn, t.tasks, task["organization_id"], task["id"], gold=answer, updated_at=now)
        task = {**task, "gold": answer, "updated_at": now}
    else:
        data["from_status"] = task["status"]
        task = lifecycle.move(conn, task, TaskStatus.GOLD, gold=answer)
        # its batch may have no open task left now
        mark_batch_completed_if_done(conn, principal.organization_id, task["batch_id"])
    add_event(conn, task, "gold_marked", data)
    return task


def list_gold(
    db: Database, principal: Principal, project_id: str, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The project's gold tasks with their answers, in id order. Managers and above: the answers are
    the key to the test workers are scored by (the queue shows a gold task as any other)."""
    with db.read() as conn:
        load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        c = t.tasks.c
        query = repo.scoped(t.tasks, principal.organization_id).where(
            c.project_id == project_id, c.status == str(TaskStatus.GOLD)
        )
        return repo.page(conn, query, t.tasks, cursor=cursor, limit=limit)


def unmark_gold(db: Database, principal: Principal, task_id: str) -> dict[str, Any]:
    """A gold task becomes an ordinary task again: back in the queue, or completed if it has its judgments.

    The answers workers gave it while it was gold are kept and count as the task's judgments.
    Unmarking a task that is not gold changes nothing.
    """
    with db.write() as conn:
        task = load_task(conn, principal, task_id, lock=True)
        require(principal, Action.MANAGE_TASKS)
        if task["status"] != str(TaskStatus.GOLD):
            return task
        project = load_project(conn, principal, task["project_id"])
        task = _settle(conn, principal, project, task)
        data = {"by": principal.member_id, "to_status": task["status"]}
        add_event(conn, task, "gold_unmarked", data)
    if task["status"] == str(TaskStatus.COMPLETED):
        complete_batch_if_done(db, principal.organization_id, task["batch_id"])
    return task


def _settle(conn: Connection, principal: Principal, project: Mapping[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """Where an unmarked gold task goes: its batch's queue, scored at once if it has its judgments.

    With as many answers as its overlap, the results service decides as after any response:
    complete (flagged, or to review, as the policy says) or ask one more worker.
    """
    batch = repo.get(conn, t.batches, principal.organization_id, task["batch_id"]) if task["batch_id"] else None
    if batch is not None and batch["status"] == str(BatchStatus.OPEN):
        return lifecycle.move(conn, task, TaskStatus.STAGED, gold=None)
    task = lifecycle.move(conn, task, TaskStatus.PENDING, gold=None)
    repo.bump_queue_epoch(conn, task["project_id"])  # it may rank before tasks workers passed over
    if task["response_count"] >= task["overlap"]:
        task = results.after_response(conn, task, project, compiled_spec(dict(project)))
    return task


# --- bulk marking from CSV -------------------------------------------------------------------------------

#: A CSV line's task (by ``task_id`` or ``unique_id``) and gold answer, as read before anything is stored.
_Row = tuple[int, str, dict[str, Any]]


def import_gold_csv(db: Database, principal: Principal, project_id: str, text: str) -> dict[str, Any]:
    """Mark the tasks of a CSV as gold: all of them, or none when a line is wrong (each named by line).

    Layout: a header with ``task_id`` or ``unique_id`` (or both: a line may use either), then one
    column per question. A cell holds the answer as a worker would give it: an option value or text
    as it is; a number; a list (``labels``) as JSON, e.g. ``["cat", "dog"]``. An empty cell leaves the
    question out.
    """
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        rows = _read_csv(conn, principal, project, text)
    with db.write() as conn:
        project = load_project(conn, principal, project_id)
        require_active(project)
        marked = updated = 0
        batches: set[str] = set()
        for _line, task_id, answer in rows:
            task = load_task(conn, principal, task_id, lock=True)
            was_gold = task["status"] == str(TaskStatus.GOLD)
            _mark(conn, principal, task, answer)
            updated += was_gold
            marked += not was_gold
            if task["batch_id"]:
                batches.add(task["batch_id"])
    for batch_id in sorted(batches):
        complete_batch_if_done(db, principal.organization_id, batch_id)
    return {"received": len(rows), "marked": marked, "updated": updated}


class _Errors:
    """Bad lines of an import, reported together (the first 100)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.count = 0

    def add(self, line: int, field: str, message: str) -> None:
        self.count += 1
        if len(self.items) < 100:
            self.items.append({"line": line, "field": field, "message": message, "type": "invalid"})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            raise InvalidInput(
                f"line {first['line']}: {first['message']} ({self.count} bad line(s); nothing was marked)",
                details={"field": "body", "line": first["line"], "invalid": self.count, "errors": self.items},
            )


def _read_csv(conn: Connection, principal: Principal, project: Mapping[str, Any], text: str) -> list[_Row]:
    spec = compiled_spec(dict(project))
    types = {q.name: q.type for q in spec.questions}
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    _check_header(header, types)
    errors, rows, seen = _Errors(), [], {}
    for record in reader:
        line = reader.line_num
        try:
            task = _task_of(conn, principal, project, record)
            task_id = task["id"]
            if task_id in seen:
                raise ValueError(f"the task is also on line {seen[task_id]}")
            seen[task_id] = line
            answer = {n: _cell(types[n], v) for n, v in record.items() if n in types and v not in (None, "")}
            rows.append((line, task_id, spec.validate_answer(answer, task["data"])))
        except (ValueError, AnswerError) as exc:
            field = str(exc).split(":", 1)[0] if isinstance(exc, AnswerError) else "task"
            errors.add(line, field, str(exc))
    errors.raise_if_any()
    if not rows:
        raise InvalidInput("the CSV has no lines after its header", details={"field": "body"})
    return rows


def _check_header(header: list[str], types: Mapping[str, str]) -> None:
    if "task_id" not in header and "unique_id" not in header:
        message = "line 1: the header needs a task_id or unique_id column"
        raise InvalidInput(message, details={"field": "body", "line": 1})
    unknown = [name for name in header if name not in types and name not in ("task_id", "unique_id")]
    if unknown:
        raise InvalidInput(
            f"line 1: column(s) {', '.join(unknown)} are not questions of the project (questions: {', '.join(types)})",
            details={"field": "body", "line": 1},
        )


def _task_of(
    conn: Connection, principal: Principal, project: Mapping[str, Any], record: Mapping[str, Any]
) -> dict[str, Any]:
    task_id = (record.get("task_id") or "").strip()
    unique_id = record.get("unique_id") or ""
    if not task_id and not unique_id:
        raise ValueError("task_id or unique_id is required")
    if not task_id:
        task_id = repo.existing_unique_ids(conn, principal.organization_id, [unique_id]).get(unique_id, "")
        if not task_id:
            raise ValueError(f"no task has unique_id {unique_id!r}")
    task = repo.get(conn, t.tasks, principal.organization_id, task_id)
    if task is None or task["project_id"] != project["id"]:
        raise ValueError(f"task {task_id} not found in this project")
    if task["status"] == str(TaskStatus.CANCELED):
        raise ValueError(f"task {task_id} is canceled")
    return task


def _cell(question_type: str, value: str) -> Any:
    """A cell as an answer value: text and option values as they are, anything else read as JSON."""
    if question_type in ("label", *_TEXT_TYPES):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value  # the spec names what is wrong with it


# --- managers ----------------------------------------------------------------------------------------


_FRESH = {"status": ACTIVE, "reason": None, "tasks_served": 0, "gold_served": 0, "gold_answers": 0, "gold_correct": 0.0}


def reinstate(db: Database, principal: Principal, project_id: str, worker_id: str) -> dict[str, Any]:
    """Let a paused (or qualifying) worker take tasks again, with a fresh gold record.

    The gold counters restart at zero (the old record would pause them again at their next gold
    answer); the reason keeps the old figures and who reinstated them. Tasks and gold served are
    kept, so gold keeps its rate.
    """
    require(principal, Action.MANAGE_PROJECTS)
    with db.write() as conn:
        project = load_project(conn, principal, project_id)
        if repo.get(conn, t.workers, principal.organization_id, worker_id) is None:
            raise NotFound(f"worker {worker_id} not found")
        standing = repo.standing(conn, principal.organization_id, project["id"], worker_id)
        now = utcnow()
        if standing is None:  # gold never met this worker: they are active, and nothing is stored
            return {"project_id": project_id, "worker_id": worker_id, **_FRESH, "updated_at": now}
        if standing["status"] == ACTIVE:
            return standing
        reason = f"reinstated by member {principal.member_id} at {now:%Y-%m-%d %H:%M} UTC; was {standing['status']}"
        if standing["reason"]:
            reason += f": {standing['reason']}"
        values = {"status": ACTIVE, "reason": reason, "gold_answers": 0, "gold_correct": 0.0, "updated_at": now}
        values |= {"audits": 0, "audits_agreed": 0}  # a model's audit record restarts too (services/auto_label.py)
        repo.change(conn, t.project_workers, principal.organization_id, standing["id"], **values)
    log.info("worker %s reinstated on project %s by member %s", worker_id, project_id, principal.member_id)
    return {**standing, **values}


def standing_figures(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """A standing as the worker figures show it (status, reason, gold accuracy with its interval)."""
    if row is None:
        return {
            "status": None,
            "status_reason": None,
            "tasks_served": 0,
            "gold_served": 0,
            "gold_answers": 0,
            "gold_correct": 0.0,
            "gold_accuracy": None,
            "gold_interval": None,
        }
    n, correct = int(row["gold_answers"]), float(row["gold_correct"])
    return {
        "status": row["status"],
        "status_reason": row["reason"],
        "tasks_served": int(row["tasks_served"]),
        "gold_served": int(row["gold_served"]),
        "gold_answers": n,
        "gold_correct": round(correct, 6),
        "gold_accuracy": round(correct / n, 6) if n else None,
        "gold_interval": [round(v, 6) for v in jeffreys_interval(correct, n)] if n else None,
    }


def promote_result(conn: Connection, principal: Principal, project: Mapping[str, Any], task: dict[str, Any]) -> bool:
    """Make a completed task gold with its current result as the known answer (a manager's bulk action).

    Returns False, changing nothing, for a task that is not completed or has no result.
    """
    if task["status"] != str(TaskStatus.COMPLETED) or not task["result"]:
        return False
    answer = _gold_answer(compiled_spec(dict(project)), task["result"]["answer"], data=task["data"])
    _mark(conn, principal, task, answer)
    return True

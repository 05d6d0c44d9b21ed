"""Auto-labeling with audits: an eligible model version completes tasks without people (docs/models.md).

The project's policy ``auto_label`` (``schemas.AutoLabelPolicy``; null = off) turns it on.

- **Eligibility** (:func:`measure`): a model worker's accuracy on *human-verified* tasks (gold tasks,
  tasks people completed, and tasks a reviewer accepted or fixed; never tasks it auto-labeled itself
  that nobody checked), scored like a gold answer (a share of the deciding questions right; on a
  task people completed, against people's answers without any model's vote, each question counting
  the probability people's answers give the model's answer: :func:`_score`), with the 95% Jeffreys
  interval gold uses. A model may auto-label when it has predicted at least
  ``min_verified`` such tasks, the interval's LOWER end reaches ``min_accuracy``, and it is not
  paused on the project. Read from stored rows in one query, never from process memory.
- **Auto-labeling** (:func:`after_predictions` at upload, :func:`sweep` for the backlog): a pending
  task nobody has answered or leased, with an eligible model's prediction on every deciding
  question, completes with the model's answer when each deciding question's evidence reaches its
  ``target_confidence`` (``min_accuracy`` where a question has none): the lower end of the accuracy
  interval of the model's verified predictions in the prediction's score band, or its score capped
  at the lower end over all of them, whichever is higher. The result states the predictive
  probability of the same record (the interval's mean), never more than people measured
  (:func:`_evidence`). The task completes
  through the path people's answers take (``results.complete_task``: webhooks, review sampling,
  batch completion), its result says ``auto_label`` and method ``model``, and its history has an
  ``auto_labeled`` step naming the model.
- **Audits**: a fixed share (``audit_rate``, drawn from the task id, so a rerun draws alike) of the
  tasks a model would auto-label stay with people instead: an ``auto_label_audit`` step records the
  model's answer, and when people complete the task (:func:`after_human_completion`) an
  ``audit_outcome`` step records whether their answer (the model left out) equals the model's.
- **Suspension**: with ``audit_min_count`` audits or more, a model whose audits agree less often than
  ``audit_min_agreement`` (the point estimate: see :func:`_judge`) is paused on the project (the gold
  pause, with the reason "audits below target: x of n agreed"). A paused model auto-labels nothing,
  and a ``model.auto_label`` job (:func:`sweep`) sends the tasks it auto-labeled that no reviewer
  confirmed back to people, each with an ``auto_label_reopened`` step keeping the result it had. A
  manager reinstates the model as any paused worker (``gold.reinstate``; the audit counts restart).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from truthset.domain import ReviewStatus, TaskStatus, WebhookEvent, WorkerKind
from truthset.errors import NotFound
from truthset.questions import CompiledSpec
from truthset.schemas import AutoLabelPolicy
from truthset.services import gold, jobs, lifecycle, results, webhooks
from truthset.services.completion import CompletionRules, completion_rules
from truthset.services.events import add_event
from truthset.services.projects import compiled_spec
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

METHOD = "model"
#: Task events (history steps) of auto-labeling.
LABELED, AUDIT, OUTCOME, REOPENED = "auto_labeled", "auto_label_audit", "audit_outcome", "auto_label_reopened"
KINDS = (LABELED, AUDIT, OUTCOME, REOPENED)
#: The job that reopens a paused model's auto-labels and labels the backlog of eligible ones.
JOB_KIND = "model.auto_label"
#: Tasks read and written per transaction by the backlog pass and the reopening.
CHUNK = 200
#: Reviews that confirm a result: a task with one is never reopened.
_CONFIRMED = (str(ReviewStatus.ACCEPTED), str(ReviewStatus.FIXED))


#: Lower edges of the bands of a prediction's score: the stated confidence of an auto-label rests
#: on the model's verified record in its prediction's band (:func:`_evidence`).
SCORE_BANDS = (0.6, 0.8, 0.9, 0.97)


def predictive_accuracy(correct: float, verified: int) -> float:
    """The probability that the next prediction is right after ``correct`` of ``verified`` were.

    The mean of the Jeffreys posterior Beta(correct + 1/2, verified - correct + 1/2) that the
    intervals here come from: the predictive probability, which is what a calibrated confidence
    states (an interval's lower end answers "how sure are we that it is at least this good", a
    different question, and stated as a confidence it is under-confident by construction).
    """
    return (correct + 0.5) / (verified + 1.0)


def score_band(score: float) -> float:
    """The lower edge of the band of a prediction's score (0 below the first edge)."""
    return max((edge for edge in SCORE_BANDS if score >= edge), default=0.0)


def policy_of(project: Mapping[str, Any]) -> AutoLabelPolicy | None:
    """The project's auto-label policy, or None when it is off (a cached lookup)."""
    return completion_rules(project).policy.auto_label


def audit_draw(task_id: str) -> float:
    """A number in [0, 1) fixed by the task's id (salted apart from the review sample's draw)."""
    digest = hashlib.sha256(f"auto_label_audit:{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- eligibility -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A model worker's record on human-verified tasks of one project."""

    worker_id: str
    verified: int = 0
    correct: float = 0.0
    status: str | None = None  # its standing (None: gold never met it)
    reason: str | None = None
    #: the same record per band of the prediction's (weakest) score: band's lower edge -> (verified, correct)
    bands: Mapping[float, tuple[int, float]] = field(default_factory=dict)
    #: of ``verified``, the tasks whose answer is certain (gold, a reviewer's accept or fix)
    certain: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.verified if self.verified else None

    @property
    def interval(self) -> tuple[float, float]:
        return gold.jeffreys_interval(self.correct, self.verified)

    @property
    def predictive(self) -> float | None:
        """The probability that its next prediction is right, given its record (None without one)."""
        return predictive_accuracy(self.correct, self.verified) if self.verified else None

    def band(self, score: float) -> tuple[int, float]:
        """Its verified predictions in ``score``'s band: (verified, correct)."""
        return self.bands.get(score_band(score), (0, 0.0))

    @property
    def paused(self) -> bool:
        return self.status == gold.PAUSED

    def eligible(self, policy: AutoLabelPolicy | None) -> bool:
        return self.blocked_by(policy) is None

    def blocked_by(self, policy: AutoLabelPolicy | None) -> str | None:
        """Why the policy does not let it auto-label now, in words a manager can act on (None: it may).

        A qualifying model (gold's qualification set, not passed yet) may not either.
        """
        if policy is None:
            return "auto-labeling is off"
        if self.paused:
            return self.reason or "paused"
        if self.status not in (None, gold.ACTIVE):
            return f"its standing is {self.status}"
        if self.verified < policy.min_verified:
            return f"{self.verified} of the {policy.min_verified} verified tasks it needs"
        accuracy, low = self.accuracy or 0.0, self.interval[0]
        if accuracy < policy.min_accuracy:
            # People's answers count only as surely as they are (_score): a record resting on them
            # cannot reach a bar above their confidence, so say what can.
            hint = " (people's answers count as surely as they are; gold and reviews count in full)"
            return f"its verified accuracy is {accuracy:.1%}, below {policy.min_accuracy:.1%}" + (
                hint if self.certain < self.verified else ""
            )
        if low < policy.min_accuracy:
            bar = f"{policy.min_accuracy:.1%}"
            return f"its verified accuracy is surely above {low:.1%} only, not {bar}: too few verified tasks yet"
        return None


def model_workers(conn: Connection, organization_id: str) -> list[str]:
    """The organization's model workers (few: one per model version)."""
    w = t.workers
    query = repo.scoped(w, organization_id, w.c.id).where(w.c.kind == str(WorkerKind.MODEL))
    return [row[0] for row in conn.execute(query.order_by(w.c.id))]


def measure(
    conn: Connection, project: Mapping[str, Any], worker_ids: Sequence[str] | None = None
) -> dict[str, Measured]:
    """Each model worker's accuracy on the project's human-verified tasks (one query), and standing."""
    org = project["organization_id"]
    ids = list(worker_ids) if worker_ids is not None else model_workers(conn, org)
    if not ids:
        return {}
    r, tk = t.responses, t.tasks
    query = (
        select(r.c.worker_id, r.c.answer, r.c.scores, tk.c.status, tk.c.gold, tk.c.result, tk.c.review_status)
        .join(tk, tk.c.id == r.c.task_id)
        .where(
            r.c.organization_id == org,
            r.c.project_id == project["id"],
            r.c.worker_id.in_(ids),
            tk.c.status.in_([str(TaskStatus.COMPLETED), str(TaskStatus.GOLD)]),
        )
    )
    verified = dict.fromkeys(ids, 0)
    correct = dict.fromkeys(ids, 0.0)
    certain = dict.fromkeys(ids, 0)
    bands: dict[str, dict[float, tuple[int, float]]] = {worker_id: {} for worker_id in ids}
    for worker_id, answer, scores, status, gold_answer, result, review_status in conn.execute(query):
        if scores is None:
            continue  # a model worker's response without scores is no prediction
        expected = _verified_answer(project, status, gold_answer, result, review_status)
        sure = status == str(TaskStatus.GOLD) or review_status in _CONFIRMED  # gold, or a reviewer's word
        share = _score(project, expected, answer or {}, {} if sure else _people_posteriors(result))
        if share is not None:
            verified[worker_id] += 1
            correct[worker_id] += share
            certain[worker_id] += sure
            numeric = [float(v) for v in scores.values() if isinstance(v, int | float)]
            band = score_band(min(numeric)) if numeric else 0.0
            n, right = bands[worker_id].get(band, (0, 0.0))
            bands[worker_id][band] = (n + 1, right + share)
    standings = {s["worker_id"]: s for s in repo.standings_of_project(conn, org, project["id"])}
    out = {}
    for worker_id in ids:
        standing = standings.get(worker_id) or {}
        out[worker_id] = Measured(
            worker_id,
            verified[worker_id],
            correct[worker_id],
            standing.get("status"),
            standing.get("reason"),
            bands[worker_id],
            certain[worker_id],
        )
    return out


def _verified_answer(
    project: Mapping[str, Any], status: str, gold_answer: Any, result: Any, review_status: str | None
) -> Mapping[str, Any] | None:
    """The answer people vouch for on a task, or None when none did (an unchecked auto-label).

    On a task people completed, a model's vote may have counted toward the result: there the answer
    people's responses give alone (``people_answer``, results.build_result) is what they vouch for,
    and only on the questions where it is also the result's answer. A question the model's vote
    decided (people alone answer otherwise, or tie) verifies no model: measured against such a
    result, a model would be right by its own vote and its record would overstate it.
    """
    if status == str(TaskStatus.GOLD):
        return gold_answer if isinstance(gold_answer, dict) else None
    if not isinstance(result, dict):
        return None
    if review_status in _CONFIRMED:
        return result.get("answer")
    if result.get("auto_label") or not result.get("response_count"):
        return None
    answer, people = result.get("answer"), result.get("people_answer")
    if not isinstance(people, dict) or not isinstance(answer, dict):
        return answer
    vouched = {name: value for name, value in people.items() if value is not None and name in answer}
    agreeing = gold.grade(project, vouched, answer) if vouched else {}
    return {name: vouched[name] for name, same in agreeing.items() if same}


def _people_posteriors(result: Any) -> Mapping[str, Mapping[str, float]]:
    """On a task people completed (no gold, no reviewer's verdict), how sure people's answers are
    of each option, per question whose type states a posterior: ``people_posterior`` where a
    model's vote counted, else the result's own."""
    if not isinstance(result, dict):
        return {}
    if isinstance(result.get("people_answer"), dict):
        return result.get("people_posterior") or {}
    questions = result.get("questions") or {}
    found = {name: (q.get("details") or {}).get("posterior") for name, q in questions.items() if isinstance(q, dict)}
    return {name: posterior for name, posterior in found.items() if isinstance(posterior, dict)}


def _score(
    project: Mapping[str, Any],
    expected: Mapping[str, Any] | None,
    answer: Mapping[str, Any],
    posteriors: Mapping[str, Mapping[str, float]],
) -> float | None:
    """The share of the questions the model answered right (as gold grades), each question counting
    the probability people's answers give the model's answer where they state one.

    A gold answer or a reviewer's verdict is certain: a right answer counts 1. People's answers are
    not: where their posterior gives the model's answer 0.95, the model is right with probability
    0.95, not surely. Counting agreement with people as certain would make the record of a model
    trained on people's results as sure as people's answers are, and more: the record it would keep
    on the tasks people answered is the crowd's, with the crowd's shared errors (benchmarks/models:
    auto-labels stated 0.997 where 0.971 were right).
    """
    if not expected:
        return None
    compared = {name: value for name, value in expected.items() if name in answer and value is not None}
    if not compared:
        return None
    right = gold.grade(project, compared, answer)
    if not right:
        return None
    shares = [_chance(posteriors.get(name), answer.get(name), ok) for name, ok in right.items()]
    return sum(shares) / len(shares)


def _chance(posterior: Mapping[str, float] | None, value: Any, right: bool) -> float:
    """The probability that ``value`` is right: people's posterior of it, or certainty."""
    if posterior is None or not isinstance(value, str):
        return float(right)
    return float(posterior.get(value, 0.0))


# --- auto-labeling -----------------------------------------------------------------------------------


def after_predictions(conn: Connection, project: Mapping[str, Any], worker_id: str, task_ids: Iterable[str]) -> int:
    """After a model's predictions are stored (in their transaction): auto-label the tasks it may.

    Nothing is read when the project's policy is off. Returns the tasks completed.
    """
    policy = policy_of(project)
    if policy is None:
        return 0
    task_ids = list(task_ids)
    if not _any_waiting(conn, project["organization_id"], task_ids):
        return 0  # gold, staged or answered tasks only: no need to measure the model
    measured = measure(conn, project, [worker_id])[worker_id]
    if not measured.eligible(policy):
        return 0
    return _label(conn, project, policy, measured, task_ids)


def _any_waiting(conn: Connection, organization_id: str, task_ids: list[str]) -> bool:
    tk = t.tasks
    for start in range(0, len(task_ids), 500):
        query = repo.scoped(tk, organization_id, tk.c.id).where(
            tk.c.id.in_(task_ids[start : start + 500]),
            tk.c.status == str(TaskStatus.PENDING),
            tk.c.response_count == 0,
        )
        if conn.execute(query.limit(1)).first() is not None:
            return True
    return False


def _label(
    conn: Connection, project: Mapping[str, Any], policy: AutoLabelPolicy, measured: Measured, task_ids: list[str]
) -> int:
    """Complete (or leave to people as audits) the tasks among these that the model may auto-label."""
    org = project["organization_id"]
    rules = completion_rules(project)
    spec = compiled_spec(dict(project))
    predictions = _predictions(conn, measured.worker_id, task_ids)
    # locked first, then checked: an upload of another model version racing this one on PostgreSQL
    # waits here and then sees this one's audit steps and completions
    tasks = _locked_tasks(conn, org, sorted(predictions))
    touched = _touched(conn, org, sorted(tasks))
    model = _name(conn, org, measured.worker_id)
    completed = 0
    for task_id in sorted(tasks):
        task = tasks[task_id]
        if task_id in touched or not _open_to_model(task):
            continue
        result, confidence = _model_result(spec, rules, policy, measured, predictions[task_id])
        if result is None:
            continue
        step = {
            "model": model,
            "worker_id": measured.worker_id,
            "response_id": predictions[task_id]["id"],
            "answer": result["answer"],
            "confidence": result["confidence"],
        }
        if audit_draw(task_id) < policy.audit_rate:
            add_event(conn, task, AUDIT, step, worker_id=measured.worker_id)
            continue
        task = results.complete_task(conn, task, result, confidence, rules)
        add_event(conn, task, LABELED, {**step, **result["auto_label"]}, worker_id=measured.worker_id)
        _count(conn, project, measured.worker_id, auto_labeled=1)
        completed += 1
    return completed


def _open_to_model(task: Mapping[str, Any]) -> bool:
    """Waiting for people, and nobody has answered, leased, reviewed or gold-marked it."""
    return (
        task["status"] == str(TaskStatus.PENDING)
        and task["response_count"] == 0
        and task["lease_count"] == 0
        and task["gold"] is None
        and task["review_status"] is None
    )


def _locked_tasks(conn: Connection, organization_id: str, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """These tasks of the organization, locked until the commit (in id order: no deadlock)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(task_ids), 500):
        query = repo.scoped(t.tasks, organization_id).where(t.tasks.c.id.in_(task_ids[start : start + 500]))
        rows = conn.execute(query.order_by(t.tasks.c.id).with_for_update()).mappings()
        found.update({row["id"]: dict(row) for row in rows})
    return found


def _touched(conn: Connection, organization_id: str, task_ids: list[str]) -> set[str]:
    """Tasks auto-labeling has met before (audited, labeled, reopened): they stay with people."""
    e = t.task_events
    found: set[str] = set()
    for start in range(0, len(task_ids), 500):
        query = repo.scoped(e, organization_id, e.c.task_id).where(
            e.c.task_id.in_(task_ids[start : start + 500]), e.c.kind.in_(KINDS)
        )
        found.update(row[0] for row in conn.execute(query))
    return found


def _predictions(conn: Connection, worker_id: str, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    r = t.responses
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(task_ids), 500):
        query = select(r.c.id, r.c.task_id, r.c.answer, r.c.scores).where(
            r.c.worker_id == worker_id, r.c.task_id.in_(task_ids[start : start + 500])
        )
        found.update({row["task_id"]: dict(row) for row in conn.execute(query).mappings() if row["scores"]})
    return found


def _model_result(
    spec: CompiledSpec,
    rules: CompletionRules,
    policy: AutoLabelPolicy,
    measured: Measured,
    prediction: Mapping[str, Any],
) -> tuple[dict[str, Any] | None, float | None]:
    """The result a prediction makes, or None when a deciding question falls short of its target."""
    answer, scores = prediction["answer"] or {}, prediction["scores"] or {}
    low, high = measured.interval
    questions = {}
    for name, value in answer.items():
        rule = rules.questions.get(name)
        if rule is None or scores.get(name) is None:
            continue
        evidence = _evidence(measured, float(scores[name]), low)
        confidence = round(evidence.stated, 6)
        threshold = rule.target if rule.target is not None else policy.min_accuracy
        if rule.deciding and evidence.lower < threshold:
            return None, None
        questions[name] = {
            "answer": value,
            "confidence": confidence,
            "method": METHOD,
            "tie": False,
            "deciding": rule.deciding,
            "target_confidence": rule.target,
            "reached_target": rule.target is None or confidence >= rule.target,
            "model_version": None,
            "details": {
                "score": round(float(scores[name]), 6),
                "confidence_from": evidence.source,
                "lower_bound": round(evidence.lower, 6),
            },
        }
    if any(rule.name not in questions for rule in rules.deciding):
        return None, None  # the model did not answer every deciding question
    deciding = [q["confidence"] for q in questions.values() if q["deciding"]]
    result = {
        "answer": {name: q["answer"] for name, q in questions.items()},
        "confidence": {name: q["confidence"] for name, q in questions.items()},
        "methods": dict.fromkeys(questions, METHOD),
        "questions": questions,
        "response_count": 0,
        "workers": [measured.worker_id],
        "response_ids": [prediction["id"]],
        "predictions": 1,
        "auto_label": {
            "worker_id": measured.worker_id,
            "response_id": prediction["id"],
            "verified_tasks": measured.verified,
            "verified_accuracy": round(measured.accuracy or 0.0, 6),
            "verified_interval": [round(low, 6), round(high, 6)],
        },
    }
    return result, min(deciding)


@dataclass(frozen=True)
class Evidence:
    """What people measured behind one auto-labeled answer.

    ``lower`` gates: the answer auto-labels only if it reaches the question's target (strong
    evidence, as eligibility asks). ``stated`` is the confidence the result states: the predictive
    probability from the same record, so that stated confidences match measured accuracy.
    """

    stated: float
    lower: float
    source: str  # "verified_band" or "score_capped"


def _evidence(measured: Measured, score: float, low: float) -> Evidence:
    """The evidence an auto-label rests on: never more than people measured.

    The model's verified predictions *in this score's band* (:func:`score_band`), or its score
    capped by its record over all its verified predictions, whichever gives the higher lower end:
    both are what people checked, and a score is only the model's own estimate. The band matters:
    the cap alone states the model's record over every score, below that of the sure predictions
    auto-labeling takes (in benchmarks/models auto-labels 97-98% right stated 91-92%). The lower
    ends of the 95% Jeffreys intervals gate; the posterior means are stated (in benchmarks/models
    the lower end stated 0.944 for auto-labels 0.967 right).
    """
    capped = Evidence(stated=min(score, measured.predictive or 0.0), lower=min(score, low), source="score_capped")
    verified, correct = measured.band(score)
    if not verified:
        return capped
    band_low = gold.jeffreys_interval(correct, verified)[0]
    if band_low <= capped.lower:
        return capped
    return Evidence(stated=predictive_accuracy(correct, verified), lower=band_low, source="verified_band")


def _name(conn: Connection, organization_id: str, worker_id: str) -> str:
    worker = repo.get(conn, t.workers, organization_id, worker_id)
    return worker["name"] if worker else worker_id


def _count(conn: Connection, project: Mapping[str, Any], worker_id: str, **increments: int) -> dict[str, Any]:
    """Add to a model worker's counters on the project (its standing, created active on first use)."""
    standing = _standing(conn, project, worker_id)
    values = {name: int(standing[name]) + step for name, step in increments.items()}
    repo.change(conn, t.project_workers, project["organization_id"], standing["id"], **values, updated_at=utcnow())
    return {**standing, **values}


def _standing(conn: Connection, project: Mapping[str, Any], worker_id: str) -> dict[str, Any]:
    org = project["organization_id"]
    found = repo.standing(conn, org, project["id"], worker_id)
    if found is None:
        row = {
            "id": new_id(),
            "organization_id": org,
            "project_id": project["id"],
            "worker_id": worker_id,
            "status": gold.ACTIVE,
            "reason": None,
            "tasks_served": 0,
            "gold_served": 0,
            "gold_answers": 0,
            "gold_correct": 0.0,
            "updated_at": utcnow(),
        }
        repo.add_standing(conn, row)
        found = repo.standing(conn, org, project["id"], worker_id)
    assert found is not None, "a worker's standing vanished inside its own transaction"
    return found


# --- audits ------------------------------------------------------------------------------------------


def after_human_completion(conn: Connection, task: Mapping[str, Any], project: Mapping[str, Any]) -> None:
    """After people's answers completed a task (in the submit's transaction): if it was an audit,
    record whether people agreed with the model, and pause the model when its audits fall short.

    One indexed read (the task's audit step) when the policy is on; nothing when it is off.
    """
    policy = policy_of(project)
    if policy is None or task["status"] != str(TaskStatus.COMPLETED):
        return
    steps = _steps(conn, task, (AUDIT, OUTCOME))
    audits = [s for s in steps if s["kind"] == AUDIT]
    if not audits or any(s["kind"] == OUTCOME for s in steps):
        return
    audit = audits[0]
    people = _people_answer(task)
    model_answer = audit["data"]["answer"]
    compared = {name: people.get(name) for name in model_answer}
    data: dict[str, Any] = {
        "model": audit["data"].get("model"),
        "worker_id": audit["worker_id"],
        "model_answer": model_answer,
        "people_answer": compared,
    }
    if any(value is None for value in compared.values()):
        data["agreed"] = None  # people tied (or left a question out): no verdict on the model
        add_event(conn, task, OUTCOME, data, worker_id=audit["worker_id"])
        return
    right = gold.grade(project, compared, model_answer)
    data["agreed"] = bool(right) and all(right.values())
    add_event(conn, task, OUTCOME, data, worker_id=audit["worker_id"])
    standing = _count(conn, project, audit["worker_id"], audits=1, audits_agreed=int(data["agreed"]))
    _judge(conn, project, policy, standing, audit["data"].get("model"))


def _steps(conn: Connection, task: Mapping[str, Any], kinds: Sequence[str]) -> list[dict[str, Any]]:
    e = t.task_events
    query = repo.scoped(e, task["organization_id"]).where(e.c.task_id == task["id"], e.c.kind.in_(kinds))
    return [dict(row) for row in conn.execute(query.order_by(e.c.id)).mappings()]


def _people_answer(task: Mapping[str, Any]) -> dict[str, Any]:
    """The task's answer from people's responses alone (results.build_result's ``people_answer``
    where a model's vote counted): the audited model's own vote must not count toward the verdict
    on it (nor any model's)."""
    result = task.get("result") or {}
    people = result.get("people_answer")
    return dict(people if isinstance(people, dict) else result.get("answer") or {})


def _judge(
    conn: Connection, project: Mapping[str, Any], policy: AutoLabelPolicy, standing: dict[str, Any], model: str | None
) -> None:
    """Pause the model when its audits, once ``audit_min_count``, agree less often than the target.

    The point estimate, not an interval's end: eligibility already demanded the lower end of the
    accuracy interval, so a model auto-labels only on strong evidence; audits are the running check
    of that claim, and a share below target over ``audit_min_count`` audits is reason enough to send
    its work back to people (a pause costs people's time; a wrong auto-label, bad data). Waiting for
    an interval's upper end to fall below the target would let a failing model label for hundreds
    more tasks. ``audit_min_count`` keeps a few unlucky audits from pausing it.
    """
    n, agreed = int(standing["audits"]), int(standing["audits_agreed"])
    if standing["status"] != gold.ACTIVE or n < policy.audit_min_count or agreed / n >= policy.audit_target:
        return
    reason = (
        f"audits below target: {agreed} of {n} agreed (agreement {agreed / n:.2f}, "
        f"the project asks at least {policy.audit_target:.2f})"
    )
    now = utcnow()
    org = project["organization_id"]
    repo.change(conn, t.project_workers, org, standing["id"], status=gold.PAUSED, reason=reason, updated_at=now)
    worker = {"id": standing["worker_id"], "name": model, "project_id": project["id"], "status": gold.PAUSED}
    worker |= {"reason": reason, "audits": n, "audits_agreed": agreed}
    webhooks.emit(conn, org, project["id"], str(WebhookEvent.MODEL_SUSPENDED), {"worker": worker})
    # its unconfirmed auto-labels go back to people in a job: there may be many, and this is a submit
    jobs.enqueue(conn, org, JOB_KIND, {"project_id": project["id"]}, dedupe_key=f"auto_label:{project['id']}")


# --- the backlog and the reopening ---------------------------------------------------------------------


def sweep(db: Database, organization_id: str, project_id: str) -> dict[str, Any]:
    """Send paused models' unconfirmed auto-labels back to people, then auto-label the backlog of
    eligible models (pending tasks they predicted), in short transactions of ``CHUNK`` tasks.

    Run after a refit and as the ``model.auto_label`` job (after a pause). Safe to repeat.
    """
    with db.read() as conn:
        project = repo.get(conn, t.projects, organization_id, project_id)
        if project is None:
            raise NotFound(f"project {project_id} not found")
        policy = policy_of(project)
        measured = measure(conn, project) if policy is not None else {}
    report = {"project_id": project_id, "reopened": 0, "auto_labeled": 0}
    for figures in measured.values():
        if figures.paused:
            report["reopened"] += _reopen_all(db, project, figures)
        elif policy is not None and figures.eligible(policy):
            report["auto_labeled"] += _label_backlog(db, project, policy, figures)
    return report


def _label_backlog(db: Database, project: dict[str, Any], policy: AutoLabelPolicy, measured: Measured) -> int:
    r, tk = t.responses, t.tasks
    done, after = 0, ""
    while True:
        with db.read() as conn:
            query = (
                select(tk.c.id)
                .join(r, r.c.task_id == tk.c.id)
                .where(
                    r.c.worker_id == measured.worker_id,
                    tk.c.organization_id == project["organization_id"],
                    tk.c.project_id == project["id"],
                    tk.c.status == str(TaskStatus.PENDING),
                    tk.c.response_count == 0,
                    tk.c.id > after,
                )
                .order_by(tk.c.id)
                .limit(CHUNK)
            )
            ids = list(conn.execute(query).scalars())
        if not ids:
            return done
        with db.write() as conn:
            current = repo.get(conn, t.projects, project["organization_id"], project["id"])
            if current is None or current.get("archived_at") is not None or policy_of(current) is None:
                return done
            done += _label(conn, current, policy, measured, ids)
        after = ids[-1]


def _reopen_all(db: Database, project: dict[str, Any], measured: Measured) -> int:
    """Reopen every completed task the paused model auto-labeled that no reviewer confirmed."""
    tk = t.tasks
    labeled_by = tk.c.result[("auto_label", "worker_id")].as_string()
    done, after = 0, ""
    while True:
        with db.read() as conn:
            query = (
                repo.scoped(tk, project["organization_id"], tk.c.id)
                .where(
                    tk.c.project_id == project["id"],
                    tk.c.status == str(TaskStatus.COMPLETED),
                    labeled_by == measured.worker_id,
                    tk.c.id > after,
                )
                .order_by(tk.c.id)
                .limit(CHUNK)
            )
            ids = list(conn.execute(query).scalars())
        if not ids:
            return done
        with db.write() as conn:
            reopened = sum(_reopen(conn, project, measured, task_id) for task_id in ids)
            if reopened:
                _count(conn, project, measured.worker_id, auto_labels_reopened=reopened)
            done += reopened
        after = ids[-1]


def _reopen(conn: Connection, project: Mapping[str, Any], measured: Measured, task_id: str) -> bool:
    task = repo.get(conn, t.tasks, project["organization_id"], task_id, lock=True)
    if task is None or task["status"] != str(TaskStatus.COMPLETED) or task["review_status"] in _CONFIRMED:
        return False
    before = task["result"] or {}
    if (before.get("auto_label") or {}).get("worker_id") != measured.worker_id:
        return False
    overlap = int(task["response_count"]) + max(1, completion_rules(project).initial_overlap)
    task = lifecycle.reopen(conn, task, overlap, result=None, confidence=None, review_status=None)
    data = {
        "worker_id": measured.worker_id,
        "reason": measured.reason,
        "answer_before": before.get("answer"),
        "confidence_before": before.get("confidence"),
        "overlap": overlap,
    }
    add_event(conn, task, REOPENED, data, worker_id=measured.worker_id)
    return True


# --- figures -----------------------------------------------------------------------------------------


def with_figures(conn: Connection, project: Mapping[str, Any], figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each worker's figures with its auto-labeling ones (zeros and nulls for people)."""
    policy = policy_of(project)
    standings = {s["worker_id"]: s for s in repo.standings_of_project(conn, project["organization_id"], project["id"])}
    models = set(model_workers(conn, project["organization_id"]))
    ids = [f["worker_id"] for f in figures if f["worker_id"] in models]
    measured = measure(conn, project, ids) if ids else {}
    return [{**f, **_figures(standings.get(f["worker_id"]), measured.get(f["worker_id"]), policy)} for f in figures]


def _figures(
    standing: Mapping[str, Any] | None, measured: Measured | None, policy: AutoLabelPolicy | None
) -> dict[str, Any]:
    standing = standing or {}
    audits, agreed = int(standing.get("audits") or 0), int(standing.get("audits_agreed") or 0)
    paused = measured is not None and measured.paused
    return {
        "auto_labeled": int(standing.get("auto_labeled") or 0),
        "auto_labels_reopened": int(standing.get("auto_labels_reopened") or 0),
        "audits": audits,
        "audits_agreed": agreed,
        "audit_agreement": round(agreed / audits, 6) if audits else None,
        "suspended": (measured.reason or "paused") if paused and measured is not None else None,
        "verified_tasks": measured.verified if measured else 0,
        "verified_accuracy": round(measured.accuracy, 6) if measured and measured.accuracy is not None else None,
        "verified_interval": [round(v, 6) for v in measured.interval] if measured and measured.verified else None,
        "auto_label_eligible": bool(measured and measured.eligible(policy)),
        "auto_label_blocked_by": measured.blocked_by(policy) if measured else None,
    }

"""Retraining the built-in text model as trusted results accumulate (docs/models.md, "Retraining").

With the project's quality policy ``retrain: {"question": ..., "every": 200}`` a ``model.train`` job
is queued once the question's training labels (the rule of
:mod:`~truthset.services.model_training`: gold answers, reviewed results, and completed results at
the question's target confidence) have grown by ``every`` since the last trained version, or, with
no version yet, once there are :data:`MIN_LABELS` of them. Never a second one while one is queued
or running.

Two places ask:

- :func:`note_completed`, in the transaction of each completing submit. It must stay cheap: it
  counts, in process memory, the completions that gave a training label, and only when that count
  says a retraining may be due does it count the labels in the database (one aggregate query) and
  compare with the last version. The count is a hint, as refit's is: another process keeps its
  own, a restart starts again (with an exact check at its first completion), so losing it costs a
  delay, never a wrong job.
- :func:`after_refit`, at the end of each ``quality.refit`` job (off the submit path): the exact
  check, which also catches labels that came from reviews and gold rather than completions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, func, select

from truthset.domain import JobStatus, ReviewStatus, TaskStatus
from truthset.services import jobs
from truthset.services.completion import CompletionRules, completion_rules
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

__all__ = ["KIND", "MIN_LABELS", "after_refit", "check", "label_counts", "note_completed"]

#: The job kind queued (the built-in model's training, :mod:`truthset.services.model_training`).
KIND = "model.train"
#: With no version yet, the labels wanted before a first training: two classes of the text model's
#: ``MIN_PER_CLASS`` (10; not imported: the submit path that calls this module must not load scikit-learn).
MIN_LABELS = 20
#: The payload's mark of a training the policy queued (it has no member who asked).
TRIGGER = "retrain"
_REVIEWED = (str(ReviewStatus.ACCEPTED), str(ReviewStatus.FIXED))
_WAITING_JOB = (str(JobStatus.QUEUED), str(JobStatus.RUNNING))

# (project id, question) -> training labels still wanted before a check is worth its query. A hint
# in process memory (see the module's docstring).
_LEFT: dict[tuple[str, str], int] = {}


def note_completed(conn: Connection, task: dict[str, Any], rules: CompletionRules) -> dict[str, Any] | None:
    """After a task completed (in its transaction): count its training label, and queue a
    ``model.train`` job when the labels grew by ``every``. Returns the job queued, if any.

    Off (no ``retrain`` policy), or a result that gives no label (below target, no answer): one
    attribute read. Otherwise a counter; the database is read once per ``every`` labels at most.
    """
    policy = rules.policy.retrain
    if policy is None or policy.question is None or not _gives_label(task.get("result"), policy.question, rules):
        return None
    key = (task["project_id"], policy.question)
    left = _LEFT.get(key)
    if left is not None and left > 1:
        _LEFT[key] = left - 1
        return None
    return check(conn, task["organization_id"], task["project_id"], rules)


def after_refit(db: Database, organization_id: str, project_id: str) -> dict[str, Any] | None:
    """The exact check after a refit (its own short transaction); returns the job queued, if any."""
    with db.write() as conn:
        project = repo.get(conn, t.projects, organization_id, project_id)
        if project is None or project["archived_at"] is not None:
            return None
        rules = completion_rules(project)
        if rules.policy.retrain is None:
            return None
        return check(conn, organization_id, project_id, rules)


def check(conn: Connection, organization_id: str, project_id: str, rules: CompletionRules) -> dict[str, Any] | None:
    """Count the question's labels, compare with the last version, and queue a job when due."""
    policy = rules.policy.retrain
    if policy is None or policy.question is None or policy.question not in rules.questions:
        return None
    key = (project_id, policy.question)
    counts = label_counts(conn, organization_id, project_id, policy.question, rules)
    wanted = MIN_LABELS if counts["trained"] is None else counts["trained"] + policy.every
    if counts["labels"] < wanted:
        _LEFT[key] = wanted - counts["labels"]
        return None
    _LEFT[key] = policy.every  # queued now, or a training is on its way: look again after `every` more
    if _training_waits(conn, organization_id, project_id, policy.question):
        return None
    payload = {"project_id": project_id, "question": policy.question, "trigger": TRIGGER}
    dedupe = f"{KIND}:{project_id}:{policy.question}"  # the key a manager's request uses: one waits
    if len(_LEFT) >= 100_000:
        _LEFT.clear()
    return jobs.enqueue(conn, organization_id, KIND, payload, dedupe_key=dedupe)


def label_counts(
    conn: Connection, organization_id: str, project_id: str, question: str, rules: CompletionRules
) -> dict[str, int | None]:
    """``labels``: the question's training labels now; ``trained``: those the last version learned
    from (None: no version yet). One aggregate query over the project's tasks, no task data read."""
    tk = t.tasks.c
    target = rules.questions[question].target if question in rules.questions else None
    answered = tk.result[("answer", question)].as_string().is_not(None)
    confident = tk.review_status.in_(_REVIEWED)
    if target is not None:
        confident = confident | (tk.result[("confidence", question)].as_float() >= target)
    gold = (tk.status == str(TaskStatus.GOLD)) & tk.gold[question].as_string().is_not(None)
    completed = (tk.status == str(TaskStatus.COMPLETED)) & answered
    # an auto-label nobody answered or reviewed is no training label (model_training._label)
    people = tk.response_count > 0
    if target is not None:
        completed = completed & (tk.review_status.in_(_REVIEWED) | (confident & people))
    else:
        completed = completed & (tk.review_status.in_(_REVIEWED) | people)
    counted = func.coalesce(func.sum(case((gold | completed, 1), else_=0)), 0)
    query = select(counted).where(
        tk.organization_id == organization_id,
        tk.project_id == project_id,
        tk.status.in_([str(TaskStatus.GOLD), str(TaskStatus.COMPLETED)]),
    )
    labels = int(conn.execute(query).scalar_one())
    return {"labels": labels, "trained": _trained_labels(conn, organization_id, project_id, question)}


def _trained_labels(conn: Connection, organization_id: str, project_id: str, question: str) -> int | None:
    """The training labels of the newest version of the question's model (None: no version)."""
    m = t.project_models.c
    query = (
        select(m.metrics)
        .where(m.organization_id == organization_id, m.project_id == project_id, m.question == question)
        .order_by(m.created_at.desc(), m.id.desc())
        .limit(1)
    )
    metrics = conn.execute(query).scalar()
    if metrics is None:
        return None
    sources = metrics.get("labels") or {}
    return sum(int(sources.get(name) or 0) for name in ("gold", "reviewed", "confident"))


def _training_waits(conn: Connection, organization_id: str, project_id: str, question: str) -> bool:
    """Whether a ``model.train`` job of this question is queued or running (a manager's or ours)."""
    j = t.jobs.c
    query = select(j.payload).where(j.organization_id == organization_id, j.kind == KIND, j.status.in_(_WAITING_JOB))
    return any(
        payload.get("project_id") == project_id and payload.get("question") == question
        for payload in conn.execute(query).scalars()
    )


def _gives_label(result: dict[str, Any] | None, question: str, rules: CompletionRules) -> bool:
    """Whether a just-completed result is a training label of ``question`` (a review comes later)."""
    if not result or (result.get("answer") or {}).get(question) is None or result.get("auto_label"):
        return False  # an auto-label is no training label (model_training._label)
    rule = rules.questions.get(question)
    if rule is None:
        return False
    confidence = (result.get("confidence") or {}).get(question)
    return rule.target is None or (confidence is not None and confidence >= rule.target)

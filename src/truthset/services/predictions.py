"""Predictions: model workers' answers, uploaded per (task, question), stored as their responses.

Each model version is a worker of kind ``model`` in the organization, named ``name@version``,
created on first use. Its predictions on a task are one response of that worker (answers checked
against the spec like a person's, per question), with the model's ``scores`` per question; a
response with ``scores`` is a prediction. Predictions never count as judgments: a task's
``response_count`` (and so its overlap, leases and completion) counts people only.

Idempotency (docs/models.md): a prediction is keyed by (model worker, task, question). Uploading
the same prediction again (same answer, same score) changes nothing and counts as ``unchanged``;
a different answer or score for a key already stored, or a new question on a task the model
version already predicted, is refused by index: responses are append-only, so a corrected model is
a new version. Nothing is ever replaced silently.

In the quality loop (``results.counted_answer``): a model's answer to a categorical question enters a
task's posterior through the fitted worker models, with the confusion matrix its answers earned
(against gold, reviews and other workers); before a fit knows the model, and for other question
types, it counts for nothing. Pre-fill (:func:`best_predictions`): the lease of a project with
``prefill_predictions`` on carries, per question, the prediction of the most reliable model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from truthset import questions
from truthset.domain import Principal, Role, TaskStatus, WorkerKind
from truthset.errors import InvalidInput
from truthset.quality import WorkerModel
from truthset.questions import AnswerError, CompiledSpec
from truthset.schemas import PredictionIn, PredictionUpload
from truthset.services import active_learning, auto_label, gold, refit, results, webhooks
from truthset.services.completion import completion_rules
from truthset.services.policy import Action, require
from truthset.services.projects import compiled_spec, load_project, load_task, require_active
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

MAX_REPORTED_ERRORS = 100
#: Tasks written per transaction: short enough for the annotation loop to take turns.
WRITE_CHUNK = 500
#: Statuses a task takes predictions in (a canceled task takes nothing).
_OPEN = frozenset({TaskStatus.STAGED, TaskStatus.PENDING, TaskStatus.COMPLETED, TaskStatus.GOLD})


def model_name(model: str, version: str) -> str:
    return f"{model}@{version}"


def is_prediction(response: Mapping[str, Any]) -> bool:
    """Whether a response row is a model's prediction (it carries the model's scores)."""
    return response.get("scores") is not None


# --- the upload ------------------------------------------------------------------------------------


@dataclass
class _Report:
    model: str
    received: int
    worker_id: str | None = None
    stored: int = 0
    responses_created: int = 0
    unchanged: int = 0
    invalid: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, index: int, field_name: str, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"index": index, "field": field_name, "message": message})

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class _TaskPredictions:
    """The checked predictions of one task: question -> (answer, score, index in the upload)."""

    task: dict[str, Any]
    by_question: dict[str, tuple[Any, float, int]] = field(default_factory=dict)


def upload_predictions(db: Database, principal: Principal, project_id: str, body: PredictionUpload) -> dict[str, Any]:
    """Store a batch of predictions of one model version (managers and above); returns a report.

    Everything is checked first in a read (tasks found in the project, questions, answers against
    the spec); then the tasks are written in short transactions. ``on_error="reject"`` stores
    nothing when any prediction is refused (422 naming them by index).
    """
    report = _Report(model_name(body.model, body.version), len(body.predictions))
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        require_active(project)
        spec = compiled_spec(project)
        tasks = _tasks_of(conn, principal, project_id, body.predictions)
        worker = _model_worker(conn, principal.organization_id, report.model)
        checked = _check(spec, tasks, body.predictions, report)
        if worker is not None:
            _compare_stored(conn, spec, worker["id"], checked, report)
    if report.invalid and body.on_error == "reject":
        raise _refusal(report)
    if checked:
        for start in range(0, len(checked), WRITE_CHUNK):
            chunk = checked[start : start + WRITE_CHUNK]
            with db.write() as conn:
                _write(conn, principal, project_id, report, chunk)
    if report.worker_id is None and worker is not None:
        report.worker_id = worker["id"]
    return report.as_dict()


def _refusal(report: _Report) -> InvalidInput:
    first = report.errors[0]
    message = (
        f"{report.invalid} invalid prediction{'s' if report.invalid != 1 else ''} "
        f"(predictions[{first['index']}].{first['field']}: {first['message']}); nothing was stored"
    )
    errors = [{**e, "field": f"predictions[{e['index']}].{e['field']}"} for e in report.errors]
    details = {"field": "predictions", "errors": errors, "prediction_report": report.as_dict()}
    return InvalidInput(message, details=details)


def _tasks_of(
    conn: Connection, principal: Principal, project_id: str, items: Sequence[PredictionIn]
) -> dict[str, dict[str, Any]]:
    """The project's tasks the upload names, keyed ``id:<task id>`` and ``uid:<unique_id>``."""
    org = principal.organization_id
    by_uid = repo.existing_unique_ids(conn, org, {i.unique_id for i in items if i.unique_id is not None})
    ids = sorted({i.task_id for i in items if i.task_id is not None} | set(by_uid.values()))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        query = repo.scoped(t.tasks, org).where(t.tasks.c.id.in_(ids[start : start + 500]))
        for row in conn.execute(query.where(t.tasks.c.project_id == project_id)).mappings():
            found[f"id:{row['id']}"] = dict(row)
    for unique_id, task_id in by_uid.items():
        if f"id:{task_id}" in found:
            found[f"uid:{unique_id}"] = found[f"id:{task_id}"]
    return found


def _check(
    spec: CompiledSpec, tasks: Mapping[str, dict[str, Any]], items: Sequence[PredictionIn], report: _Report
) -> list[_TaskPredictions]:
    """The valid predictions grouped by task; every refused one is in the report."""
    by_name = {q.name: q for q in spec.questions}
    grouped: dict[str, _TaskPredictions] = {}
    for index, item in enumerate(items):
        key = f"id:{item.task_id}" if item.task_id is not None else f"uid:{item.unique_id}"
        task = tasks.get(key)
        if task is None:
            where = "task_id" if item.task_id is not None else "unique_id"
            report.error(index, where, f"no task {key[key.index(':') + 1 :]!r} in this project")
            continue
        if task["status"] not in _OPEN:
            report.error(index, "task_id", f"the task is {task['status']}: it takes no predictions")
            continue
        question = by_name.get(item.question)
        if question is None:
            report.error(index, "question", f"the spec has no question {item.question!r}")
            continue
        try:
            answer = spec.validate_answer({item.question: item.answer}, task["data"], only_given=True)
            answer = spec.bind_answer(answer, task["data"], None)
        except AnswerError as exc:
            report.error(index, "answer", str(exc))
            continue
        group = grouped.setdefault(task["id"], _TaskPredictions(task))
        if item.question in group.by_question:
            report.error(index, "question", f"{item.question} of this task is predicted twice in the upload")
            continue
        group.by_question[item.question] = (answer[item.question], item.score, index)
    return list(grouped.values())


def _compare_stored(
    conn: Connection, spec: CompiledSpec, worker_id: str, checked: list[_TaskPredictions], report: _Report
) -> None:
    """Drop what the model version already predicted: unchanged when equal, refused when not."""
    stored = _stored_predictions(conn, worker_id, [g.task["id"] for g in checked])
    for group in list(checked):
        prior = stored.get(group.task["id"])
        if prior is None:
            continue
        checked.remove(group)  # a response exists: nothing of this task is written
        before = spec.comparable(prior["answer"])
        for name, (answer, score, index) in group.by_question.items():
            if name not in before:
                report.error(
                    index,
                    "question",
                    f"{report.model} already predicted this task without {name}: responses are append-only, "
                    "so upload every question of a task at once, or upload as a new version",
                )
            elif before[name] != spec.comparable({name: answer})[name] or not _same_score(prior, name, score):
                report.error(
                    index,
                    "answer",
                    f"{report.model} already predicted {name} of this task differently: a prediction is never "
                    "replaced; upload the new one as a new version",
                )
            else:
                report.unchanged += 1


def _same_score(prior: Mapping[str, Any], question: str, score: float) -> bool:
    stored = (prior["scores"] or {}).get(question)
    return stored is not None and abs(float(stored) - score) < 1e-9


def _stored_predictions(conn: Connection, worker_id: str, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    r = t.responses
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(task_ids), 500):
        query = select(r).where(r.c.worker_id == worker_id, r.c.task_id.in_(task_ids[start : start + 500]))
        found.update({row["task_id"]: dict(row) for row in conn.execute(query).mappings()})
    return found


def _write(
    conn: Connection, principal: Principal, project_id: str, report: _Report, chunk: list[_TaskPredictions]
) -> None:
    project = load_project(conn, principal, project_id, hold_spec=True)
    require_active(project)  # checked in this transaction: an upload racing an archive stores nothing more
    spec = compiled_spec(project)
    worker = _ensure_model_worker(conn, principal.organization_id, report.model)
    report.worker_id = worker["id"]
    # a response the model version got since the read (a concurrent upload of the same tasks) wins
    raced = _stored_predictions(conn, worker["id"], [g.task["id"] for g in chunk])
    now = utcnow()
    for group in chunk:
        if group.task["id"] in raced:
            for _answer, _score, index in group.by_question.values():
                report.error(index, "task_id", "a concurrent upload of this model version predicted this task")
            continue
        response = repo.add(
            conn,
            t.responses,
            {
                "id": new_id(),
                "organization_id": principal.organization_id,
                "project_id": project_id,
                "task_id": group.task["id"],
                "worker_id": worker["id"],
                "assignment_id": None,
                "answer": {name: value[0] for name, value in group.by_question.items()},
                "idempotency_key": None,
                "duration_ms": None,
                "created_at": now,
                "scores": {name: value[1] for name, value in group.by_question.items()},
                "prefill": None,
            },
        )
        report.responses_created += 1
        report.stored += len(group.by_question)
        webhooks.emit(
            conn,
            principal.organization_id,
            project_id,
            "response.created",
            {"response": webhooks.response_data(response)},
        )
        refit.note_response(conn, project, spec)  # a model's answers inform the worker models too
        task = repo.get(conn, t.tasks, principal.organization_id, group.task["id"])
        if task is not None and task["status"] == str(TaskStatus.GOLD):
            # scored on gold like a person: its gold accuracy (and pause) are in the worker figures
            gold.score(conn, _as_principal(principal, worker["id"]), project, task, response, now)
    auto_label.after_predictions(conn, project, worker["id"], [g.task["id"] for g in chunk])  # policy on only
    active_learning.note_change(conn, project)  # an uncertainty-ordered queue is re-ranked (a job)


def _as_principal(principal: Principal, worker_id: str) -> Principal:
    """The model worker as the services that take a principal see it (its organization and worker)."""
    return Principal(principal.organization_id, principal.member_id, Role.ANNOTATOR, worker_id)


def _model_worker(conn: Connection, organization_id: str, name: str) -> dict[str, Any] | None:
    w = t.workers
    query = repo.scoped(w, organization_id).where(w.c.kind == str(WorkerKind.MODEL), w.c.name == name)
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def predicted_tasks(conn: Connection, organization_id: str, model: str, task_ids: Sequence[str]) -> set[str]:
    """Those of ``task_ids`` the model version ``model`` (``name@version``) has predicted."""
    worker = _model_worker(conn, organization_id, model)
    if worker is None:
        return set()
    r, ids = t.responses, list(task_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):  # ids only: a run pages through thousands of tasks
        query = repo.scoped(r, organization_id, r.c.task_id).where(
            r.c.worker_id == worker["id"], r.c.task_id.in_(ids[start : start + 500])
        )
        found.update(conn.execute(query).scalars())
    return found


def _ensure_model_worker(conn: Connection, organization_id: str, name: str) -> dict[str, Any]:
    """The organization's worker for this model version, created on first use.

    Two uploads racing to create it: the unique index ``uq_workers_model_name`` lets one insert
    win; the other (inside a savepoint) reads the winner's row.
    """
    found = _model_worker(conn, organization_id, name)
    if found is not None:
        return found
    row = {
        "id": new_id(),
        "organization_id": organization_id,
        "kind": str(WorkerKind.MODEL),
        "name": name,
        "member_id": None,
        "created_at": utcnow(),
    }
    try:
        with conn.begin_nested():
            return repo.add(conn, t.workers, row)
    except IntegrityError:
        found = _model_worker(conn, organization_id, name)
        if found is None:
            raise
        return found


# --- in the quality loop ---------------------------------------------------------------------------


def prefill_enabled(project: Mapping[str, Any]) -> bool:
    return bool(completion_rules(project).policy.prefill_predictions)


def _prefillable(spec: CompiledSpec) -> set[str]:
    """Questions a prediction can be pre-filled on: not those whose answer depends on how the
    assignment shows the task (a ranking's per-worker order of candidates)."""
    return {q.name for q in spec.questions if not hasattr(questions.get(q.type), "bind")}


def best_predictions(
    conn: Connection,
    project: Mapping[str, Any],
    spec: CompiledSpec,
    task_id: str,
    models: Mapping[str, WorkerModel],
) -> dict[str, dict[str, Any]]:
    """Per question, the prediction a lease pre-fills: the most reliable model's, then the higher score.

    Served for gold tasks exactly as for others: a model's prediction is not the gold answer, and a
    gold task without the pre-fill real tasks have would stand out. Models paused by gold are left out.
    """
    rows = [r for r in repo.responses_of_task(conn, project["organization_id"], task_id) if is_prediction(r)]
    if not rows:
        return {}
    names = _names(conn, project["organization_id"], {r["worker_id"] for r in rows})
    paused = gold.paused_workers(conn, project, names)
    allowed_questions = _prefillable(spec)
    best: dict[str, tuple[tuple[float, float, str], dict[str, Any]]] = {}
    for row in rows:
        if row["worker_id"] in paused:
            continue
        for name, answer in (row["answer"] or {}).items():
            if name not in allowed_questions:
                continue
            score = (row["scores"] or {}).get(name)
            earned = results.reliability(models.get(name), row["worker_id"])
            rank = (-1.0 if earned is None else earned, -1.0 if score is None else float(score), row["id"])
            if name not in best or rank > best[name][0]:
                shown = {"response_id": row["id"], "worker_id": row["worker_id"], "answer": answer, "score": score}
                best[name] = (rank, {**shown, "model": names.get(row["worker_id"], "")})
    return {name: value for name, (_rank, value) in best.items()}


def _names(conn: Connection, organization_id: str, worker_ids: Iterable[str]) -> dict[str, str]:
    w = t.workers
    query = repo.scoped(w, organization_id, w.c.id, w.c.name).where(w.c.id.in_(sorted(worker_ids)))
    return {worker_id: name for worker_id, name in conn.execute(query)}


def record_prefill(
    conn: Connection,
    organization_id: str,
    task_id: str,
    spec: CompiledSpec,
    answer: Mapping[str, Any],
    shown: Mapping[str, str] | None,
) -> dict[str, Any] | None:
    """Per pre-filled question: the prediction shown and whether the submitted answer kept it.

    The client says which prediction it showed (the lease's ``predictions``); the server decides
    whether it was kept, by comparing the answer with the stored prediction.
    """
    if not shown:
        return None
    ids = sorted(set(shown.values()))
    r = t.responses
    query = repo.scoped(r, organization_id, r.c.id, r.c.task_id, r.c.worker_id, r.c.answer, r.c.scores)
    found = {row.id: row for row in conn.execute(query.where(r.c.id.in_(ids)))}
    mine = spec.comparable(answer)
    out: dict[str, Any] = {}
    for question, response_id in shown.items():
        row = found.get(response_id)
        if row is None or row.task_id != task_id or row.scores is None or question not in (row.answer or {}):
            raise InvalidInput(
                f"prefill.{question}: {response_id!r} is not a prediction of this task for {question}",
                details={"field": f"prefill.{question}"},
            )
        kept = mine.get(question) == spec.comparable(row.answer).get(question)
        out[question] = {"response_id": response_id, "worker_id": row.worker_id, "accepted": bool(kept)}
    return out


# --- figures --------------------------------------------------------------------------------------


def prefill_counts(
    conn: Connection, organization_id: str, project_id: str, batch_id: str | None = None
) -> dict[str, dict[str, int]]:
    """Per model worker: people's answers pre-filled with its predictions, and how many kept them."""
    r, tk = t.responses, t.tasks
    query = (
        repo.scoped(r, organization_id, r.c.prefill)
        .join(tk, tk.c.id == r.c.task_id)
        .where(r.c.project_id == project_id, r.c.prefill.is_not(None))
    )
    if batch_id is not None:
        query = query.where(tk.c.batch_id == batch_id)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"prefill_shown": 0, "prefill_accepted": 0})
    for (prefill,) in conn.execute(query):
        for entry in (prefill or {}).values():
            figures = counts[entry["worker_id"]]
            figures["prefill_shown"] += 1
            figures["prefill_accepted"] += int(bool(entry.get("accepted")))
    return dict(counts)


def with_prefill(figures: list[dict[str, Any]], counts: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """Worker figures with each model's pre-fill counts and acceptance rate (zeros and null otherwise)."""
    out = []
    for f in figures:
        c = counts.get(f["worker_id"], {"prefill_shown": 0, "prefill_accepted": 0})
        rate = round(c["prefill_accepted"] / c["prefill_shown"], 6) if c["prefill_shown"] else None
        out.append({**f, **c, "acceptance_rate": rate})
    return out


def task_predictions(conn: Connection, organization_id: str, task_id: str) -> list[dict[str, Any]]:
    """A task's predictions for its page: model, answer and score per question, oldest first."""
    rows = [r for r in repo.responses_of_task(conn, organization_id, task_id) if is_prediction(r)]
    names = _names(conn, organization_id, {r["worker_id"] for r in rows}) if rows else {}
    return [
        {
            "response_id": r["id"],
            "worker_id": r["worker_id"],
            "model": names.get(r["worker_id"], ""),
            "answer": r["answer"],
            "scores": r["scores"],
            "created_at": r["created_at"],
        }
        for r in rows
    ]


def list_task_predictions(db: Database, principal: Principal, task_id: str) -> list[dict[str, Any]]:
    """A task's predictions (readers and above: an annotator sees no answers but their own)."""
    with db.read() as conn:
        load_task(conn, principal, task_id)
        require(principal, Action.READ_TASKS)
        return task_predictions(conn, principal.organization_id, task_id)

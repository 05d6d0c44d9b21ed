"""Fitting a project's worker models, and re-scoring its completed tasks with them.

For each categorical question (``label`` today) the default estimator, :class:`DawidSkene`, is fitted
over every response of the project; the fitted confusion matrices are stored as a new version in
``quality_models``, and the next submit scores tasks with it (:mod:`truthset.services.results`).
Completed tasks are then re-scored with the new version: a task whose answer changes gets the new
result and a ``refit_changed`` event naming the old and new answer, so a result is never rewritten
silently. The fit reads in one snapshot and writes in short transactions, so it never holds the
writer while it computes; it runs as a background job ("quality.refit") or on demand.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete

from truthset.domain import Principal, TaskStatus
from truthset.errors import NotFound
from truthset.quality import DawidSkene, WorkerModel
from truthset.questions import CompiledSpec
from truthset.questions.label import TIE_MARGIN
from truthset.services import jobs, review
from truthset.services.completion import completion_rules
from truthset.services.events import add_event
from truthset.services.pacing import Pacer
from truthset.services.policy import Action, require
from truthset.services.projects import compiled_spec, load_project
from truthset.services.results import build_result, current_models
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

METHOD = "dawid_skene"
#: Fewer answers than this say too little about any worker: the prior model is kept until then.
MIN_ANSWERS_TO_FIT = 20
#: Answered gold tasks a question needs before its confidence is calibrated on them.
MIN_GOLD_TO_CALIBRATE = 30
#: Versions kept per question (older ones are deleted after a fit).
KEEP_VERSIONS = 5
#: Completed tasks re-scored per write transaction.
RESCORE_CHUNK = 200


#: The job kind that runs :func:`refit_project` (jobs/handlers.py).
JOB_KIND = "quality.refit"
#: A refit is due when the responses since the last one reach this share of those seen before.
REFIT_GROWTH = 0.2

# project id -> (responses seen by this process, responses since it last asked for a refit). A
# hint: another process keeps its own, a restart starts again, and a waiting refit absorbs
# repeated requests (its dedupe key), so losing or doubling it costs a refit, never a result.
_SEEN: dict[str, tuple[int, int]] = {}


def refit(db: Database, principal: Principal, project_id: str) -> dict[str, Any]:
    """Fit and store new worker models for a project now, then re-score its completed tasks."""
    require(principal, Action.MANAGE_PROJECTS)
    return refit_project(db, principal.organization_id, project_id)


def request_refit(db: Database, principal: Principal, project_id: str) -> dict[str, Any]:
    """Ask for a refit as a background job (the one waiting is returned if there is one)."""
    with db.write() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_PROJECTS)
        job = _enqueue(conn, project, created_by=principal.member_id)
    return jobs.public(job)


def note_response(conn: Connection, project: dict[str, Any], spec: CompiledSpec) -> None:
    """After a response (in its transaction): ask for a refit once enough new answers have come in.

    The first after ``MIN_ANSWERS_TO_FIT`` responses, then whenever the responses since the last
    request reach ``REFIT_GROWTH`` of those before it: refits grow rarer as a project grows, about
    log(n) of them in all, and worker models never lag far behind the answers.
    """
    if not spec.categorical():
        return
    seen, since = _SEEN.get(project["id"], (0, 0))
    seen, since = seen + 1, since + 1
    if since >= max(MIN_ANSWERS_TO_FIT, REFIT_GROWTH * (seen - since)):
        _enqueue(conn, project)
        since = 0
    if len(_SEEN) >= 100_000:
        _SEEN.clear()
    _SEEN[project["id"]] = (seen, since)


def _enqueue(conn: Connection, project: dict[str, Any], created_by: str | None = None) -> dict[str, Any]:
    return jobs.enqueue(
        conn,
        project["organization_id"],
        JOB_KIND,
        {"project_id": project["id"]},
        dedupe_key=f"refit:{project['id']}",
        created_by=created_by,
    )


def refit_project(db: Database, organization_id: str, project_id: str) -> dict[str, Any]:
    """The work of a refit (also the "quality.refit" job's): returns what was fitted and changed."""
    with db.snapshot() as conn:
        project = repo.get(conn, t.projects, organization_id, project_id)
        if project is None:
            raise NotFound(f"project {project_id} not found")
        spec = compiled_spec(project)
        answers, counts = _categorical_answers(conn, organization_id, project_id, spec)
        gold = _gold_answers(conn, organization_id, project_id)
    fitted: dict[str, dict[str, Any]] = {}
    models: dict[str, WorkerModel] = {}
    rules = completion_rules(project)
    for question, classes in spec.categorical().items():
        rows = answers[question]
        if len(rows[0]) < MIN_ANSWERS_TO_FIT:
            continue
        started = time.perf_counter()
        # under dynamic overlap whether a task got another answer depended on its answers: the
        # estimator must then use the full likelihood only (see DawidSkene's `adaptive`)
        rule = rules.questions[question]
        estimator = DawidSkene(adaptive=rule.max_overlap > rule.min_overlap).fit(rows)
        model = WorkerModel.from_fitted(estimator, classes, METHOD)
        model, gold_tasks = _calibrated_on_gold(model, rows, gold, question)
        seconds = time.perf_counter() - started
        stored = _store(db, project, question, model, rows, seconds)
        fitted[question] = {**stored, "gold_tasks": gold_tasks, "temperature": round(model.temperature, 4)}
        models[question] = model
    changed = _rescore(db, project, spec, _moved_tasks(db, project, models, answers, counts)) if fitted else 0
    return {"project_id": project_id, "fitted": fitted, "changed_answers": changed}


def _categorical_answers(
    conn: Connection, organization_id: str, project_id: str, spec: CompiledSpec
) -> tuple[dict[str, tuple[list[str], list[str], list[str]]], Counter[str]]:
    """(tasks, workers, labels) per categorical question, from every response of the project (models'
    predictions too: the fit measures them); and the number of people's responses of each task."""
    questions = spec.categorical()
    out: dict[str, tuple[list[str], list[str], list[str]]] = {q: ([], [], []) for q in questions}
    counts: Counter[str] = Counter()
    r = t.responses.c
    query = repo.scoped(t.responses, organization_id, r.task_id, r.worker_id, r.answer, r.scores)
    for task_id, worker_id, answer, scores in conn.execute(query.where(r.project_id == project_id)):
        counts[task_id] += scores is None  # people's, as tasks count them: a model's prediction is no judgment
        for question, classes in questions.items():
            value = answer.get(question)
            if value in classes:
                tasks, workers, labels = out[question]
                tasks.append(task_id)
                workers.append(worker_id)
                labels.append(value)
    return out, counts


def _gold_answers(conn: Connection, organization_id: str, project_id: str) -> dict[str, dict[str, Any]]:
    """The known answers of the project's gold tasks, by task id."""
    query = repo.scoped(t.tasks, organization_id, t.tasks.c.id, t.tasks.c.gold).where(
        t.tasks.c.project_id == project_id, t.tasks.c.gold.is_not(None)
    )
    return {task_id: answer for task_id, answer in conn.execute(query) if isinstance(answer, dict)}


def _calibrated_on_gold(
    model: WorkerModel, rows: tuple[list[str], list[str], list[str]], gold: dict[str, dict[str, Any]], question: str
) -> tuple[WorkerModel, int]:
    """The model with its temperature fitted on the gold tasks' known answers, once there are enough.

    The temperature the estimator fits from answers alone cannot see errors that workers share (they
    look like agreement); gold can, so with ``MIN_GOLD_TO_CALIBRATE`` answered gold tasks or more the
    confidence is calibrated on them. The gold tasks' answers are also in the fit, which makes their
    posteriors a little optimistic: the temperature errs, if at all, on the confident side.
    """
    by_task: dict[str, tuple[list[str], list[str]]] = {}
    for task_id, worker_id, label in zip(*rows, strict=True):
        if gold.get(task_id, {}).get(question) in model.classes:
            workers, labels = by_task.setdefault(task_id, ([], []))
            workers.append(worker_id)
            labels.append(label)
    if len(by_task) < MIN_GOLD_TO_CALIBRATE:
        return model, len(by_task)
    truths = [gold[task_id][question] for task_id in by_task]
    calibrated, _ = model.calibrated_on(list(by_task.values()), truths)
    return calibrated, len(by_task)


def _store(
    db: Database, project: dict[str, Any], question: str, model: WorkerModel, rows: tuple, seconds: float
) -> dict[str, Any]:
    with db.write() as conn:
        version = repo.latest_model_versions(conn, project["organization_id"], project["id"]).get(question, 0) + 1
        repo.add(
            conn,
            t.quality_models,
            {
                "id": new_id(),
                "organization_id": project["organization_id"],
                "project_id": project["id"],
                "question": question,
                "version": version,
                "method": model.method,
                "state": model.to_bytes(),
                "n_responses": len(rows[0]),
                "n_tasks": len(set(rows[0])),
                "n_workers": len(model.workers),
                "fit_seconds": seconds,
                "created_at": utcnow(),
            },
        )
        conn.execute(
            delete(t.quality_models).where(
                t.quality_models.c.organization_id == project["organization_id"],
                t.quality_models.c.project_id == project["id"],
                t.quality_models.c.question == question,
                t.quality_models.c.version <= version - KEEP_VERSIONS,
            )
        )
    return {"version": version, "responses": len(rows[0]), "workers": len(model.workers), "seconds": round(seconds, 3)}


#: A re-scored confidence that moved less than this is left as stored (see :func:`_rescore`).
RESCORE_TOLERANCE = 5e-3


@dataclass(frozen=True)
class _Rescored:
    """A completed task whose result a refit changes: what was read, and what replaces it."""

    task: dict[str, Any]
    result: dict[str, Any]
    confidence: float | None
    moved: dict[str, dict[str, Any]]  # question -> {"from": old answer, "to": new answer}


def _rescore(db: Database, project: dict[str, Any], spec: CompiledSpec, task_ids: list[str]) -> int:
    """Re-score the tasks a refit moved (see :func:`_moved_tasks`); returns how many answers changed.

    Chunks of them are read and re-scored outside the writer, and only the results that change
    materially (an answer, a tie, a method, or a confidence by ``RESCORE_TOLERANCE`` or more) are
    written, each chunk in a short transaction the writer runs behind the annotation loop's calls
    (``hot=False``); the pacer pauses between chunks while annotators work.
    """
    rules = completion_rules(project)
    pacer = Pacer(db)
    changed = 0
    for start in range(0, len(task_ids), RESCORE_CHUNK):
        with pacer.step(time.perf_counter):
            rescored = _rescore_chunk(db, project, spec, rules, task_ids[start : start + RESCORE_CHUNK])
            if rescored:
                changed += db.submit(_write_rescored, db, rescored, hot=False).result()
    return changed


def _moved_tasks(
    db: Database,
    project: dict[str, Any],
    models: dict[str, WorkerModel],
    answers: dict[str, tuple[list[str], list[str], list[str]]],
    counts: Counter[str],
) -> list[str]:
    """The completed tasks whose stored result the new models may change, in id order.

    Every task's posterior under the new models is computed at once from the answers the fit read
    (:meth:`WorkerModel.posteriors`), and compared with the answer, method and confidence its stored
    result has for each fitted question (read with JSON paths, not whole results). A task that
    matches within ``RESCORE_TOLERANCE`` is left alone; any other (a different answer or method, a
    tie, a moved confidence, or responses the fit did not see) is re-scored one by one with
    :func:`build_result`, which decides. Re-scoring every completed task one by one made a refit's
    cost grow with the whole project however little moved: most of a replay's time went there.
    """
    stored = _stored_answers(db, project, list(models))
    if not stored:
        return []
    index = {task_id: i for i, task_id in enumerate(stored)}
    moved = np.array([counts.get(task_id, 0) != row["response_count"] for task_id, row in stored.items()])
    for question, model in models.items():
        tasks, workers, labels = answers[question]
        keep = [i for i, task_id in enumerate(tasks) if task_id in index]
        codes = [index[tasks[i]] for i in keep]
        posteriors = model.posteriors(codes, [workers[i] for i in keep], [labels[i] for i in keep], len(index))
        best = posteriors.max(axis=1)
        tied = (best[:, None] - posteriors <= TIE_MARGIN).sum(axis=1) > 1
        top = np.asarray(model.classes, dtype=object)[posteriors.argmax(axis=1)]
        for i, row in enumerate(stored.values()):
            was = row["questions"][question]
            moved[i] |= (
                tied[i]
                or was["method"] != model.method
                or was["answer"] != top[i]
                or was["confidence"] is None
                or abs(was["confidence"] - best[i]) >= RESCORE_TOLERANCE
            )
    return [task_id for task_id, flag in zip(stored, moved, strict=True) if flag]


def _stored_answers(db: Database, project: dict[str, Any], questions: list[str]) -> dict[str, dict[str, Any]]:
    """Per completed task (in id order): its response count and, per question, the stored answer,
    method and confidence, read as JSON paths so no whole result is parsed."""
    result = t.tasks.c.result
    columns = []
    for q in questions:
        columns += [
            result[("questions", q, "answer")].as_string(),
            result[("questions", q, "method")].as_string(),
            result[("questions", q, "confidence")].as_float(),
        ]
    query = (
        repo.scoped(t.tasks, project["organization_id"], t.tasks.c.id, t.tasks.c.response_count, *columns)
        .where(t.tasks.c.project_id == project["id"], t.tasks.c.status == str(TaskStatus.COMPLETED))
        .order_by(t.tasks.c.id)
    )
    stored: dict[str, dict[str, Any]] = {}
    with db.read() as conn:
        for task_id, response_count, *values in conn.execute(query):
            per_question = {
                q: dict(zip(("answer", "method", "confidence"), values[3 * i : 3 * i + 3], strict=True))
                for i, q in enumerate(questions)
            }
            stored[task_id] = {"response_count": response_count, "questions": per_question}
    return stored


# what re-scoring a task reads of it: not its data or metadata, which can be large
_RESCORED_COLUMNS = tuple(
    t.tasks.c[name] for name in ("id", "organization_id", "project_id", "status", "result", "confidence")
)


def _rescore_chunk(
    db: Database, project: dict[str, Any], spec: CompiledSpec, rules: Any, task_ids: list[str]
) -> list[_Rescored]:
    """The material changes among these tasks (those still completed), computed outside the writer."""
    with db.read() as conn:
        query = repo.scoped(t.tasks, project["organization_id"], *_RESCORED_COLUMNS).where(
            t.tasks.c.id.in_(task_ids), t.tasks.c.status == str(TaskStatus.COMPLETED)
        )
        tasks = [dict(row) for row in conn.execute(query).mappings()]
        models, versions = current_models(conn, project, spec)
        responses = _responses_of(conn, project["organization_id"], [task["id"] for task in tasks])
    rescored = (_rescore_task(task, responses.get(task["id"], []), spec, rules, models, versions) for task in tasks)
    return [change for change in rescored if change is not None]


def _write_rescored(db: Database, rescored: list[_Rescored]) -> int:
    """Store re-scored results, each only if the task is as it was read (a review may have come in since)."""
    changed = 0
    with db.write() as conn:
        for change in rescored:
            task = change.task
            current = repo.get(conn, t.tasks, task["organization_id"], task["id"], lock=True)
            if current is None or current["status"] != task["status"] or current["result"] != task["result"]:
                continue  # changed since it was read: whatever changed it scored it with the current models
            repo.change(
                conn, t.tasks, task["organization_id"], task["id"], result=change.result, confidence=change.confidence
            )
            if change.moved:
                changed += 1
                add_event(
                    conn,
                    task,
                    "refit_changed",
                    {
                        "answers": change.moved,
                        "confidence": {"from": task["confidence"], "to": change.confidence},
                        "model_versions": {
                            name: q.get("model_version") for name, q in change.result["questions"].items()
                        },
                    },
                )
    return changed


def _responses_of(conn: Connection, organization_id: str, task_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The responses of a chunk's tasks in one query, per task in order (one query per task was half a refit)."""
    query = (
        repo.scoped(
            t.responses,
            organization_id,
            t.responses.c.id,
            t.responses.c.task_id,
            t.responses.c.worker_id,
            t.responses.c.answer,
            t.responses.c.scores,  # a model's prediction counts as it has earned (results.counted_answer)
        )
        .where(t.responses.c.task_id.in_(task_ids))
        .order_by(t.responses.c.task_id, t.responses.c.id)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(query).mappings():
        found.setdefault(row["task_id"], []).append(dict(row))
    return found


def _rescore_task(
    task: dict[str, Any],
    responses: list[dict[str, Any]],
    spec: CompiledSpec,
    rules: Any,
    models: dict,
    versions: dict,
) -> _Rescored | None:
    """The task's result under the current models, or None when it is not materially different."""
    old = task["result"] or {}
    if old.get("review") or any(q.get("method") == review.FIX_METHOD for q in (old.get("questions") or {}).values()):
        return None  # a reviewer's verdict (an accept or a fix) outranks any model
    result, confidence = build_result(spec, rules, responses, models, versions)
    result["low_confidence"] = old.get("low_confidence", False)
    if _materially_same(old, result, task["confidence"], confidence):
        return None
    moved = {
        name: {"from": (old.get("answer") or {}).get(name), "to": value}
        for name, value in result["answer"].items()
        if (old.get("answer") or {}).get(name) != value
    }
    return _Rescored(task, result, confidence, moved)


def _materially_same(old: dict[str, Any], new: dict[str, Any], old_confidence: Any, new_confidence: Any) -> bool:
    """Whether a re-scored result says what the stored one says: the same answers, ties and methods,
    and confidences within ``RESCORE_TOLERANCE`` (the model version alone is no reason to rewrite)."""
    if not _close(old_confidence, new_confidence):
        return False
    old_questions = old.get("questions") or {}
    for name, question in new["questions"].items():
        before = old_questions.get(name)
        if before is None or not _close(before.get("confidence"), question["confidence"]):
            return False
        if any(before.get(key) != question[key] for key in ("answer", "tie", "method", "reached_target")):
            return False
    return True


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) < RESCORE_TOLERANCE

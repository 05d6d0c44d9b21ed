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
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, Text, bindparam, cast, delete, or_, select, update

from truthset.domain import Principal, TaskStatus
from truthset.errors import NotFound
from truthset.quality import DawidSkene, NumericWorkerModel, WorkerModel
from truthset.questions import NOT_SELECTED, SELECTED, CompiledSpec, option_key
from truthset.questions.label import TIE_MARGIN
from truthset.questions.ranking import FIRST, PAIRS_METHOD, SECOND
from truthset.services import active_learning, auto_label, jobs, retraining, review
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
    if not spec.has_worker_models():
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
        answers, counts, predicted = _fitted_answers(conn, organization_id, project_id, spec)
        gold = _gold_answers(conn, organization_id, project_id)
    fitted: dict[str, dict[str, Any]] = {}
    models: dict[str, WorkerModel | NumericWorkerModel] = {}
    rules = completion_rules(project)
    for key, (question, classes, truths, method) in _fitted_keys(spec, gold).items():
        rows = answers[key]
        if len(rows[0]) < MIN_ANSWERS_TO_FIT:
            continue
        started = time.perf_counter()
        # under dynamic overlap whether a task got another answer depended on its answers: the
        # estimator must then use the full likelihood only (see DawidSkene's `adaptive`)
        rule = rules.questions[question]
        estimator = DawidSkene(adaptive=rule.max_overlap > rule.min_overlap).fit(rows)
        model = WorkerModel.from_fitted(estimator, classes, method)
        model, gold_tasks = _calibrated_on_gold(model, rows, truths)
        seconds = time.perf_counter() - started
        stored = _store(db, project, key, model, rows, seconds)
        temperature = round(model.temperature, 4)
        fitted[key] = {**stored, "question": question, "gold_tasks": gold_tasks, "temperature": temperature}
        models[key] = model
    numeric = _fit_numeric(db, project, spec, answers, gold, models)
    fitted.update(numeric)
    changed = 0
    if fitted:
        categorical = {key: model for key, model in models.items() if key in spec.categorical()}
        moves = _moved_tasks(db, project, categorical, answers, (counts, predicted))
        versions = {key: figures["version"] for key, figures in fitted.items() if key in categorical}
        stale = _patch_confidences(db, project, rules, categorical, versions, moves.drifted)
        selections = _moved_selections(db, project, spec, models, answers)
        # a number or a rating is checked task by task against the new model first (a fifth of a
        # rebuild's cost); a rubric's criteria and a ranking's pairs go the full way
        whole = {key: models[key] for key, figures in numeric.items() if figures["question"] == key}
        scored = _moved_numbers(db, project, spec, whole, answers, (counts, predicted))
        rebuilt = {f["question"] for key, f in numeric.items() if key not in whole}
        scored += _scored_with(db, project, sorted(rebuilt | {q for q in spec.compared() if q in fitted}))
        changed = _rescore(db, project, spec, sorted({*moves.rescore, *stale, *selections, *scored}))
        active_learning.note_refit(db, organization_id, project_id)  # an uncertainty-ordered queue is re-ranked
    auto_label.sweep(db, organization_id, project_id)  # results moved: models may have become eligible
    retraining.after_refit(db, organization_id, project_id)  # the policy's retrain: due now?
    return {"project_id": project_id, "fitted": fitted, "changed_answers": changed}


def _fitted_answers(
    conn: Connection, organization_id: str, project_id: str, spec: CompiledSpec
) -> tuple[dict[str, tuple[list[str], list[str], list[str]]], Counter[str], Counter[str]]:
    """(tasks, workers, labels) per categorical question, from every response of the project (models'
    predictions too: the fit measures them, but on each task only a model's newest prediction of a
    question, since versions of one model are one opinion (``results.newest_predictions``; this fit is
    what makes a new version known, and results count it from then on)); the number of people's
    responses of each task, and of models' predictions (which a result counts apart:
    ``result.predictions``). A multi-select question's answers are also rows, people's only, of a
    yes/no question per option, keyed ``option_key(question, option)`` (results do not count models'
    predictions of them, so neither does the fit); a numeric question's rows are its numbers, per
    model key (``spec.numeric``: a rubric's criteria each have their own, people's only), models'
    newest predictions of a number or a rating included as for a label; a comparing question's rows
    are the pairs people's answers decide, each pair of a task an item (``pair_item``)."""
    questions = spec.categorical()
    selectable = spec.selectable()
    numeric = spec.numeric()
    out: dict[str, tuple[list[str], list[str], list[Any]]] = {q: ([], [], []) for q in questions}
    out.update({key: ([], [], []) for keys in numeric.values() for key in keys})
    compared = spec.compared()
    out.update({question: ([], [], []) for question in compared})
    out.update({option_key(q, option): ([], [], []) for q, options in selectable.items() for option in options})
    counts: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    # (task, model, question) -> (response id, worker, label): the newest prediction wins
    newest: dict[tuple[str, str, str], tuple[str, str, Any]] = {}
    r, w = t.responses.c, t.workers.c
    query = (
        select(r.id, r.task_id, r.worker_id, w.name, r.answer, r.scores)
        .select_from(t.responses.join(t.workers, w.id == r.worker_id))
        .where(r.organization_id == organization_id, r.project_id == project_id)
    )
    # a model's predictions are fitted (and counted by results) on categorical questions and on
    # questions whose answer is one number; options and parts are people's alone
    predictable = [*questions, *(question for question, keys in numeric.items() if question in keys)]
    for response_id, task_id, worker_id, worker_name, answer, scores in conn.execute(query):
        # people's, as tasks count them: a model's prediction is no judgment
        (counts if scores is None else predicted)[task_id] += 1
        if scores is not None:
            family = worker_name.partition("@")[0]
            for question in predictable:
                key = (task_id, family, question)
                if question in answer and newest.get(key, ("",))[0] < response_id:
                    newest[key] = (response_id, worker_id, answer[question])
            continue
        for question, classes in questions.items():
            if answer.get(question) in classes:
                _add_row(out[question], task_id, worker_id, answer[question])
        for question in compared:
            if question in answer:
                for i, j, label in spec.compared_pairs(question, answer[question]):
                    _add_row(out[question], pair_item(task_id, i, j), worker_id, label)
        for question in numeric:
            if question in answer:
                for key, value in spec.numeric_values(question, answer[question]).items():
                    _add_row(out[key], task_id, worker_id, value)
        for question, options in selectable.items():
            chosen = answer.get(question)
            if isinstance(chosen, list):
                for option in options:
                    label = SELECTED if option in chosen else NOT_SELECTED
                    _add_row(out[option_key(question, option)], task_id, worker_id, label)
    for (task_id, _model, question), (_id, worker_id, value) in newest.items():
        if question in questions:
            if value in questions[question]:
                _add_row(out[question], task_id, worker_id, value)
        else:
            for key, number in spec.numeric_values(question, value).items():
                _add_row(out[key], task_id, worker_id, number)
    return out, counts, predicted


def _add_row(rows: tuple[list[str], list[str], list[Any]], task_id: str, worker_id: str, label: Any) -> None:
    tasks, workers, labels = rows
    tasks.append(task_id)
    workers.append(worker_id)
    labels.append(label)


def _gold_answers(conn: Connection, organization_id: str, project_id: str) -> dict[str, dict[str, Any]]:
    """The known answers of the project's gold tasks, by task id."""
    query = repo.scoped(t.tasks, organization_id, t.tasks.c.id, t.tasks.c.gold).where(
        t.tasks.c.project_id == project_id, t.tasks.c.gold.is_not(None)
    )
    return {task_id: answer for task_id, answer in conn.execute(query) if isinstance(answer, dict)}


def _fitted_keys(
    spec: CompiledSpec, gold: dict[str, dict[str, Any]]
) -> dict[str, tuple[str, list[str], dict[str, Any], str]]:
    """What a refit fits with Dawid-Skene: key -> (its question, its classes, the gold items' known
    answers for it, the method its results name).

    A categorical question is fitted under its name; a multi-select question as a yes/no question per
    option (``option_key``), whose gold answer is whether the gold answer selects the option; a
    comparing question (a ranking) as a two-class question over the pairs of candidates of each task
    (``pair_item``), whose gold answers are the pairs the gold answer decides.
    """
    keys: dict[str, tuple[str, list[str], dict[str, Any], str]] = {}
    for question, classes in spec.categorical().items():
        truths = {task_id: known[question] for task_id, known in gold.items() if question in known}
        keys[question] = (question, classes, truths, METHOD)
    for question, options in spec.selectable().items():
        chosen = {task_id: known[question] for task_id, known in gold.items() if isinstance(known.get(question), list)}
        for option in options:
            truths = {task_id: SELECTED if option in value else NOT_SELECTED for task_id, value in chosen.items()}
            keys[option_key(question, option)] = (question, [NOT_SELECTED, SELECTED], truths, METHOD)
    for question in spec.compared():
        truths = {
            pair_item(task_id, i, j): label
            for task_id, known in gold.items()
            if question in known
            for i, j, label in spec.compared_pairs(question, known[question])
        }
        keys[question] = (question, [FIRST, SECOND], truths, PAIRS_METHOD)
    return keys


def pair_item(task_id: str, i: int, j: int) -> str:
    """The item a compared pair of candidates of a task is in a fit of compared pairs (a ranking's)."""
    return f"{task_id}/{i}/{j}"


def _calibrated_on_gold(
    model: WorkerModel, rows: tuple[list[str], list[str], list[str]], truths: dict[str, Any]
) -> tuple[WorkerModel, int]:
    """The model with its temperature fitted on the gold tasks' known answers, once there are enough.

    The temperature the estimator fits from answers alone cannot see errors that workers share (they
    look like agreement); gold can, so with ``MIN_GOLD_TO_CALIBRATE`` answered gold tasks or more the
    confidence is calibrated on them. The gold tasks' answers are also in the fit, which makes their
    posteriors a little optimistic: the temperature errs, if at all, on the confident side.
    """
    by_task = _by_item(rows, {item: truth for item, truth in truths.items() if truth in model.classes})
    if len(by_task) < MIN_GOLD_TO_CALIBRATE:
        return model, len(by_task)
    calibrated, _ = model.calibrated_on(list(by_task.values()), [truths[task_id] for task_id in by_task])
    return calibrated, len(by_task)


def _by_item(
    rows: tuple[list[str], list[str], list[Any]], only: Mapping[str, Any] | None = None
) -> dict[str, tuple[list[str], list[Any]]]:
    """The fit's rows as item -> (workers, answers); with ``only``, just the items it holds (gold)."""
    by_item: dict[str, tuple[list[str], list[Any]]] = {}
    for item, worker_id, value in zip(*rows, strict=True):
        if only is None or item in only:
            workers, values = by_item.setdefault(item, ([], []))
            workers.append(worker_id)
            values.append(value)
    return by_item


def _fit_numeric(
    db: Database,
    project: dict[str, Any],
    spec: CompiledSpec,
    answers: dict[str, tuple[list[str], list[str], list[Any]]],
    gold: dict[str, dict[str, Any]],
    models: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Fit and store a :class:`NumericWorkerModel` for each numeric question with enough answers (and
    a task answered twice: one answer says nothing about anyone's noise); returns what was fitted,
    and adds the models to ``models``."""
    fitted: dict[str, dict[str, Any]] = {}
    for question, keys in spec.numeric().items():
        known = {
            task_id: spec.numeric_values(question, answer[question])
            for task_id, answer in gold.items()
            if question in answer
        }
        for key in keys:
            rows = answers[key]
            if len(rows[0]) < MIN_ANSWERS_TO_FIT:
                continue
            started = time.perf_counter()
            try:
                model = NumericWorkerModel.fit(*rows)
            except ValueError:
                continue  # no task answered twice yet
            truths = {task_id: values[key] for task_id, values in known.items() if key in values}
            model, gold_tasks = _numeric_calibrated_on_gold(model, rows, truths)
            stored = _store(db, project, key, model, rows, time.perf_counter() - started)
            models[key] = model
            shared_sd = round(model.shared_variance**0.5, 6)
            fitted[key] = {**stored, "question": question, "gold_tasks": gold_tasks, "shared_sd": shared_sd}
    return fitted


def _numeric_calibrated_on_gold(
    model: NumericWorkerModel, rows: tuple[list[str], list[str], list[Any]], truths: dict[str, Any]
) -> tuple[NumericWorkerModel, int]:
    """The model with its shared error and error distribution measured on the gold tasks' known
    answers, once ``MIN_GOLD_TO_CALIBRATE`` gold tasks are answered (as :func:`_calibrated_on_gold`)."""
    by_task = _by_item(rows, truths)
    if len(by_task) < MIN_GOLD_TO_CALIBRATE:
        return model, len(by_task)
    return model.calibrated_on(list(by_task.values()), [float(truths[task_id]) for task_id in by_task]), len(by_task)


def _moved_numbers(
    db: Database,
    project: dict[str, Any],
    spec: CompiledSpec,
    models: dict[str, NumericWorkerModel],
    answers: dict[str, tuple[list[str], list[str], list[Any]]],
    counts: tuple[Counter[str], Counter[str]],
) -> list[str]:
    """The completed tasks whose result of a fitted ``number`` or ``rating`` question the new model
    may change: each task's answers (the rows the fit read) are aggregated with the new model and
    compared with the stored answer, method and confidence (read as JSON paths); a task that differs,
    is tied, or has responses the fit did not see is rebuilt by :func:`_rescore`, which decides."""
    people, predicted = counts
    moved: set[str] = set()
    for question, model in models.items():
        by_task = _by_item(answers[question])
        for task_id, response_count, predictions, answer, method, confidence in _stored_numbers(db, project, question):
            if method is None:
                continue  # an optional question this task has no answer to
            mine = by_task.get(task_id)
            if mine is None or people[task_id] != response_count or predicted[task_id] != (predictions or 0):
                moved.add(task_id)
                continue
            new = spec.aggregate([{question: value} for value in mine[1]], mine[0], {question: model})[question]
            if (
                new.tie
                or new.value is None
                or answer is None
                or method != new.method
                or abs(float(new.value) - answer) > 1e-9
                or confidence is None
                or abs(new.confidence - confidence) >= RESCORE_TOLERANCE
            ):
                moved.add(task_id)
    return sorted(moved)


def _stored_numbers(db: Database, project: dict[str, Any], question: str) -> list[Any]:
    """Per completed task: id, response count, predictions counted, and the question's stored answer
    (a number), method and confidence, read as JSON paths so no whole result is parsed."""
    result = t.tasks.c.result
    columns = [
        result["predictions"].as_integer(),
        result[("questions", question, "answer")].as_float(),
        result[("questions", question, "method")].as_string(),
        result[("questions", question, "confidence")].as_float(),
    ]
    query = repo.scoped(t.tasks, project["organization_id"], t.tasks.c.id, t.tasks.c.response_count, *columns).where(
        t.tasks.c.project_id == project["id"], t.tasks.c.status == str(TaskStatus.COMPLETED)
    )
    with db.read() as conn:
        return conn.execute(query).all()


def _scored_with(db: Database, project: dict[str, Any], questions: list[str]) -> list[str]:
    """The completed tasks whose result answers any of these questions: a refit of a rubric's
    criteria or a ranking's pairs re-scores them all (:func:`_rescore` writes only the results that
    change materially)."""
    if not questions:
        return []
    result = t.tasks.c.result
    answered = [result[("questions", q, "method")].as_string().is_not(None) for q in questions]
    query = repo.scoped(t.tasks, project["organization_id"], t.tasks.c.id).where(
        t.tasks.c.project_id == project["id"], t.tasks.c.status == str(TaskStatus.COMPLETED), or_(*answered)
    )
    with db.read() as conn:
        return list(conn.execute(query).scalars())


def _store(
    db: Database,
    project: dict[str, Any],
    question: str,
    model: WorkerModel | NumericWorkerModel,
    rows: tuple,
    seconds: float,
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
        repo.forget(conn, ("latest_model_versions", project["organization_id"], project["id"]))
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


@dataclass(frozen=True)
class _Moves:
    """What a refit's new models change among a project's completed tasks (see :func:`_moved_tasks`)."""

    #: tasks whose answer, tie or method may move (or with responses the fit did not see), in id
    #: order: rebuilt from their responses by :func:`_rescore`, which records a changed answer
    rescore: list[str]
    #: tasks whose answers, ties and methods stay and only a confidence moved: task id ->
    #: (its response count, the new posterior of each fitted question), for :func:`_patch_confidences`
    drifted: dict[str, tuple[int, dict[str, np.ndarray]]]


def _moved_tasks(
    db: Database,
    project: dict[str, Any],
    models: dict[str, WorkerModel],
    answers: dict[str, tuple[list[str], list[str], list[str]]],
    counts: tuple[Counter[str], Counter[str]],
) -> _Moves:
    """The completed tasks whose stored result the new models may change.

    Every task's posterior under the new models is computed at once from the answers the fit read
    (:meth:`WorkerModel.posteriors`), and compared with the answer, method and confidence its stored
    result has for each fitted question (read with JSON paths, not whole results), column by column.
    A task that matches within ``RESCORE_TOLERANCE`` is left alone. One whose answers, methods and
    (absent) ties all match but whose confidence moved only needs its confidences patched; any other
    (a different answer or method, a tie, or responses the fit did not see) is re-scored one by one
    with :func:`build_result`, which decides. Re-scoring every completed task one by one made a
    refit's cost grow with the whole project however little moved: most of a replay's time went there.
    """
    stored = _stored_answers(db, project, list(models))
    n = len(stored.ids)
    if not n:
        return _Moves([], {})
    index = dict(zip(stored.ids, range(n), strict=True))
    people, predicted = counts
    seen = np.fromiter((people.get(task_id, 0) for task_id in stored.ids), dtype=np.int64, count=n)
    seen_predicted = np.fromiter((predicted.get(task_id, 0) for task_id in stored.ids), dtype=np.int64, count=n)
    # a prediction uploaded after the task completed is in no stored result yet: rebuild those
    rebuild = (seen != stored.response_counts) | (seen_predicted != stored.predictions)
    drift = np.zeros(n, dtype=bool)
    posteriors_of: dict[str, np.ndarray] = {}
    for question, model in models.items():
        tasks, workers, labels = answers[question]
        codes = np.fromiter((index.get(task_id, -1) for task_id in tasks), dtype=np.intp, count=len(tasks))
        keep = codes >= 0
        codes = codes[keep]
        posteriors = model.posteriors(codes, list(compress(workers, keep)), list(compress(labels, keep)), n)
        posteriors_of[question] = posteriors
        best = posteriors.max(axis=1)
        tied = (best[:, None] - posteriors <= TIE_MARGIN).sum(axis=1) > 1
        top = np.asarray(model.classes, dtype=object)[posteriors.argmax(axis=1)]
        answered = np.bincount(codes, minlength=n) > 0
        answer, method, confidence = stored.questions[question]
        # an optional question nobody answered has no result to move (it was rebuilt every refit before)
        absent = ~answered & np.equal(method, None)
        differs = ~answered | tied | (method != model.method) | (answer != top) | np.isnan(confidence)
        rebuild |= differs & ~absent
        with np.errstate(invalid="ignore"):  # NaN confidences are in `differs` already
            drift |= ~differs & ~absent & (np.abs(confidence - best) >= RESCORE_TOLERANCE)
    drifted = {
        stored.ids[i]: (int(stored.response_counts[i]), {q: posteriors[i] for q, posteriors in posteriors_of.items()})
        for i in np.flatnonzero(drift & ~rebuild)
    }
    return _Moves([stored.ids[i] for i in np.flatnonzero(rebuild)], drifted)


def _moved_selections(
    db: Database,
    project: dict[str, Any],
    spec: CompiledSpec,
    models: dict[str, WorkerModel],
    answers: dict[str, tuple[list[str], list[str], list[str]]],
) -> list[str]:
    """The completed tasks whose multi-select results the options' new yes/no models may change.

    As :func:`_moved_tasks` does for categorical questions: every task's probability that each
    option is selected is computed at once from the rows the fit read, and compared with the one its
    stored result gives (``details.selected_probability``, read as JSON paths). A task is rebuilt when
    a probability moved by ``RESCORE_TOLERANCE`` or more, or sits where a decision or a tie may turn
    (within ``TIE_MARGIN`` of an even chance), or its result was not made with fitted models yet.
    """
    moved: set[str] = set()
    fitted_method = f"per_option_{METHOD}"
    for question, options in spec.selectable().items():
        keys = {option: key for option in options if (key := option_key(question, option)) in models}
        if not keys:
            continue
        stored = _stored_selections(db, project, question, list(keys))
        if not stored:
            continue
        ids = [row[0] for row in stored]
        n, index = len(ids), {task_id: i for i, task_id in enumerate(ids)}
        answered = np.zeros(n, dtype=bool)
        rebuild = np.array([row[1] != fitted_method for row in stored], dtype=bool)
        for column, key in enumerate(keys.values(), start=2):
            model = models[key]
            tasks, workers, labels = answers[key]
            codes = np.fromiter((index.get(task_id, -1) for task_id in tasks), dtype=np.intp, count=len(tasks))
            keep = codes >= 0
            codes = codes[keep]
            posteriors = model.posteriors(codes, list(compress(workers, keep)), list(compress(labels, keep)), n)
            selected = posteriors[:, list(model.classes).index(SELECTED)]
            before = np.array([row[column] for row in stored], dtype=float)  # NaN where absent
            answered |= np.bincount(codes, minlength=n) > 0
            with np.errstate(invalid="ignore"):
                rebuild |= ~(np.abs(selected - before) < RESCORE_TOLERANCE)  # NaN: never stored
            rebuild |= np.abs(selected - 0.5) <= TIE_MARGIN / 2 + RESCORE_TOLERANCE
        moved.update(ids[i] for i in np.flatnonzero(rebuild & answered))
    return sorted(moved)


def _stored_selections(db: Database, project: dict[str, Any], question: str, options: list[str]) -> list[Any]:
    """Per completed task (in id order): id, the question's method, each option's stored probability."""
    result = t.tasks.c.result
    columns = [result[("questions", question, "method")].as_string()]
    columns += [result[("questions", question, "details", "selected_probability", o)].as_float() for o in options]
    query = (
        repo.scoped(t.tasks, project["organization_id"], t.tasks.c.id, *columns)
        .where(t.tasks.c.project_id == project["id"], t.tasks.c.status == str(TaskStatus.COMPLETED))
        .order_by(t.tasks.c.id)
    )
    with db.read() as conn:
        return conn.execute(query).all()


@dataclass(frozen=True)
class _Stored:
    """What a project's completed task results say, column by column (task ids in id order)."""

    ids: list[str]
    response_counts: np.ndarray  # (n,) the tasks' response_count column
    predictions: np.ndarray  # (n,) the predictions each stored result counted (0 when it says none)
    #: per question: stored answers and methods (object arrays, None where absent), confidences (NaN)
    questions: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def _stored_answers(db: Database, project: dict[str, Any], questions: list[str]) -> _Stored:
    """Per completed task (in id order): its response count and, per question, the stored answer,
    method and confidence, read as JSON paths so no whole result is parsed."""
    result = t.tasks.c.result
    columns = [result["predictions"].as_integer()]
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
    with db.read() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return _Stored([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), {})
    ids, response_counts, predictions, *values = zip(*rows, strict=True)

    def strings(column: tuple) -> np.ndarray:
        out = np.empty(len(column), dtype=object)
        out[:] = column
        return out

    per_question = {
        q: (strings(values[3 * i]), strings(values[3 * i + 1]), np.array(values[3 * i + 2], dtype=float))
        for i, q in enumerate(questions)
    }
    predicted = np.array([p or 0 for p in predictions], dtype=np.int64)
    return _Stored(list(ids), np.array(response_counts, dtype=np.int64), predicted, per_question)


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
        responses = repo.responses_of_tasks(conn, project["organization_id"], [task["id"] for task in tasks])
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
    if old.get("auto_label"):
        return None  # auto-labeled: the model's answer stands until people check it (services/auto_label.py)
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


# --- the fast path: confidences that drifted, patched in place ------------------------------------

# the stored result as text: read with the result it is parsed from, and compared in the write, so a
# patch lands only on the very result it was computed from (JSON has no equality on PostgreSQL)
_RAW_RESULT = cast(t.tasks.c.result, Text)

_PATCH = (
    update(t.tasks)
    .where(
        t.tasks.c.id == bindparam("p_id"),
        t.tasks.c.organization_id == bindparam("p_organization_id"),
        t.tasks.c.status == str(TaskStatus.COMPLETED),
        cast(t.tasks.c.result, Text) == bindparam("p_raw", type_=Text),
    )
    .values(
        result=bindparam("p_result", type_=t.tasks.c.result.type),
        confidence=bindparam("p_confidence", type_=t.tasks.c.confidence.type),
    )
)


def _patch_confidences(
    db: Database,
    project: dict[str, Any],
    rules: Any,
    models: dict[str, WorkerModel],
    versions: dict[str, int],
    drifted: dict[str, tuple[int, dict[str, np.ndarray]]],
) -> list[str]:
    """Patch the results whose answers stay and whose confidences drifted, with the posteriors the
    refit computed; returns the tasks it could not patch, for :func:`_rescore` to rebuild.

    Most of what a refit rewrites is such drift, and rebuilding each result from its responses
    (:func:`build_result`) was two thirds of a refit's time. Here each chunk's stored results are
    read as text outside the writer, patched in Python (each fitted question's confidence, posterior,
    target flags and model version; the task's confidence), and written in one executemany UPDATE
    whose guard is the text that was read: a review, a fix or another refit in between wins, exactly
    as in :func:`_write_rescored`. Answers never change here, so nothing is recorded in the history.
    """
    pacer = Pacer(db)
    stale: list[str] = []
    ids = list(drifted)
    for start in range(0, len(ids), RESCORE_CHUNK):
        with pacer.step(time.perf_counter):
            chunk = {task_id: drifted[task_id] for task_id in ids[start : start + RESCORE_CHUNK]}
            patches, unpatched = _patch_chunk(db, project, rules, models, versions, chunk)
            stale += unpatched
            if patches:
                db.submit(_write_patches, db, patches, hot=False).result()
    return stale


def _patch_chunk(
    db: Database,
    project: dict[str, Any],
    rules: Any,
    models: dict[str, WorkerModel],
    versions: dict[str, int],
    chunk: dict[str, tuple[int, dict[str, np.ndarray]]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """The UPDATE parameters of a chunk's patches, and the tasks whose stored result is not the one
    the refit compared (those go the full way; a task no longer completed is left alone)."""
    organization_id = project["organization_id"]
    with db.read() as conn:
        query = repo.scoped(t.tasks, organization_id, t.tasks.c.id, _RAW_RESULT).where(
            t.tasks.c.id.in_(list(chunk)), t.tasks.c.status == str(TaskStatus.COMPLETED)
        )
        rows = conn.execute(query).all()
    patches, unpatched = [], []
    for task_id, raw in rows:
        response_count, posteriors = chunk[task_id]
        patched = _patched(orjson.loads(raw) if raw else None, response_count, posteriors, rules, models, versions)
        if patched is None:
            unpatched.append(task_id)
            continue
        result, confidence = patched
        patches.append(
            {
                "p_id": task_id,
                "p_organization_id": organization_id,
                "p_raw": raw,
                "p_result": result,
                "p_confidence": confidence,
            }
        )
    return patches, unpatched


def _patched(
    result: dict[str, Any] | None,
    response_count: int,
    posteriors: dict[str, np.ndarray],
    rules: Any,
    models: dict[str, WorkerModel],
    versions: dict[str, int],
) -> tuple[dict[str, Any], float | None] | None:
    """The result with each fitted question's confidence taken from its new posterior, and the task's
    confidence (the weakest deciding question's), as :func:`build_result` would make them; or None
    when the result is not what the refit compared (reviewed, fixed, another answer, method or tie,
    other responses), so only a full re-score may decide."""
    if not result or result.get("review") or result.get("response_count") != response_count:
        return None
    questions = dict(result.get("questions") or {})
    if any(q.get("method") == review.FIX_METHOD for q in questions.values()):
        return None  # a reviewer's fix outranks any model (the full re-score leaves it too)
    if any(name not in rules.questions for name in questions):
        return None  # the spec changed since: only a rebuild knows what the result is now
    confidences = dict(result.get("confidence") or {})
    for name, posterior in posteriors.items():
        before, model = questions.get(name), models[name]
        if before is None:
            continue  # an optional question this task has no answer to
        top = int(posterior.argmax())
        if before.get("tie") or before.get("method") != model.method or before.get("answer") != model.classes[top]:
            return None
        confidence = round(float(posterior[top]), 6)
        rule = rules.questions[name]
        questions[name] = {
            **before,
            "confidence": confidence,
            "deciding": rule.deciding,
            "target_confidence": rule.target,
            "reached_target": rule.target is None or confidence >= rule.target,
            "model_version": versions[name],
            # rounded as build_result rounds (Python's round, not numpy's, which can differ in the last digit)
            "details": {
                "posterior": {str(c): round(p, 6) for c, p in zip(model.classes, posterior.tolist(), strict=True)}
            },
        }
        confidences[name] = confidence
    deciding = [q["confidence"] for name, q in questions.items() if rules.questions[name].deciding]
    return {**result, "questions": questions, "confidence": confidences}, (min(deciding) if deciding else None)


def _write_patches(db: Database, patches: list[dict[str, Any]]) -> None:
    """One UPDATE for the chunk, each row only if its result is still the text it was patched from.

    Not durable (no wait for the group commit's fdatasync on SQLite): a patch lost to a power cut is
    found again by the next refit, which compares every stored confidence with its models."""
    with db.write(durable=False) as conn:
        conn.execute(_PATCH, patches)

"""Quality figures: inter-annotator agreement per question and figures per worker.

Read-only and additive: the figures are computed from a project's (or a batch's) responses and the
current task results, never written back. Rows are read in one organization-scoped query, turned
into ``(task, worker, label)`` arrays per question, and handed to :mod:`truthset.quality`.

Per question type (see docs/quality.md):

- ``label``: nominal agreement (percent, Fleiss, Cohen, Krippendorff nominal).
- ``rating``: the same exact-match figures, and Krippendorff's alpha at the ordinal level.
- ``labels`` (multi): each (task, option) is a yes/no unit, pooled over the options, so the
  figures say how often workers agree on whether each option applies.
- ``text``: not applicable (free text has no agreement metric here); every figure is null.
- other types (``number``, ``rubric``, plugins): their own figures under ``measures``, from the
  type's ``agreement`` hook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm
from sqlalchemy import Connection

from truthset import quality, questions
from truthset.domain import Principal, TaskStatus, WorkerKind
from truthset.errors import Forbidden, NotFound
from truthset.quality import NumericWorkerModel
from truthset.questions import CompiledSpec
from truthset.services import auto_label, gold, predictions, results
from truthset.services.policy import Action, allowed, require
from truthset.services.projects import compiled_spec, load_project
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

#: Question types whose answers are compared as categories; ``text`` is not.
CATEGORICAL = frozenset({"label", "labels", "rating"})
ALPHA_LEVEL = {"label": "nominal", "labels": "nominal", "rating": "ordinal"}
Z_95 = float(norm.ppf(0.975))

NOT_APPLICABLE = "agreement is not defined for free text"
OWN_MEASURES = "not compared as categories: see measures"  # a type with its own agreement() (spans, ...)
TOO_FEW = "no task has two or more answers to this question"
NOT_TWO_RATERS = "Cohen's kappa needs exactly two workers who both answered every task"


@dataclass
class ResponseRows:
    """A project's responses as parallel arrays (one entry per response)."""

    task: np.ndarray  # task codes
    worker: np.ndarray  # worker codes
    task_ids: list[str]
    worker_ids: list[str]
    answers: list[dict[str, Any]]
    duration: np.ndarray  # milliseconds, NaN where not sent
    results: dict[int, dict[str, Any]] = field(default_factory=dict)  # task code -> completed answer
    models: frozenset[int] = frozenset()  # worker codes of model workers (not raters in agreement)


def mark_models(conn: Connection, organization_id: str, rows: ResponseRows) -> None:
    """Note which of the rows' workers are models: agreement is people's (docs/quality.md)."""
    w = t.workers
    found: set[str] = set()
    for start in range(0, len(rows.worker_ids), 500):
        chunk = rows.worker_ids[start : start + 500]
        query = repo.scoped(w, organization_id, w.c.id).where(w.c.id.in_(chunk), w.c.kind == str(WorkerKind.MODEL))
        found.update(row[0] for row in conn.execute(query))
    rows.models = frozenset(code for code, worker_id in enumerate(rows.worker_ids) if worker_id in found)


# --- reading ---------------------------------------------------------------------------------------


def _read_rows(conn: Connection, principal: Principal, project_id: str, batch_id: str | None) -> ResponseRows:
    """Every response of the project (or batch) in one query, and the completed tasks' answers."""
    r, tk = t.responses, t.tasks
    # Driven from the project's (or batch's) tasks, then each task's responses by ix_responses_task:
    # starting from the responses would read every response of the organization.
    query = (
        repo.scoped(tk, principal.organization_id, r.c.task_id, r.c.worker_id, r.c.answer, r.c.duration_ms)
        .join(r, r.c.task_id == tk.c.id)
        .where(r.c.organization_id == principal.organization_id)
    )
    if batch_id is None:
        query = repo.prefer_index(query.where(tk.c.project_id == project_id), tk, "ix_tasks_project_id")
    else:
        query = repo.prefer_index(query.where(tk.c.batch_id == batch_id), tk, "ix_tasks_batch_id")
    query = repo.prefer_index(query, r, "ix_responses_task")
    task_code: dict[str, int] = {}
    worker_code: dict[str, int] = {}
    tasks_, workers_, answers, durations = [], [], [], []
    for task_id, worker_id, answer, duration_ms in conn.execute(query):
        tasks_.append(task_code.setdefault(task_id, len(task_code)))
        workers_.append(worker_code.setdefault(worker_id, len(worker_code)))
        answers.append(answer or {})
        durations.append(np.nan if duration_ms is None else duration_ms)
    rows = ResponseRows(
        task=np.asarray(tasks_, dtype=np.int64),
        worker=np.asarray(workers_, dtype=np.int64),
        task_ids=list(task_code),
        worker_ids=list(worker_code),
        answers=answers,
        duration=np.asarray(durations, dtype=np.float64),
    )
    results = repo.scoped(tk, principal.organization_id, tk.c.id, tk.c.result).where(
        tk.c.project_id == project_id, tk.c.status == str(TaskStatus.COMPLETED)
    )
    if batch_id is not None:
        results = results.where(tk.c.batch_id == batch_id)
    for task_id, result in conn.execute(results):
        if task_id in task_code and isinstance(result, dict):
            rows.results[task_code[task_id]] = result.get("answer") or {}
    mark_models(conn, principal.organization_id, rows)
    return rows


def _scope(conn: Connection, principal: Principal, project_id: str, batch_id: str | None) -> CompiledSpec:
    """The project's spec; 404 for a project or batch not in the caller's organization (or project)."""
    spec = compiled_spec(load_project(conn, principal, project_id))
    if batch_id is not None:
        batch = repo.get(conn, t.batches, principal.organization_id, batch_id)
        if batch is None or batch["project_id"] != project_id:
            raise NotFound(f"batch {batch_id} not found in project {project_id}", details={"field": "batch_id"})
    return spec


# --- agreement -------------------------------------------------------------------------------------


def _hashable(value: Any) -> Any:
    """A value numpy can factorize as one label: a ``labels`` selection becomes one string."""
    return repr(tuple(value)) if isinstance(value, list) else value


def _question_rows(
    rows: ResponseRows, name: str, *, people_only: bool = False
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """(row indexes, task codes, values) of the responses that answered question ``name`` (only
    people's with ``people_only``: a model's predictions are measured, not raters)."""
    index = [i for i, a in enumerate(rows.answers) if a.get(name) is not None]
    if people_only and rows.models:
        index = [i for i in index if int(rows.worker[i]) not in rows.models]
    idx = np.asarray(index, dtype=np.int64)
    return idx, rows.task[idx], [rows.answers[i][name] for i in index]


def _units(question: Any, tasks: np.ndarray, workers: np.ndarray, values: list[Any]) -> tuple[Any, Any, Any]:
    """The (unit, worker, label) rows agreement is computed on; ``labels`` becomes yes/no per option."""
    if question.type != "labels":
        return tasks, workers, [_hashable(v) for v in values]
    options = question.option_values()
    k = len(options)
    units = (tasks[:, None] * k + np.arange(k)[None, :]).ravel()
    chosen = np.array([[o in v for o in options] for v in values], dtype=bool).reshape(-1, k)
    return units, np.repeat(workers, k), chosen.ravel().astype(np.int64)


def _cohen(tasks: np.ndarray, workers: np.ndarray, labels: list[Any]) -> float | None:
    """Cohen's kappa when exactly two workers answered every task of the question, else None."""
    pair = np.unique(workers)
    if pair.size != 2:
        return None
    first = workers == pair[0]
    a_tasks, b_tasks = tasks[first], tasks[~first]
    if a_tasks.size != b_tasks.size or not np.array_equal(np.sort(a_tasks), np.sort(b_tasks)):
        return None
    labels_arr = np.empty(len(labels), dtype=object)
    labels_arr[:] = labels
    a = labels_arr[first][np.argsort(a_tasks, kind="stable")]
    b = labels_arr[~first][np.argsort(b_tasks, kind="stable")]
    return quality.cohens_kappa([str(x) for x in a], [str(x) for x in b])


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def question_agreement(question: Any, rows: ResponseRows) -> dict[str, Any]:
    """Agreement among the people who answered ``question``. Model workers' predictions are left
    out: two versions of one model agree with each other by construction, and a model beside one
    person would make every such task a comparison of the model with that person (which the
    worker figures measure: agreement with results, verified accuracy)."""
    idx, tasks, values = _question_rows(rows, question.name, people_only=True)
    per_task = np.bincount(tasks, minlength=len(rows.task_ids)) if idx.size else np.zeros(0, dtype=np.int64)
    out: dict[str, Any] = {
        "question": question.name,
        "type": question.type,
        "answers": int(idx.size),
        "tasks": int((per_task >= 2).sum()),
        "workers": int(np.unique(rows.worker[idx]).size),
        "percent_agreement": None,
        "fleiss_kappa": None,
        "cohens_kappa": None,
        "krippendorff_alpha": None,
        "alpha_level": ALPHA_LEVEL.get(question.type),
        "reasons": {},
        "measures": {},
    }
    metrics = ("percent_agreement", "fleiss_kappa", "cohens_kappa", "krippendorff_alpha")
    if question.type not in CATEGORICAL:
        own = getattr(questions.get(question.type), "agreement", None) is not None
        if own and out["tasks"]:
            out["reasons"] = dict.fromkeys(metrics, OWN_MEASURES)
            out["measures"] = _type_measures(question, tasks, rows.worker[idx], values)
        else:  # no measures to point at: say why (free text has none; the others, no task with two answers)
            out["reasons"] = dict.fromkeys(metrics, TOO_FEW if own else NOT_APPLICABLE)
        return out
    if out["tasks"] == 0:
        out["reasons"] = dict.fromkeys(metrics, TOO_FEW)
        return out
    answers = _units(question, tasks, rows.worker[idx], values)
    out["percent_agreement"] = _finite(quality.percent_agreement(answers))
    out["fleiss_kappa"] = _finite(quality.fleiss_kappa(answers))
    out["krippendorff_alpha"] = _finite(quality.krippendorff_alpha(answers, level=out["alpha_level"]))
    out["cohens_kappa"] = _finite(_cohen(*answers))
    if out["cohens_kappa"] is None:
        out["reasons"]["cohens_kappa"] = NOT_TWO_RATERS
    return out


def _type_measures(question: Any, tasks: np.ndarray, workers: np.ndarray, values: list[Any]) -> dict[str, Any]:
    """A type's own agreement measures (span F1, mean IoU, ...), when its type defines ``agreement``.

    ``agreement(question, tasks, workers, values)`` gets one entry per answer (task code, worker
    code, stored answer) and returns ``{measure: value or None}``; see QuestionType.
    """
    measure = getattr(questions.get(question.type), "agreement", None)
    if measure is None:
        return {}
    return {name: _finite(value) for name, value in measure(question, tasks, workers, values).items()}


def project_agreement(
    db: Database, principal: Principal, project_id: str, *, batch_id: str | None = None
) -> dict[str, Any]:
    """Agreement per question of the project (or of one of its batches)."""
    require(principal, Action.READ_QUALITY)
    with db.read() as conn:
        spec = _scope(conn, principal, project_id, batch_id)
        rows = _read_rows(conn, principal, project_id, batch_id)
    return {
        "project_id": project_id,
        "batch_id": batch_id,
        "responses": int(rows.task.size),
        "questions": [question_agreement(q, rows) for q in spec.questions],
    }


# --- per worker --------------------------------------------------------------------------------------


def wilson_interval(successes: np.ndarray, n: np.ndarray, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial share, vectorised; NaN where ``n`` is 0.

    Reference: E. B. Wilson, "Probable Inference, the Law of Succession, and Statistical
    Inference", JASA 22(158):209-212, 1927, https://doi.org/10.1080/01621459.1927.10502953.
    """
    n = n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def leave_one_out(tasks: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per answer: does it have a strict majority of the OTHER answers on its task to be scored
    against (>= 2 other answers, no tie at the top), and does it equal that majority?

    Vectorised over a task x label count table: with the answer's own vote removed, the others'
    top count and how many labels share it decide.
    """
    n_tasks, n_labels = int(tasks.max()) + 1, int(labels.max()) + 1
    counts = np.bincount(tasks * n_labels + labels, minlength=n_tasks * n_labels).reshape(n_tasks, n_labels)
    ordered = -np.sort(-counts, axis=1)
    top = ordered[:, 0]
    second = ordered[:, 1] if n_labels > 1 else np.zeros(n_tasks, dtype=np.int64)
    n_top = (counts == top[:, None]).sum(axis=1)
    own, c1, c2, k1 = counts[tasks, labels], top[tasks], second[tasks], n_top[tasks]
    others = counts.sum(axis=1)[tasks] - 1
    own_on_top = own == c1
    # own label alone on top: it stays the majority if it still beats the runner-up without its vote
    wins = own_on_top & (k1 == 1) & (c1 - 1 > c2)
    # another label alone on top of the others: the answer is scored wrong
    loses = (own_on_top & (k1 == 2)) | (~own_on_top & (k1 == 1))
    scored = (others >= 2) & (wins | loses)
    return scored, wins & scored


def worker_figures(spec: CompiledSpec, rows: ResponseRows) -> list[dict[str, Any]]:
    n_w = len(rows.worker_ids)
    answered = np.zeros(n_w)
    result_hits, result_n = np.zeros(n_w), np.zeros(n_w)
    loo_hits, loo_n = np.zeros(n_w), np.zeros(n_w)
    per_question: list[dict[str, float | None]] = [{} for _ in range(n_w)]
    for question in spec.questions:
        idx, tasks, values = _question_rows(rows, question.name)
        if idx.size == 0:
            continue
        workers = rows.worker[idx]
        answered += np.bincount(workers, minlength=n_w)
        if question.type in CATEGORICAL:
            labels = [_hashable(v) for v in values]
            hits, n = _agreement_with_results(rows, question.name, tasks, workers, labels, n_w)
            codes = np.unique(np.asarray([repr(v) for v in labels]), return_inverse=True)[1].ravel()
            scored, correct = leave_one_out(tasks, codes)
        elif question.name in spec.numeric().get(question.name, {}):  # one number (ratings are categories above)
            hits, n = _numbers_near_results(rows, question, tasks, workers, values, n_w)
            scored, correct = _numbers_near_others(question, tasks, values)
        else:
            continue
        result_hits += hits
        result_n += n
        for w in np.flatnonzero(n):
            per_question[w][question.name] = round(float(hits[w] / n[w]), 6)
        loo_n += np.bincount(workers, weights=scored, minlength=n_w)
        loo_hits += np.bincount(workers, weights=correct, minlength=n_w)
    low, high = wilson_interval(loo_hits, loo_n)
    responses = np.bincount(rows.worker, minlength=n_w)
    return [
        {
            "worker_id": rows.worker_ids[w],
            "responses": int(responses[w]),
            "answers": int(answered[w]),
            **_durations(rows.duration[rows.worker == w]),
            "agreement_with_results": _share(result_hits[w], result_n[w]),
            "agreement_with_results_by_question": per_question[w],
            "compared_with_results": int(result_n[w]),
            "estimated_accuracy": _share(loo_hits[w], loo_n[w]),
            "accuracy_interval": [round(float(low[w]), 6), round(float(high[w]), 6)] if loo_n[w] else None,
            "scored_answers": int(loo_n[w]),
        }
        for w in range(n_w)
    ]


def _numbers_near_results(
    rows: ResponseRows, question: Any, tasks: np.ndarray, workers: np.ndarray, values: list[Any], n_w: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per worker: numbers within the question's tolerance of the completed task's result (as gold
    judges them), and numbers compared (ties, whose result has no answer, left out)."""
    matches = questions.get(question.type).gold_matches
    results = [rows.results.get(int(task), {}).get(question.name) for task in tasks]
    done = np.array([r is not None for r in results], dtype=bool)
    near = np.array([r is not None and matches(question, r, v) for r, v in zip(results, values, strict=True)])
    return (
        np.bincount(workers, weights=near.astype(np.float64), minlength=n_w),
        np.bincount(workers[done], minlength=n_w).astype(np.float64),
    )


def _numbers_near_others(question: Any, tasks: np.ndarray, values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per number: is it scored (two or more other answers to its task), and is it within the
    question's tolerance of the median of those others (leave one out, as :func:`leave_one_out` does
    for categories)?"""
    matches = questions.get(question.type).gold_matches
    medians = medians_of_others(tasks, np.asarray(values, dtype=np.float64))
    scored = ~np.isnan(medians)
    correct = np.array(
        [bool(ok) and matches(question, float(m), v) for ok, m, v in zip(scored, medians, values, strict=True)],
        dtype=bool,
    )
    return scored, correct


def medians_of_others(tasks: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per answer: the median of the OTHER answers to its task; NaN with fewer than two others.

    Vectorised: answers sorted by (task, value); removing the answer at rank ``i`` of a task's ``n``
    shifts every rank above ``i`` down by one, so the others' middle rank(s) map back to ranks of the
    full sorted run without building each task's list of others.
    """
    order = np.lexsort((values, tasks))
    sorted_tasks, sorted_values = tasks[order], values[order]
    starts = np.flatnonzero(np.r_[True, sorted_tasks[1:] != sorted_tasks[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    first = np.repeat(starts, sizes)  # each answer's task's first position in the sorted run
    n = np.repeat(sizes, sizes)
    rank = np.arange(len(order)) - first
    others = n - 1
    low, high = (others - 1) // 2, others // 2  # middle ranks among the others (equal when odd)

    def value_at(other_rank: np.ndarray) -> np.ndarray:
        full_rank = other_rank + (other_rank >= rank)  # skip the answer's own place
        return sorted_values[first + np.minimum(full_rank, n - 1)]

    medians = np.where(others >= 2, (value_at(low) + value_at(high)) / 2.0, np.nan)
    out = np.empty(len(order))
    out[order] = medians
    return out


def _agreement_with_results(
    rows: ResponseRows, name: str, tasks: np.ndarray, workers: np.ndarray, labels: list[Any], n_w: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per worker: answers equal to the completed task's result, and answers compared (ties left out)."""
    # a tie (answer null) is no result to agree with: those tasks are left out, not counted against
    done = np.array([rows.results.get(int(task), {}).get(name) is not None for task in tasks], dtype=bool)
    n = np.bincount(workers[done], minlength=n_w).astype(np.float64)
    if not done.any():
        return np.zeros(n_w), n
    keep = np.flatnonzero(done)
    results = {int(task): _hashable(rows.results[int(task)][name]) for task in np.unique(tasks[keep])}
    share = quality.worker_agreement(
        (tasks[keep], workers[keep], [labels[i] for i in keep]), results
    )  # worker code -> share of their compared answers that equal the result
    hits = np.zeros(n_w)
    for worker, value in share.items():
        hits[int(worker)] = value * n[int(worker)]
    return hits, n


def _review_counts(
    conn: Connection, principal: Principal, project_id: str, batch_id: str | None
) -> dict[str, dict[str, int]]:
    """Per worker: answers a reviewer judged (``reviewed``), and of those ``review_accepted`` and
    ``review_rejected``. An accept upholds every answer on the task before it; a reject overrules them
    all; a fix upholds the answers equal to it on the questions it answers and overrules the rest.
    """
    rv, tk = t.reviews, t.tasks
    query = (
        repo.scoped(rv, principal.organization_id, rv.c.task_id, rv.c.verdict, rv.c.response_id, rv.c.reviewer_id)
        .add_columns(rv.c.created_at)
        .join(tk, tk.c.id == rv.c.task_id)
        .where(tk.c.project_id == project_id)
    )
    if batch_id is not None:
        query = query.where(tk.c.batch_id == batch_id)
    reviews = conn.execute(query.order_by(rv.c.id)).all()
    task_ids = sorted({r.task_id for r in reviews})
    responses: dict[str, list[Any]] = {}
    r = t.responses
    for start in range(0, len(task_ids), 500):
        rows = conn.execute(
            repo.scoped(
                r, principal.organization_id, r.c.id, r.c.task_id, r.c.worker_id, r.c.answer, r.c.created_at
            ).where(r.c.task_id.in_(task_ids[start : start + 500]))
        )
        for row in rows:
            responses.setdefault(row.task_id, []).append(row)
    fixes = {row.id: row.answer for rows in responses.values() for row in rows}
    counts: dict[str, dict[str, int]] = {}
    for review in reviews:
        fix = fixes.get(review.response_id) if review.response_id else None
        for row in responses.get(review.task_id, []):
            judged = row.created_at <= review.created_at and row.worker_id != review.reviewer_id
            if not judged:  # answers given after the review, and the reviewer's own fix
                continue
            upheld = review.verdict == "accept" or (
                fix is not None and all((row.answer or {}).get(q, v) == v for q, v in fix.items())
            )
            figures = counts.setdefault(row.worker_id, {"reviewed": 0, "review_accepted": 0, "review_rejected": 0})
            figures["reviewed"] += 1
            figures["review_accepted" if upheld else "review_rejected"] += 1
    return counts


def _with_reviews(figures: list[dict[str, Any]], counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    empty = {"reviewed": 0, "review_accepted": 0, "review_rejected": 0}
    return [{**f, **counts.get(f["worker_id"], empty)} for f in figures]


def _share(hits: float, n: float) -> float | None:
    return round(float(hits / n), 6) if n else None


def _durations(values: np.ndarray) -> dict[str, float | None]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"median_duration_ms": None, "mean_duration_ms": None}
    return {"median_duration_ms": float(np.median(values)), "mean_duration_ms": round(float(values.mean()), 3)}


def measured_by_fit(models: Mapping[str, results.FittedModel]) -> Callable[[str], dict[str, dict[str, float]]]:
    """What the project's fitted worker models measured of a worker, per fitted model (a question,
    ``question[option]`` or ``question[criterion]``): ``accuracy``, how often a categorical model has
    the worker right (the prior-weighted diagonal of their confusion matrix), or ``noise_sd``, how far
    a numeric model has their numbers stray from the truth (in the question's units); only the models
    that know the worker. The engine's own estimate, beside gold's and the agreement figures."""

    def measured(worker_id: str) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for key, model in models.items():
            index = model.worker_index(worker_id)
            if index is None:
                continue
            if isinstance(model, NumericWorkerModel):
                out[key] = {"noise_sd": round(float(np.sqrt(model.variances[index])), 6)}
            else:
                out[key] = {"accuracy": round(float(results.reliability(model, worker_id) or 0.0), 6)}
        return out

    return measured


def quality_models(db: Database, principal: Principal, project_id: str) -> list[dict[str, Any]]:
    """The project's current worker model of each fitted key (a question, ``question[option]`` of a
    multi-select, ``question[criterion]`` of a rubric): its version, method, when it was fitted and on
    what, and how its confidence is calibrated (a categorical model's temperature, a numeric one's
    shared error; ``gold_tasks`` 0 when fitted from answers alone). Empty before the first refit."""
    require(principal, Action.READ_QUALITY)
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        return fitted_models(conn, project, results.current_models(conn, project, compiled_spec(project)))


def fitted_models(
    conn: Connection, project: Mapping[str, Any], current: tuple[Mapping[str, results.FittedModel], dict[str, int]]
) -> list[dict[str, Any]]:
    """:func:`quality_models` of the ``current`` models (:func:`results.current_models`), in key order."""
    models, versions = current
    rows = repo.model_figures(conn, project["organization_id"], project["id"], versions)
    return [_model_figures(row, models[row["question"]]) for row in rows if row["question"] in models]


def _model_figures(row: Mapping[str, Any], model: results.FittedModel) -> dict[str, Any]:
    numeric = isinstance(model, NumericWorkerModel)
    return {
        "key": row["question"],
        "question": row["question"].partition("[")[0],  # `tags[urgent]` belongs to `tags`
        "version": row["version"],
        "method": row["method"],
        "fitted_at": row["created_at"],
        "responses": row["n_responses"],
        "tasks": row["n_tasks"],
        "workers": row["n_workers"],
        "fit_seconds": round(float(row["fit_seconds"]), 3),
        "gold_tasks": int(model.gold_tasks),
        "temperature": None if numeric else round(float(model.temperature), 4),
        "shared_sd": round(float(np.sqrt(model.shared_variance)), 6) if numeric else None,
    }


def _with_measured(figures: list[dict[str, Any]], measured: Callable[[str], dict]) -> list[dict[str, Any]]:
    return [{**f, "measured": measured(f["worker_id"])} for f in figures]


def _with_names(conn: Connection, principal: Principal, figures: list[dict[str, Any]]) -> list[dict]:
    """The page's figures with each worker's name and kind (one scoped query per 500 workers)."""
    ids = [f["worker_id"] for f in figures]
    w = t.workers
    names: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), 500):
        query = repo.scoped(w, principal.organization_id, w.c.id, w.c.name, w.c.kind)
        rows = conn.execute(query.where(w.c.id.in_(ids[start : start + 500])))
        names.update({worker_id: (name, kind) for worker_id, name, kind in rows})
    return [{**f, "name": names[f["worker_id"]][0], "kind": names[f["worker_id"]][1]} for f in figures]


def project_workers(
    db: Database,
    principal: Principal,
    project_id: str,
    *,
    batch_id: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """Figures of every worker who answered in the project (or batch), in worker id order, a page at a time."""
    require(principal, Action.READ_QUALITY)
    with db.read() as conn:
        spec = _scope(conn, principal, project_id, batch_id)
        rows = _read_rows(conn, principal, project_id, batch_id)
        figures = _with_standing(
            worker_figures(spec, rows), repo.standings_of_project(conn, principal.organization_id, project_id)
        )
        figures = _with_reviews(figures, _review_counts(conn, principal, project_id, batch_id))
        figures = predictions.with_prefill(
            figures, predictions.prefill_counts(conn, principal.organization_id, project_id, batch_id)
        )
        project = load_project(conn, principal, project_id)
        figures = auto_label.with_figures(conn, project, figures)
        figures.sort(key=lambda f: f["worker_id"])
        if cursor is not None:
            figures = [f for f in figures if f["worker_id"] > cursor]
        page, more = figures[:limit], len(figures) > limit
        measured = measured_by_fit(results.current_models(conn, project, spec)[0])
        items = _with_names(conn, principal, _with_measured(page, measured))
    return items, page[-1]["worker_id"] if more else None


def worker_stats(
    db: Database, principal: Principal, worker_id: str, project_id: str, *, batch_id: str | None = None
) -> dict[str, Any]:
    """One worker's figures on a project. Managers and above see anyone's; every member their own."""
    if worker_id != principal.worker_id and not allowed(principal, Action.READ_QUALITY):
        raise Forbidden(f"the {principal.role} role may only read its own worker figures")
    with db.read() as conn:
        worker = repo.get(conn, t.workers, principal.organization_id, worker_id)
        if worker is None:
            raise NotFound(f"worker {worker_id} not found")
        spec = _scope(conn, principal, project_id, batch_id)
        rows = _read_rows(conn, principal, project_id, batch_id)
        standing = repo.standing(conn, principal.organization_id, project_id, worker_id, lock=False)
        reviewed = _review_counts(conn, principal, project_id, batch_id)
        prefilled = predictions.prefill_counts(conn, principal.organization_id, project_id, batch_id)
    figures = {f["worker_id"]: f for f in _with_reviews(worker_figures(spec, rows), reviewed)}
    mine = {**(figures.get(worker_id) or _no_figures(worker_id)), **gold.standing_figures(standing)}
    mine = predictions.with_prefill([mine], prefilled)[0]
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        mine = auto_label.with_figures(conn, project, [mine])[0]
        mine = _with_measured([mine], measured_by_fit(results.current_models(conn, project, spec)[0]))[0]
    return {**mine, "name": worker["name"], "kind": worker["kind"], "project_id": project_id, "batch_id": batch_id}


def _with_standing(figures: list[dict[str, Any]], standings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each worker's figures with their gold standing; a worker gold has met but who never answered too."""
    by_worker = {row["worker_id"]: row for row in standings}
    merged = [{**f, **gold.standing_figures(by_worker.pop(f["worker_id"], None))} for f in figures]
    merged += [{**_no_figures(w), **gold.standing_figures(row)} for w, row in by_worker.items()]
    return merged


def _no_figures(worker_id: str) -> dict[str, Any]:
    return {
        "worker_id": worker_id,
        "responses": 0,
        "answers": 0,
        "median_duration_ms": None,
        "mean_duration_ms": None,
        "agreement_with_results": None,
        "agreement_with_results_by_question": {},
        "compared_with_results": 0,
        "estimated_accuracy": None,
        "accuracy_interval": None,
        "scored_answers": 0,
        "measured": {},
        "reviewed": 0,
        "review_accepted": 0,
        "review_rejected": 0,
    }


__all__: Sequence[str] = [
    "ResponseRows",
    "leave_one_out",
    "project_agreement",
    "project_workers",
    "question_agreement",
    "wilson_interval",
    "worker_figures",
    "worker_stats",
]

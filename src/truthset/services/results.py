"""Task results from the quality engine, and what happens to a task after each response.

A task's result is computed per question by its question type from the project's stored worker
models (:class:`truthset.quality.WorkerModel`, fitted by :mod:`truthset.services.refit`): for a
categorical question, the posterior of the task given its answers and the fitted confusion matrices
(microseconds, no refit); before the first fit, every worker counts as an average one. Then the
project's policy (:mod:`truthset.services.completion`) decides: complete, complete flagged, send to
review, or ask one more worker. Every step that changes a task beyond a response is a task event.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection

from truthset.domain import TaskStatus
from truthset.quality import NumericWorkerModel, WorkerModel, model_from_bytes
from truthset.questions import Aggregate, CompiledSpec
from truthset.services import lifecycle, retraining, review, webhooks
from truthset.services.completion import CompletionRules, Decision, Outcome, completion_rules
from truthset.services.events import add_event
from truthset.services.projects import mark_batch_completed_if_done
from truthset.services.scale_callbacks import enqueue_if_due as enqueue_scale_callback
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

#: What a refit stores per question: confusion matrices (categorical) or noise variances (numeric).
FittedModel = WorkerModel | NumericWorkerModel

# (project id, question) -> (version, model). The database says which version is current; this only
# saves decoding it again, so losing it costs time, never correctness.
_MODELS: dict[tuple[str, str], tuple[int, FittedModel]] = {}
_MODELS_LOCK = threading.Lock()
_MAX_CACHED_MODELS = 2_000


def current_models(
    conn: Connection, project: Mapping[str, Any], spec: CompiledSpec
) -> tuple[dict[str, FittedModel], dict[str, int]]:
    """The project's newest worker model of each fitted question that has one, and its version: a
    :class:`WorkerModel` for a categorical question (and each option of a multi-select one, and a
    ranking's compared pairs), a :class:`NumericWorkerModel` for a numeric one (and each criterion of
    a rubric)."""
    if not spec.has_worker_models():
        return {}, {}
    models = {}
    versions = repo.latest_model_versions(conn, project["organization_id"], project["id"], memo=True)
    for question, version in versions.items():
        cached = _MODELS.get((project["id"], question))
        if cached is None or cached[0] != version:
            blob = repo.model_state(conn, project["organization_id"], project["id"], question, version)
            cached = (version, model_from_bytes(blob))
            with _MODELS_LOCK:
                if len(_MODELS) >= _MAX_CACHED_MODELS:
                    _MODELS.clear()
                _MODELS[(project["id"], question)] = cached
        models[question] = cached[1]
    return models, versions


def build_result(
    spec: CompiledSpec,
    rules: CompletionRules,
    responses: Sequence[Mapping[str, Any]],
    models: Mapping[str, FittedModel],
    versions: Mapping[str, int] | None = None,
) -> tuple[dict[str, Any], float | None]:
    """A task's result from its responses; and its confidence (the weakest deciding question's).

    Models' predictions count only as :func:`counted_answer` says; the result's ``response_count``
    counts people's responses, ``predictions`` the models' (docs/models.md).
    """
    newest = newest_predictions(responses, models)
    counted = [(counted_answer(r, models, newest), r["worker_id"], r.get("scores") is not None) for r in responses]
    counted = [(answer, worker, by_model) for answer, worker, by_model in counted if answer]
    aggregates = spec.aggregate([a for a, _, _ in counted], [w for _, w, _ in counted], models)
    questions = {name: _question_result(name, agg, rules, versions or {}) for name, agg in aggregates.items()}
    deciding = [q["confidence"] for name, q in questions.items() if rules.questions[name].deciding]
    confidence = min(deciding) if deciding else None
    result = {
        "answer": {name: q["answer"] for name, q in questions.items()},
        "confidence": {name: q["confidence"] for name, q in questions.items()},
        "methods": {name: q["method"] for name, q in questions.items()},
        "questions": questions,
        "response_count": human_count(responses),
        "workers": [r["worker_id"] for r in responses],
        "response_ids": [r["id"] for r in responses],
    }
    if len(responses) > result["response_count"]:
        result["predictions"] = len(responses) - result["response_count"]
    superseded = [r["id"] for r in responses if is_superseded(r, newest)]
    if superseded:
        result["superseded_predictions"] = superseded
    if any(by_model for *_, by_model in counted):
        people = [(answer, worker) for answer, worker, by_model in counted if not by_model]
        result["people_answer"], posteriors = _people_answer(spec, rules, people, models, versions, list(questions))
        if posteriors:
            result["people_posterior"] = posteriors
    return result, confidence


def _people_answer(
    spec: CompiledSpec,
    rules: CompletionRules,
    people: list[tuple[Mapping[str, Any], str]],
    models: Mapping[str, FittedModel],
    versions: Mapping[str, int] | None,
    names: list[str],
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The answer people's counted answers give without any model's vote (None where they give
    none: no answer, or a tie), and its posterior per question where the question type has one.

    Where a model's vote counted, a model's verified record compares it with these, not with the
    result its own vote helped decide (``auto_label.measure``)."""
    answer: dict[str, Any] = dict.fromkeys(names)
    posteriors: dict[str, dict[str, float]] = {}
    if people:
        aggregates = spec.aggregate([a for a, _ in people], [w for _, w in people], models)
        for name, agg in aggregates.items():
            question = _question_result(name, agg, rules, versions or {})
            answer[name] = question["answer"]
            posterior = (question["details"] or {}).get("posterior")
            if isinstance(posterior, dict):
                posteriors[name] = posterior
    return answer, posteriors


def reliability(model: FittedModel | None, worker_id: str) -> float | None:
    """A worker's estimated accuracy under a fitted categorical model: the prior-weighted diagonal of
    its confusion matrix (None when the model does not know the worker, or is numeric)."""
    index = model.worker_index(worker_id) if isinstance(model, WorkerModel) else None
    if index is None:
        return None
    errors = model.errors[index]
    return float(np.dot(model.priors, np.diag(errors)))


def counted_answer(
    response: Mapping[str, Any], models: Mapping[str, FittedModel], newest: Mapping[tuple[str, str], str]
) -> Mapping[str, Any]:
    """The part of a response's answer that counts toward a task's result.

    A person's answer counts whole. A model's prediction (a response with ``scores``) counts only on
    questions whose fitted worker model knows the model worker (categorical ones, numbers and
    ratings: the refit fits models' predictions of those beside people's): it weighs what its
    answers earned (against gold, reviews and other workers), never an average worker's weight it
    has not earned; elsewhere it is shown, never counted. And of one model's versions, only the
    newest the fit knows counts on a question (``newest``, from :func:`newest_predictions`).
    """
    answer = response["answer"] or {}
    if response.get("scores") is None:
        return answer
    family = model_family(response)
    return {name: value for name, value in answer.items() if newest.get((family, name)) == response["id"]}


def model_family(response: Mapping[str, Any]) -> str:
    """The model a prediction's worker is a version of: ``sent-clf`` for ``sent-clf@3``.

    A prediction's row must carry its worker's name (``worker_name``: the repositories' responses
    queries join it): without it versions could not be told apart, and a guess would change weights.
    """
    name = response.get("worker_name")
    if not name:
        raise ValueError(f"response {response.get('id')}: a prediction read without its worker_name")
    return name.partition("@")[0]


def newest_predictions(
    responses: Sequence[Mapping[str, Any]], models: Mapping[str, FittedModel]
) -> dict[tuple[str, str], str]:
    """Per (model, question): the id of the prediction that counts among a task's responses, the
    newest by a version the question's fitted worker model knows.

    Every retrained version of a model is a worker of its own, and each may have predicted the task.
    Their answers are one model's opinion, not independent votes: counted together, versions that
    agree (as they do, trained on the same data) would each add the weight of an independent worker
    and make the task's confidence overstate its accuracy. So per task and question one prediction
    of each model counts. A version the fit does not know yet has earned no weight: until a refit
    measures it, the newest version it does know keeps counting, so a task never loses its model's
    vote to a retraining. Response ids sort by creation time (``storage.ids``).
    """
    newest: dict[tuple[str, str], str] = {}
    for response in responses:
        if response.get("scores") is None:
            continue
        family = model_family(response)
        for question in response["answer"] or {}:
            key = (family, question)
            known = question in models and models[question].worker_index(response["worker_id"]) is not None
            if known and newest.get(key, "") < response["id"]:
                newest[key] = response["id"]
    return newest


def is_superseded(response: Mapping[str, Any], newest: Mapping[tuple[str, str], str]) -> bool:
    """Whether a newer prediction of the same model counts in this one's place on every question it
    answers (a result lists these as ``superseded_predictions``; they are kept, shown and measured)."""
    if response.get("scores") is None:
        return False
    family, answer = model_family(response), response["answer"] or {}
    return bool(answer) and all(newest.get((family, question), "") > response["id"] for question in answer)


def human_count(responses: Sequence[Mapping[str, Any]]) -> int:
    """People's responses among a task's responses: what the policy's overlap counts."""
    return sum(1 for r in responses if r.get("scores") is None)


def _question_result(name: str, agg: Aggregate, rules: CompletionRules, versions: Mapping[str, int]) -> dict:
    rule = rules.questions[name]
    confidence = round(float(agg.confidence), 6)
    return {
        "answer": agg.value,
        "confidence": confidence,
        "method": agg.method,
        "tie": agg.tie,
        "deciding": rule.deciding,
        "target_confidence": rule.target,
        "reached_target": rule.target is None or confidence >= rule.target,
        "model_version": versions.get(name),
        "details": agg.details,
    }


def after_response(
    conn: Connection,
    task: dict[str, Any],
    project: Mapping[str, Any],
    spec: CompiledSpec,
    *,
    counts_unsaved: bool = False,
) -> dict[str, Any]:
    """Score a task that has all the judgments it asked for, then complete it or ask one more worker.

    Called in the submit's transaction once ``response_count`` reached the task's current overlap.
    ``counts_unsaved``: the task's ``response_count`` and ``lease_count`` are new values not yet
    written (the submit leaves them to the one UPDATE that stores the result).
    """
    rules = completion_rules(project)
    responses = repo.responses_of_task(conn, task["organization_id"], task["id"])
    models, versions = current_models(conn, project, spec)
    result, confidence = build_result(spec, rules, responses, models, versions)
    decision = rules.decide(human_count(responses), result["confidence"], task["fixed_overlap"])
    counts = {key: task[key] for key in ("response_count", "lease_count")} if counts_unsaved else {}
    if decision.complete:
        return _complete(conn, task, result, confidence, decision, rules, counts)
    return _ask_one_more(conn, task, result, confidence, decision, counts)


def _complete(
    conn: Connection,
    task: dict[str, Any],
    result: dict[str, Any],
    confidence: float | None,
    decision: Decision,
    rules: CompletionRules,
    counts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    result["low_confidence"] = bool(decision.below_target)
    values = {"result": result, "confidence": confidence, **(counts or {})}
    task = lifecycle.move(conn, task, TaskStatus.COMPLETED, **values)
    retraining.note_completed(conn, task, rules)  # the policy's retrain: a counter, rarely a query
    enqueue_scale_callback(conn, task)  # a task made through /scale/v1 with a callback_url (compat/scale)
    add_event(
        conn,
        task,
        "completed",
        {"outcome": str(decision.outcome), "below_target": list(decision.below_target), "confidence": confidence},
    )
    # at max overlap with "review", low confidence, a sample, or rejected before: to the review queue
    task = review.send_to_review_if_due(conn, task, decision, rules)
    event = {"task": webhooks.task_data(task)}
    webhooks.emit(conn, task["organization_id"], task["project_id"], "task.completed", event)
    mark_batch_completed_if_done(conn, task["organization_id"], task["batch_id"])
    return task


def complete_task(
    conn: Connection, task: dict[str, Any], result: dict[str, Any], confidence: float | None, rules: CompletionRules
) -> dict[str, Any]:
    """Complete a task with a result decided elsewhere (services/auto_label.py): the path people's take."""
    return _complete(conn, task, result, confidence, Decision(Outcome.COMPLETE), rules)


def _ask_one_more(
    conn: Connection,
    task: dict[str, Any],
    result: dict[str, Any],
    confidence: float | None,
    decision: Decision,
    counts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Below target: one more judgment. The task has a free slot again, so the queue's epoch moves on."""
    overlap = task["response_count"] + 1
    now = utcnow()
    repo.change(
        conn,
        t.tasks,
        task["organization_id"],
        task["id"],
        overlap=overlap,
        result=result,
        confidence=confidence,
        updated_at=now,
        **(counts or {}),
    )
    repo.bump_queue_epoch(conn, task["project_id"])
    below = list(decision.below_target)
    add_event(conn, task, "overlap_raised", {"overlap": overlap, "below_target": below, "confidence": confidence})
    return {**task, "overlap": overlap, "result": result, "confidence": confidence, "updated_at": now}

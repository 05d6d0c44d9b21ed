"""Model workers in the quality loop (services): a model counts toward a task's answer only with the
weight a fit has measured, never toward the overlap; racing uploads make one model worker."""

from __future__ import annotations

import json
import random
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from truthset.domain import TaskStatus, WorkerKind
from truthset.schemas import PredictionUpload, QualityPolicy, ResponseCreate
from truthset.services import predictions, queue, refit, results
from truthset.services.projects import compiled_spec
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

BINARY = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
FLIP = {"positive": "negative", "negative": "positive"}


def _predict(
    org: Org, project_id: str, answers: dict[str, str], version: str = "1", score: float = 0.9
) -> dict[str, Any]:
    items = [{"task_id": k, "question": "sentiment", "answer": a, "score": score} for k, a in answers.items()]
    body = PredictionUpload(model="clf", version=version, predictions=items)
    return predictions.upload_predictions(org.db, org.owner.principal, project_id, body)


def _answer(org: Org, worker: Any, task_id: str, sentiment: str) -> dict[str, Any]:
    queue.submit(org.db, worker.principal, task_id, ResponseCreate(answer={"sentiment": sentiment}))
    return org.task(task_id)


def _dynamic_project(
    org: Org, n: int, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]], random.Random, dict[str, str]]:
    """A dynamic-overlap project (target 0.8) with ``n`` tasks of overlap 3 and their seeded truth."""
    quality = {"min_overlap": 1, "max_overlap": 5, "target_confidence": 0.8}
    project = org.make_project(spec=BINARY, quality=quality)
    rng = random.Random(seed)
    train = org.make_tasks(project["id"], n, overlap=3)
    return project, train, rng, {task["id"]: rng.choice(["positive", "negative"]) for task in train}


def _people_answer(org: Org, truth: dict[str, str], rng: random.Random) -> None:
    """Three people answer every task, right 90%, 85% and 75% of the time."""
    people = [(org.add_member(), accuracy) for accuracy in (0.9, 0.85, 0.75)]
    for task_id, right in truth.items():
        for person, accuracy in people:
            _answer(org, person, task_id, right if rng.random() < accuracy else FLIP[right])


def test_a_model_counts_only_with_the_weight_a_fit_measured(org: Org) -> None:
    project, train, rng, truth = _dynamic_project(org, 40, seed=7)
    # history: 40 tasks with three people each (right 90%, 85%, 75% of the time) and a model always right
    _predict(org, project["id"], truth)
    _people_answer(org, truth, rng)
    done = org.task(train[0]["id"])
    assert done["status"] == str(TaskStatus.COMPLETED)
    assert done["result"]["response_count"] == 3 and done["result"]["predictions"] == 1

    # before any fit the model has earned nothing: one person agreeing with it is one person (0.7)
    before = org.make_task(project["id"], "before the fit")
    _predict(org, project["id"], {before["id"]: "positive"})
    first = _answer(org, org.add_member(), before["id"], "positive")
    assert first["status"] == str(TaskStatus.PENDING) and first["overlap"] == 2
    assert first["result"]["confidence"]["sentiment"] == pytest.approx(0.7)

    fitted = refit.refit_project(org.db, org.id, project["id"])
    assert "sentiment" in fitted["fitted"]
    rescored = org.task(train[0]["id"])
    assert rescored["result"]["response_count"] == 3  # a refit counts people, not the model
    # the fit reads the model's answers, but counts people per task as tasks do: a task is not picked
    # for re-scoring on every refit merely because it has a prediction
    with org.db.snapshot() as conn:
        answers, counts, predicted = refit._fitted_answers(conn, org.id, project["id"], compiled_spec(project))
    assert counts[train[0]["id"]] == 3 and predicted[train[0]["id"]] == 1 and len(answers["sentiment"][0]) == 4 * 40 + 2
    # measured as reliable, the model now adds its weight: one person agreeing with it is enough
    after = org.make_task(project["id"], "after the fit")
    _predict(org, project["id"], {after["id"]: "negative"})
    second = _answer(org, org.add_member(), after["id"], "negative")
    assert second["status"] == str(TaskStatus.COMPLETED) and second["response_count"] == 1
    assert second["result"]["confidence"]["sentiment"] > 0.8
    # and a person against it is not overruled by it alone: the task asks for more people
    against = org.make_task(project["id"], "against the model")
    _predict(org, project["id"], {against["id"]: "negative"})
    third = _answer(org, org.add_member(), against["id"], "positive")
    assert third["status"] == str(TaskStatus.PENDING) and third["overlap"] == 2


def test_on_a_task_only_the_newest_version_of_a_model_counts(org: Org) -> None:
    project, train, rng, truth = _dynamic_project(org, 60, seed=11)
    # two versions of one model, both always right (one model's opinion), each known to the fit:
    # version 1 predicted every task, version 2 (newer) the last 40
    _predict(org, project["id"], truth, version="1")
    _predict(org, project["id"], dict(list(truth.items())[20:]), version="2")
    _people_answer(org, truth, rng)
    refit.refit_project(org.db, org.id, project["id"])
    with org.db.snapshot() as conn:
        answers, _counts, predicted = refit._fitted_answers(conn, org.id, project["id"], compiled_spec(project))
    # both versions' predictions are stored (and counted as predictions); where both predicted, only
    # version 2's is fitted
    assert predicted[train[0]["id"]] == 1 and predicted[train[-1]["id"]] == 2
    assert len(answers["sentiment"][0]) == 4 * 60
    with org.db.read() as conn:
        models, _ = results.current_models(conn, project, compiled_spec(project))
        names = {row.id: row.name for row in conn.execute(select(t.workers.c.id, t.workers.c.name))}
    assert {"clf@1", "clf@2"} <= {names[w] for w in models["sentiment"].workers}

    both, newest_only = org.make_task(project["id"], "both versions"), org.make_task(project["id"], "version 2")
    _predict(org, project["id"], {both["id"]: "negative"}, version="1")
    _predict(org, project["id"], {both["id"]: "negative", newest_only["id"]: "negative"}, version="2")
    person = org.add_member()
    with_both, with_newest = (_answer(org, person, task["id"], "negative") for task in (both, newest_only))
    # version 1 adds nothing where version 2 answered: the same confidence as version 2 alone
    assert with_both["result"]["confidence"] == with_newest["result"]["confidence"]
    assert with_both["result"]["predictions"] == 2
    with org.db.read() as conn:
        older = conn.execute(
            select(t.responses.c.id)
            .join(t.workers, t.workers.c.id == t.responses.c.worker_id)
            .where(t.responses.c.task_id == both["id"], t.workers.c.name == "clf@1")
        ).scalar_one()
    assert with_both["result"]["superseded_predictions"] == [older]
    assert "superseded_predictions" not in with_newest["result"]

    # a version the fit does not know yet has earned nothing: the known one keeps counting until a refit
    pending = org.make_task(project["id"], "version 3 arrives")
    _predict(org, project["id"], {pending["id"]: "negative"}, version="2")
    _predict(org, project["id"], {pending["id"]: "negative"}, version="3")
    unmeasured = _answer(org, org.add_member(), pending["id"], "negative")
    assert unmeasured["result"]["confidence"] == with_newest["result"]["confidence"]  # version 2's vote
    assert "superseded_predictions" not in unmeasured["result"]


def test_a_task_with_only_a_models_answer_never_completes(org: Org) -> None:
    project = org.make_project(spec=BINARY, overlap=1)
    (task,) = org.make_tasks(project["id"], 1)
    report = _predict(org, project["id"], {task["id"]: "positive"})
    assert report["stored"] == 1
    stored = org.task(task["id"])
    assert stored["status"] == str(TaskStatus.PENDING) and stored["response_count"] == 0
    assert stored["result"] is None


def test_racing_uploads_of_one_version_make_one_model_worker(org: Org) -> None:
    project = org.make_project(spec=BINARY, overlap=1)
    tasks = org.make_tasks(project["id"], 8)
    halves = [{t_["id"]: "positive" for t_ in tasks[:4]}, {t_["id"]: "negative" for t_ in tasks[4:]}]
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda answers: _predict(org, project["id"], answers, version="race"), halves))
    assert reports[0]["worker_id"] == reports[1]["worker_id"]
    assert sum(r["stored"] for r in reports) == 8
    with org.db.read() as conn:
        query = select(t.workers.c.id).where(
            t.workers.c.organization_id == org.id, t.workers.c.kind == str(WorkerKind.MODEL)
        )
        assert len(conn.execute(query).all()) == 1


def test_the_best_prediction_is_the_most_reliable_models_then_the_higher_score(org: Org) -> None:
    project = org.make_project(spec=BINARY, overlap=1, quality={"overlap": 1, "prefill_predictions": True})
    (task,) = org.make_tasks(project["id"], 1)
    for version, answer, score in (("a", "positive", 0.6), ("b", "negative", 0.95)):
        items = [{"task_id": task["id"], "question": "sentiment", "answer": answer, "score": score}]
        predictions.upload_predictions(
            org.db, org.owner.principal, project["id"], PredictionUpload(model="m", version=version, predictions=items)
        )
    # no fit yet: neither model has measured reliability, so the higher score wins
    lease = queue.next_assignment(org.db, org.add_member().principal, project["id"])
    assert lease is not None and lease["predictions"]["sentiment"]["model"] == "m@b"


def test_the_policy_example_in_docs_models_md_is_a_valid_policy() -> None:
    text = (Path(__file__).parents[2] / "docs" / "models.md").read_text()
    # every policy example of the page is valid (pre-fill's, retraining's, ...)
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    policies = [QualityPolicy.model_validate(json.loads(block)["quality"]) for block in blocks]
    assert any(policy.prefill_predictions for policy in policies) and QualityPolicy().prefill_predictions is False

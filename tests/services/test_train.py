"""The built-in text model trained by a ``model.train`` job (services/model_training.py), on SQLite and
PostgreSQL: labels from trusted results, a stored version with metrics above the baseline, predictions
of the waiting tasks stored as a model worker's responses, unchanged data, not enough data."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from learners.synthetic import tagged, tickets
from truthset.config import Settings
from truthset.domain import Role, TaskStatus, WorkerKind
from truthset.errors import InvalidInput
from truthset.jobs import Runner
from truthset.learners import text_classifier as tc
from truthset.schemas import ProjectUpdate, ResponseCreate
from truthset.services import gold, jobs, model_training, projects, queue, review, tasks
from truthset.services import quality as quality_figures
from truthset.services.projects import load_project
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "topic", "type": "label", "options": ["billing", "shipping", "bug"]},
        {"name": "note", "type": "text", "required": False},
    ],
}
LABELED, WAITING = 150, 50


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def _project(org: Org, quality: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str], list[str], list[str]]:
    """A project of synthetic support tickets: LABELED answered by three people, WAITING not yet."""
    project = org.make_project(spec=SPEC, quality=quality or {"overlap": 1})
    examples, labels = tickets(LABELED + WAITING, seed=3, noise=0.0)
    items = [(i + 1, {"data": dict(task.data), "unique_id": task.key}) for i, task in enumerate(examples)]
    tasks.import_tasks(org.db, org.owner.principal, project["id"], items)
    by_key = {task["unique_id"]: task["id"] for task in org.all_tasks()}
    ids = [by_key[task.key] for task in examples]
    people = [org.add_member() for _ in range(3)]
    for index, (task_id, label) in enumerate(zip(ids[:LABELED], labels[:LABELED], strict=True)):
        queue.submit(org.db, people[index % 3].principal, task_id, ResponseCreate(answer={"topic": label}))
    return project, ids[:LABELED], ids[LABELED:], labels


def _train(org: Org, settings: Settings, project_id: str, question: str = "topic") -> dict[str, Any]:
    job = model_training.request_training(org.db, org.owner.principal, project_id, question)
    Runner(org.db, kinds=[model_training.KIND], settings=settings).run_until_idle()
    done = jobs.get_job(org.db, org.owner.principal, job["id"])
    assert done["status"] == "succeeded", done
    return done["result"]


def _model_responses(org: Org, worker_name: str) -> list[dict[str, Any]]:
    w, r = t.workers, t.responses
    with org.db.read() as conn:
        worker = conn.execute(select(w).where(w.c.organization_id == org.id, w.c.name == worker_name)).mappings().one()
        assert worker["kind"] == str(WorkerKind.MODEL)
        return [dict(row) for row in conn.execute(select(r).where(r.c.worker_id == worker["id"])).mappings()]


def test_a_job_trains_stores_a_version_and_predicts_the_waiting_tasks(org: Org, settings: Settings) -> None:
    project, labeled, waiting, _labels = _project(org)
    assert org.task(labeled[0])["status"] == str(TaskStatus.COMPLETED)

    result = _train(org, settings, project["id"])
    assert result["status"] == "trained"
    metrics = result["metrics"]
    assert metrics["n_examples"] == LABELED and metrics["labels"]["confident"] == LABELED
    assert metrics["accuracy"] > metrics["baseline_accuracy"] + 0.2
    assert 0.0 <= metrics["ece"] <= 1.0

    (row,) = model_training.list_models(org.db, org.owner.principal, project["id"], cursor=None, limit=10)[0]
    assert row["version"] == result["version"] and row["question"] == "topic" and row["status"] == "ready"
    path = settings.data_dir / row["path"]
    assert row["path"] == f"models/{project['id']}/{row['version']}.skops"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not list(path.parent.glob("*.part"))
    loaded = model_training.load_model(org.db, org.owner.principal, row["id"], settings)
    assert loaded.version == row["version"]

    # every waiting task got the model's prediction, stored as the model worker's response
    assert result["predictions"] == {"stored": WAITING, "unchanged": 0, "invalid": 0}
    responses = _model_responses(org, result["model"])
    assert sorted(r["task_id"] for r in responses) == sorted(waiting)
    assert all(
        r["answer"]["topic"] in ("billing", "shipping", "bug") and 0 <= r["scores"]["topic"] <= 1 for r in responses
    )
    first = org.task(waiting[0])
    assert first["status"] == str(TaskStatus.PENDING) and first["response_count"] == 0  # no judgment


def test_the_same_data_is_unchanged_and_new_results_make_a_new_version(org: Org, settings: Settings) -> None:
    project, _labeled, waiting, _labels = _project(org)
    first = _train(org, settings, project["id"])
    again = _train(org, settings, project["id"])
    assert again["status"] == "unchanged" and again["version"] == first["version"]
    assert again["predictions"] == {"stored": 0, "unchanged": WAITING, "invalid": 0}
    assert len(model_training.list_models(org.db, org.owner.principal, project["id"], cursor=None, limit=10)[0]) == 1

    person = org.add_member()
    queue.submit(org.db, person.principal, waiting[0], ResponseCreate(answer={"topic": "bug"}))
    newer = _train(org, settings, project["id"])
    assert newer["status"] == "trained" and newer["version"] != first["version"]
    assert newer["metrics"]["n_examples"] == LABELED + 1
    assert newer["predictions"]["stored"] == WAITING - 1  # the answered task is no longer waiting
    page, cursor = model_training.list_models(org.db, org.owner.principal, project["id"], cursor=None, limit=1)
    assert [m["version"] for m in page] == [newer["version"]] and cursor is not None  # newest first
    rest, end = model_training.list_models(org.db, org.owner.principal, project["id"], cursor=cursor, limit=1)
    assert [m["version"] for m in rest] == [first["version"]] and end is None


def test_results_below_target_are_not_learned_from(org: Org, settings: Settings) -> None:
    # one judgment per task never reaches 0.99: every task completes flagged, below target
    quality = {"min_overlap": 1, "max_overlap": 1, "target_confidence": 0.99}
    project, _labeled, _waiting, _labels = _project(org, quality)
    result = _train(org, settings, project["id"])
    assert result["status"] == "not_enough_data"
    assert result["labels"] == {"gold": 0, "reviewed": 0, "confident": 0, "below_target": LABELED, "auto_labeled": 0}
    assert "not enough data" in result["message"] and "have 0 tasks" in result["message"]
    assert model_training.list_models(org.db, org.owner.principal, project["id"], cursor=None, limit=10)[0] == []


def test_a_swapped_model_file_is_refused(org: Org, settings: Settings) -> None:
    project, _labeled, _waiting, _labels = _project(org)
    _train(org, settings, project["id"])
    (row,) = model_training.list_models(org.db, org.owner.principal, project["id"], cursor=None, limit=10)[0]
    path = settings.data_dir / row["path"]
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(tc.ModelFileRefused, match="SHA-256"):
        model_training.load_model(org.db, org.owner.principal, row["id"], settings)


def test_only_a_label_question_of_the_project_is_trained(org: Org) -> None:
    project = org.make_project(spec=SPEC)
    for name in ("note", "missing"):
        with pytest.raises(InvalidInput, match="question") as caught:
            model_training.request_training(org.db, org.owner.principal, project["id"], name)
        assert caught.value.details == {"field": "question"}


def test_reviewed_and_gold_answers_are_learned_from_below_target(org: Org, settings: Settings) -> None:
    quality = {"min_overlap": 1, "max_overlap": 1, "target_confidence": 0.99}
    project, labeled, waiting, labels = _project(org, quality)
    reviewer = org.actor(Role.REVIEWER).principal
    for task_id in labeled[:18]:
        review.submit_review(org.db, reviewer, task_id, "accept")
    fixed = labeled[18:24]
    for task_id in fixed:  # a reviewer's fix is the label learned, whatever the people said
        review.submit_review(org.db, reviewer, task_id, "fix", answer={"topic": "bug"})
    for task_id, label in zip(waiting[:12], labels[LABELED : LABELED + 12], strict=True):
        gold.mark_gold(org.db, org.owner.principal, task_id, {"topic": label})

    with org.db.read() as conn:
        stored = load_project(conn, org.owner.principal, project["id"])
    examples, sources = model_training._labels(org.db, org.owner.principal, stored, "topic")
    assert sources == {"gold": 12, "reviewed": 24, "confident": 0, "below_target": LABELED - 24, "auto_labeled": 0}
    learned = {e.task.key: e.label for e in examples}
    assert all(learned[task_id] == "bug" for task_id in fixed)
    assert {learned[task_id] for task_id in waiting[:12]} == {"billing", "shipping", "bug"}

    result = _train(org, settings, project["id"])
    assert result["status"] == "trained" and result["metrics"]["n_examples"] == 36
    assert result["predictions"]["stored"] == WAITING - 12  # gold tasks are not waiting

    # each gold task it learned from got its out-of-fold prediction (a classifier that never saw
    # that answer), graded on gold like anyone's answer: the version's gold accuracy is honest
    assert result["gold_predictions"] == {"stored": 12, "unchanged": 0, "invalid": 0}
    truth = dict(zip(waiting[:12], labels[LABELED : LABELED + 12], strict=True))
    on_gold = [r for r in _model_responses(org, result["model"]) if r["task_id"] in truth]
    assert len(on_gold) == 12
    right = sum(r["answer"]["topic"] == truth[r["task_id"]] for r in on_gold)
    (figures,) = [
        f
        for f in quality_figures.project_workers(org.db, org.owner.principal, project["id"])[0]
        if f["name"] == result["model"]
    ]
    assert figures["gold_answers"] == 12 and figures["gold_accuracy"] == pytest.approx(right / 12)
    # the scores are the cross-validation's (the same seeds give the same folds), not the fitted model's
    classifier = tc.TextClassifier(model_training._question(stored, "topic"))
    classifier.evaluate([e.task for e in examples], [e.label for e in examples])
    for response in on_gold:
        assert response["scores"]["topic"] == pytest.approx(classifier.out_of_fold_[response["task_id"]].score)
    fitted = {p.task_key: p.score for p in classifier.predict([e.task for e in examples if e.task.key in truth])}
    assert any(fitted[r["task_id"]] != pytest.approx(r["scores"]["topic"]) for r in on_gold)
    assert _train(org, settings, project["id"])["gold_predictions"] == {"stored": 0, "unchanged": 12, "invalid": 0}


def test_an_archived_project_fails_the_job_at_once(org: Org, settings: Settings) -> None:
    project = org.make_project(spec=SPEC)
    job = model_training.request_training(org.db, org.owner.principal, project["id"], "topic")
    projects.update_project(org.db, org.owner.principal, project["id"], ProjectUpdate(archived=True))
    Runner(org.db, kinds=[model_training.KIND], settings=settings).run_until_idle()
    failed = jobs.get_job(org.db, org.owner.principal, job["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1 and "archived" in failed["error"]


def test_a_labels_question_learns_each_option(org: Org, settings: Settings) -> None:
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [{"name": "tags", "type": "labels", "options": ["urgent", "refund", "angry"]}],
    }
    project = org.make_project(spec=spec, quality={"overlap": 1})
    examples, labels = tagged(70, seed=2)
    examples, labels = zip(*[(e, tags) for e, tags in zip(examples, labels, strict=True) if tags], strict=True)
    items = [(i + 1, {"data": dict(task.data), "unique_id": task.key}) for i, task in enumerate(examples)]
    tasks.import_tasks(org.db, org.owner.principal, project["id"], items)
    ids = [{task["unique_id"]: task["id"] for task in org.all_tasks()}[task.key] for task in examples]
    person = org.add_member()
    for task_id, tags in zip(ids[:-5], labels[:-5], strict=True):
        queue.submit(org.db, person.principal, task_id, ResponseCreate(answer={"tags": list(tags)}))

    result = _train(org, settings, project["id"], "tags")
    assert result["status"] == "trained" and result["metrics"]["accuracy"] > result["metrics"]["baseline_accuracy"]
    assert result["predictions"]["stored"] == 5
    responses = _model_responses(org, result["model"])
    assert all(set(r["answer"]["tags"]) <= {"urgent", "refund", "angry"} for r in responses)


def test_auto_labeled_results_are_not_learned_from(org: Org, settings: Settings) -> None:
    """A task a model completed with nobody's answer teaches the model its own mistakes: it is left out
    of the training labels (and of the retraining policy's count)."""
    from truthset.services import results, retraining
    from truthset.services.completion import completion_rules

    project, _labeled, waiting, labels = _project(org)
    auto = waiting[:12]
    with org.db.write() as conn:
        stored = load_project(conn, org.owner.principal, project["id"])
        rules = completion_rules(stored)
        for task_id, label in zip(auto, labels[LABELED : LABELED + 12], strict=True):
            task = org.task(task_id)
            result = {
                "answer": {"topic": label},
                "confidence": {"topic": 0.99},
                "response_count": 0,
                "auto_label": {"worker_id": "a model"},
            }
            results.complete_task(conn, task, result, 0.99, rules)
        counted = retraining.label_counts(conn, org.id, project["id"], "topic", rules)
    assert counted["labels"] == LABELED
    result = _train(org, settings, project["id"])
    assert result["metrics"]["labels"]["auto_labeled"] == 12
    assert result["metrics"]["labels"]["confident"] == LABELED

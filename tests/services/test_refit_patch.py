"""A refit's fast path: results whose answers stay and whose confidences drift are patched in place.

The full re-score (build_result from each task's responses) stays for answers, ties and methods that
move, so a flipped answer is still in the history (tests/services/test_results.py); these tests check
that a patch writes what the full re-score would have written, and nothing else, and that it never
overwrites a result changed since it was read.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from truthset.domain import TaskStatus, Verdict
from truthset.schemas import ResponseCreate
from truthset.services import queue, refit, review
from truthset.services.completion import completion_rules
from truthset.services.projects import compiled_spec
from truthset.services.results import build_result, current_models
from truthset.storage import repositories as repo
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Actor, Org

BINARY = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
OPPOSITE = {"positive": "negative", "negative": "positive"}


def _answer(org: Org, worker: Actor, task_id: str, sentiment: str) -> None:
    queue.submit(org.db, worker.principal, task_id, ResponseCreate(answer={"sentiment": sentiment}))


def _rows(org: Org, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    with org.db.read() as conn:
        query = select(t.tasks).where(t.tasks.c.id.in_(task_ids))
        return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def _events(org: Org, task_ids: list[str]) -> list[tuple[str, str]]:
    with org.db.read() as conn:
        query = select(t.task_events.c.task_id, t.task_events.c.kind).where(t.task_events.c.task_id.in_(task_ids))
        return sorted((row.task_id, row.kind) for row in conn.execute(query))


def _answered(org: Org, project: dict[str, Any], workers: list[Actor], n: int, wrong: float, rng: random.Random):
    """``n`` tasks answered by ``workers``: the first honest but wrong with probability ``wrong``, the
    second always right, the third always saying the opposite (a contrarian the fit learns to flip)."""
    first, honest, contrarian = workers
    for task in org.make_tasks(project["id"], n, overlap=3)[-n:]:  # (it lists the project's every task)
        truth = rng.choice(["positive", "negative"])
        _answer(org, first, task["id"], OPPOSITE[truth] if rng.random() < wrong else truth)
        _answer(org, honest, task["id"], truth)
        _answer(org, contrarian, task["id"], OPPOSITE[truth])


def _drifting_project(org: Org) -> tuple[dict[str, Any], list[Actor], list[str]]:
    """A fitted project with 12 tasks that only the first worker answered, then answers that show the
    first worker is less reliable than the first fit thought: the next refit moves the confidence of
    those lone answers, never their answer (the worker is still right more often than not)."""
    project = org.make_project(spec=BINARY, overlap=1)
    workers = [org.add_member(), org.add_member(), org.add_member()]
    rng = random.Random(0)
    _answered(org, project, workers, 40, 0.0, rng)
    lone = []
    for i, task in enumerate(org.make_tasks(project["id"], 12)[-12:]):
        _answer(org, workers[0], task["id"], "positive" if i % 3 else "negative")
        lone.append(task["id"])
    first = refit.refit(org.db, org.owner.principal, project["id"])
    assert first["fitted"]["sentiment"]["version"] == 1
    _answered(org, project, workers, 40, 0.3, rng)  # the first worker now errs on about 3 in 10
    return project, workers, lone


def _rebuilt(org: Org, project: dict[str, Any], task: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
    """What the full re-score would store for ``task`` under the current models."""
    spec = compiled_spec(project)
    with org.db.read() as conn:
        models, versions = current_models(conn, project, spec)
        responses = repo.responses_of_task(conn, org.id, task["id"])  # with each worker's name
    result, confidence = build_result(spec, completion_rules(project), responses, models, versions)
    result["low_confidence"] = task["result"]["low_confidence"]
    return result, confidence


def test_a_refit_that_only_shifts_confidences_patches_them(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    project, _, lone = _drifting_project(org)
    before = _rows(org, lone)
    events = _events(org, lone)
    rebuilt: list[str] = []
    full_chunk = refit._rescore_chunk

    def spy(db: Any, project_: Any, spec: Any, rules: Any, task_ids: list[str]) -> Any:
        rebuilt.extend(task_ids)
        return full_chunk(db, project_, spec, rules, task_ids)

    monkeypatch.setattr(refit, "_rescore_chunk", spy)
    second = refit.refit(org.db, org.owner.principal, project["id"])
    assert second["fitted"]["sentiment"]["version"] == 2
    assert not set(rebuilt) & set(lone)  # patched, not rebuilt from their responses
    after = _rows(org, lone)
    for task_id in lone:
        old, new = before[task_id], after[task_id]
        question = new["result"]["questions"]["sentiment"]
        assert question["answer"] == old["result"]["questions"]["sentiment"]["answer"]
        assert abs(question["confidence"] - old["result"]["questions"]["sentiment"]["confidence"]) >= 0.005
        assert question["model_version"] == 2
        # exactly what the full re-score would have stored: the new posterior's confidence
        assert (new["result"], new["confidence"]) == _rebuilt(org, project, new)
        assert new["confidence"] == question["confidence"] == new["result"]["confidence"]["sentiment"]
        untouched = {column for column in old if column not in ("result", "confidence")}
        assert {c: new[c] for c in untouched} == {c: old[c] for c in untouched}
    assert _events(org, lone) == events  # no answer moved: nothing new in the history


def test_a_review_between_the_read_and_the_write_wins_over_the_patch(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """The patch is computed outside the writer; a review that lands before it is written keeps its
    result (the UPDATE's guard is the stored result as it was read)."""
    project, _, lone = _drifting_project(org)
    victim, *others = lone
    reviewer = org.add_member("reviewer")
    write = refit._write_patches
    reviewed: dict[str, Any] = {}

    def review_first(db: Any, patches: list[dict[str, Any]]) -> None:
        assert victim in {patch["p_id"] for patch in patches}
        reviewed.update(review.submit_review(org.db, reviewer.principal, victim, Verdict.ACCEPT)["task"])
        write(db, patches)

    monkeypatch.setattr(refit, "_write_patches", review_first)
    refit.refit(org.db, org.owner.principal, project["id"])
    after = _rows(org, lone)
    kept = after[victim]
    assert kept["status"] == str(TaskStatus.COMPLETED)
    assert kept["result"] == reviewed["result"] and kept["result"]["review"]["verdict"] == "accept"
    assert kept["result"]["questions"]["sentiment"]["model_version"] == 1  # the patch did not land
    assert kept["confidence"] == reviewed["confidence"]
    assert all(after[task_id]["result"]["questions"]["sentiment"]["model_version"] == 2 for task_id in others)


def test_a_result_that_is_not_what_the_refit_compared_goes_the_full_way(org: Org) -> None:
    """A drifted task whose stored result no longer matches what the refit read (here: another answer
    count) is not patched from the refit's posteriors but rebuilt by the full re-score."""
    project, _, lone = _drifting_project(org)
    spec, rules = compiled_spec(project), completion_rules(project)
    with org.db.read() as conn:
        models, _ = current_models(conn, project, spec)
    stored = _rows(org, lone[:1])[lone[0]]
    posterior = models["sentiment"].posterior(
        [stored["result"]["workers"][0]], [stored["result"]["answer"]["sentiment"]]
    )
    patched = refit._patched(stored["result"], 1, {"sentiment": posterior}, rules, models, {"sentiment": 1})
    assert patched is not None and patched[1] == round(float(posterior.max()), 6)
    assert refit._patched(stored["result"], 2, {"sentiment": posterior}, rules, models, {"sentiment": 1}) is None
    flipped = posterior[::-1].copy()  # the new posterior names the other answer: never a patch
    assert refit._patched(stored["result"], 1, {"sentiment": flipped}, rules, models, {"sentiment": 1}) is None
    reviewed = {**stored["result"], "review": {"verdict": "accept"}}
    assert refit._patched(reviewed, 1, {"sentiment": posterior}, rules, models, {"sentiment": 1}) is None


def test_an_optional_question_a_task_has_no_answer_to_moves_nothing(org: Org) -> None:
    """A task without an answer to an optional categorical question has nothing of it to re-score:
    a refit that moves nothing else leaves it alone (it was rebuilt from its responses every refit)."""
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [
            {"name": "sentiment", "type": "label", "options": ["positive", "negative"]},
            {"name": "topic", "type": "label", "options": ["news", "sport"], "required": False},
        ],
    }
    project = org.make_project(spec=spec, overlap=3)
    workers = [org.add_member(), org.add_member(), org.add_member()]
    rng = random.Random(1)
    for task in org.make_tasks(project["id"], 30):
        truth, topic = rng.choice(["positive", "negative"]), rng.choice(["news", "sport"])
        for worker in workers:
            body = ResponseCreate(answer={"sentiment": truth, "topic": topic})
            queue.submit(org.db, worker.principal, task["id"], body)
    without = org.make_tasks(project["id"], 5)[-5:]
    for task in without:
        for worker in workers:
            _answer(org, worker, task["id"], "positive")
    assert set(refit.refit(org.db, org.owner.principal, project["id"])["fitted"]) == {"sentiment", "topic"}
    with org.db.snapshot() as conn:
        answers, counts, predicted = refit._fitted_answers(conn, org.id, project["id"], compiled_spec(project))
        models, _ = current_models(conn, project, compiled_spec(project))
    assert all("topic" not in _rows(org, [task["id"]])[task["id"]]["result"]["questions"] for task in without)
    moves = refit._moved_tasks(org.db, project, models, answers, (counts, predicted))
    assert moves.rescore == [] and moves.drifted == {}


def test_a_prediction_on_a_completed_task_is_in_its_result_after_the_next_refit(org: Org) -> None:
    """Predictions uploaded after the tasks completed: the next refit fits the model worker and
    rebuilds those results from every response, predictions included, as build_result would."""
    from truthset.schemas import PredictionUpload
    from truthset.services import predictions

    project, _, lone = _drifting_project(org)
    upload = PredictionUpload.model_validate(
        {
            "model": "sentiment-model",
            "version": "1",
            "predictions": [
                {"task_id": task_id, "question": "sentiment", "answer": "positive", "score": 0.8} for task_id in lone
            ],
        }
    )
    assert predictions.upload_predictions(org.db, org.owner.principal, project["id"], upload)["stored"] == len(lone)
    refit.refit(org.db, org.owner.principal, project["id"])  # fits the model worker too
    for task in _rows(org, lone).values():
        assert task["result"]["predictions"] == 1  # the refit found the prediction no result counted
        assert (task["result"], task["confidence"]) == _rebuilt(org, project, task)

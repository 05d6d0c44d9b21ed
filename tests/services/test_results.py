"""Results from the quality engine, the dynamic-overlap policy, and refits recorded in a task's history."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from truthset.domain import TaskStatus
from truthset.errors import InvalidInput
from truthset.schemas import ProjectCreate, ResponseCreate
from truthset.services import projects, queue, refit
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

BINARY = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}


def _answer(org: Org, worker: Any, task_id: str, sentiment: str, **more: Any) -> dict[str, Any]:
    reply = queue.submit(org.db, worker.principal, task_id, ResponseCreate(answer={"sentiment": sentiment, **more}))
    return {**reply, "task": org.task(task_id)}  # an annotator's reply hides the status and result


def _events(org: Org, task_id: str) -> list[dict[str, Any]]:
    with org.db.read() as conn:
        query = select(t.task_events).where(t.task_events.c.task_id == task_id).order_by(t.task_events.c.id)
        return [dict(row) for row in conn.execute(query).mappings()]


def _task(org: Org, task_id: str) -> dict[str, Any]:
    with org.db.read() as conn:
        return dict(conn.execute(select(t.tasks).where(t.tasks.c.id == task_id)).mappings().one())


def test_two_agreeing_workers_complete_a_task_at_a_low_target(org: Org) -> None:
    quality = {"min_overlap": 1, "max_overlap": 5, "target_confidence": 0.8}
    project = org.make_project(quality=quality)
    (task,) = org.make_tasks(project["id"], 1)
    assert task["overlap"] == 1
    first = _answer(org, org.add_member(), task["id"], "positive")["task"]
    # one answer before any fit: 0.7, below 0.8, so the task asks for one more worker
    assert first["status"] == str(TaskStatus.PENDING) and first["overlap"] == 2
    assert first["result"]["confidence"]["sentiment"] == pytest.approx(0.7)
    second = _answer(org, org.add_member(), task["id"], "positive")["task"]
    assert second["status"] == str(TaskStatus.COMPLETED)
    assert second["result"]["answer"] == {"sentiment": "positive"}
    assert second["confidence"] == pytest.approx(0.49 / (0.49 + 2 * 0.0225))
    assert second["result"]["low_confidence"] is False
    assert [e["kind"] for e in _events(org, task["id"])] == ["overlap_raised", "completed"]


def test_a_split_is_a_tie_never_the_first_option(org: Org) -> None:
    project = org.make_project(spec=BINARY, overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    _answer(org, org.add_member(), task["id"], "negative")
    done = _answer(org, org.add_member(), task["id"], "positive")["task"]
    question = done["result"]["questions"]["sentiment"]
    assert done["status"] == str(TaskStatus.COMPLETED)
    assert question["answer"] is None and sorted(question["tie"]) == ["negative", "positive"]
    assert question["confidence"] == pytest.approx(0.5)


def test_at_max_overlap_a_task_completes_flagged_or_goes_to_review(org: Org) -> None:
    for at_max, review_status in (("complete", None), ("review", "pending")):
        quality = {"min_overlap": 1, "max_overlap": 3, "target_confidence": 0.99, "at_max_overlap": at_max}
        project = org.make_project(spec=BINARY, quality=quality)
        (task,) = org.make_tasks(project["id"], 1)
        for sentiment in ("positive", "negative", "positive"):
            done = _answer(org, org.add_member(), task["id"], sentiment)["task"]
        assert done["status"] == str(TaskStatus.COMPLETED) and done["response_count"] == 3
        assert done["result"]["low_confidence"] is True and done["result"]["answer"] == {"sentiment": "positive"}
        assert _task(org, task["id"])["review_status"] == review_status
        assert _events(org, task["id"])[-1]["data"]["below_target"] == ["sentiment"]


def test_only_deciding_questions_gate_completion(org: Org) -> None:
    # stars is optional, so not deciding: one rating of it (2/3 confident) does not hold the task back
    project = org.make_project(quality={"min_overlap": 1, "max_overlap": 3, "target_confidence": 0.9})
    (task,) = org.make_tasks(project["id"], 1)
    _answer(org, org.add_member(), task["id"], "neutral", stars=3)
    done = _answer(org, org.add_member(), task["id"], "neutral", stars=5)["task"]
    assert done["status"] == str(TaskStatus.COMPLETED)
    assert done["result"]["questions"]["stars"]["deciding"] is False
    assert done["result"]["confidence"]["stars"] < 0.9 <= done["confidence"]


def test_a_fixed_overlap_completes_at_it_whatever_the_confidence(org: Org) -> None:
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    _answer(org, org.add_member(), task["id"], "positive")
    done = _answer(org, org.add_member(), task["id"], "negative")["task"]
    assert done["status"] == str(TaskStatus.COMPLETED) and done["result"]["low_confidence"] is False


def test_a_policy_that_names_an_unknown_question_or_cannot_stop_is_refused(org: Org) -> None:
    for quality, field in (
        ({"questions": {"nope": {"min_overlap": 2}}}, "quality.questions"),
        ({"deciding": ["nope"]}, "quality.deciding"),
    ):
        with pytest.raises(InvalidInput) as caught:
            org.make_project(quality=quality)
        assert caught.value.details["field"] == field and "nope" in caught.value.message
    with pytest.raises(ValueError, match="needs a target_confidence"):
        ProjectCreate.model_validate({"name": "p", "spec": BINARY, "quality": {"max_overlap": 3}})
    # a ceiling below the floor is the customer's budget, never raised in silence to min_overlap
    with pytest.raises(ValueError, match=r"max_overlap \(1\) must be at least min_overlap \(3\)"):
        ProjectCreate.model_validate({"name": "p", "spec": BINARY, "quality": {"min_overlap": 3, "max_overlap": 1}})
    policy = ProjectCreate.model_validate({"name": "p", "spec": BINARY, "quality": {"min_overlap": 3}}).quality
    assert (policy.min_overlap, policy.max_overlap) == (3, 3)  # no ceiling given: a fixed overlap


def test_a_refit_that_flips_an_answer_is_in_the_history(org: Org) -> None:
    """A worker who always says the opposite: alone, their answer is believed; once fitted, it is flipped."""
    project = org.make_project(spec=BINARY, overlap=1)
    contrarian = org.add_member()
    honest = [org.add_member(), org.add_member()]
    rng = random.Random(0)
    calibration = org.make_tasks(project["id"], 40, overlap=3)
    for task in calibration:
        truth = rng.choice(["positive", "negative"])
        for worker in honest:
            _answer(org, worker, task["id"], truth)
        _answer(org, contrarian, task["id"], "negative" if truth == "positive" else "positive")
    alone = org.make_task(project["id"])
    before = _answer(org, contrarian, alone["id"], "negative")["task"]
    assert before["result"]["answer"] == {"sentiment": "negative"}
    summary = refit.refit(org.db, org.owner.principal, project["id"])
    assert summary["fitted"]["sentiment"]["version"] == 1 and summary["changed_answers"] >= 1
    after = _task(org, alone["id"])
    assert after["result"]["answer"] == {"sentiment": "positive"}
    assert after["result"]["questions"]["sentiment"]["method"] == "dawid_skene"
    assert after["result"]["questions"]["sentiment"]["model_version"] == 1
    changed = [e for e in _events(org, alone["id"]) if e["kind"] == "refit_changed"]
    assert changed and changed[0]["data"]["answers"] == {"sentiment": {"from": "negative", "to": "positive"}}
    # the next task the contrarian answers is scored with the fitted model on submit
    later = org.make_task(project["id"])
    scored = _answer(org, contrarian, later["id"], "negative")["task"]
    assert scored["result"]["answer"] == {"sentiment": "positive"}


def _contrarian_project(org: Org) -> tuple[dict[str, Any], Any]:
    """40 tasks answered by two honest workers and one who always says the opposite; returns the
    project and the contrarian, whose lone answer a fitted model flips."""
    project = org.make_project(spec=BINARY, overlap=1)
    contrarian = org.add_member()
    honest = [org.add_member(), org.add_member()]
    rng = random.Random(0)
    for task in org.make_tasks(project["id"], 40, overlap=3):
        truth = rng.choice(["positive", "negative"])
        for worker in honest:
            _answer(org, worker, task["id"], truth)
        _answer(org, contrarian, task["id"], "negative" if truth == "positive" else "positive")
    return project, contrarian


def test_a_refit_that_moves_nothing_rewrites_nothing(org: Org) -> None:
    """Results are rewritten only when an answer, a tie, a method or a confidence (by 0.001) moves:
    stamping a new model version on every task made each refit's cost grow with the whole project."""
    project, _ = _contrarian_project(org)
    refit.refit(org.db, org.owner.principal, project["id"])
    with org.db.read() as conn:
        before = {row.id: row.result for row in conn.execute(select(t.tasks.c.id, t.tasks.c.result))}
    again = refit.refit(org.db, org.owner.principal, project["id"])
    assert again["fitted"]["sentiment"]["version"] == 2 and again["changed_answers"] == 0
    with org.db.read() as conn:
        after = {row.id: row.result for row in conn.execute(select(t.tasks.c.id, t.tasks.c.result))}
    assert after == before  # still model_version 1: what the stored answers were computed with


def test_a_refit_finds_a_result_whose_confidence_no_longer_matches_its_models(org: Org) -> None:
    """The refit compares every task's stored answer, method and confidence with its posterior under
    the new models at once, and re-scores exactly the ones that differ."""
    from sqlalchemy import update

    project, _ = _contrarian_project(org)
    refit.refit(org.db, org.owner.principal, project["id"])
    with org.db.read() as conn:
        victim, untouched = [dict(r) for r in conn.execute(select(t.tasks).limit(2)).mappings()]
    stale = {**victim["result"], "questions": {"sentiment": {**victim["result"]["questions"]["sentiment"]}}}
    stale["questions"]["sentiment"]["confidence"] = 0.5
    with org.db.write() as conn:
        conn.execute(update(t.tasks).where(t.tasks.c.id == victim["id"]).values(result=stale))
    refit.refit(org.db, org.owner.principal, project["id"])
    fixed, same = _task(org, victim["id"]), _task(org, untouched["id"])
    assert fixed["result"]["questions"]["sentiment"]["confidence"] != 0.5
    assert fixed["result"]["questions"]["sentiment"]["model_version"] == 2  # rewritten by the second refit
    assert same["result"] == untouched["result"]  # still model_version 1


def test_a_rescore_never_overwrites_a_result_changed_since_it_was_read(org: Org) -> None:
    """A refit re-scores outside the writer: a task whose result changed between the read and the
    write (a review, another refit) keeps what it has now."""
    from truthset.services.completion import completion_rules
    from truthset.services.projects import compiled_spec
    from truthset.services.results import current_models

    project, contrarian = _contrarian_project(org)
    alone = org.make_task(project["id"])
    _answer(org, contrarian, alone["id"], "negative")
    read_before = _task(org, alone["id"])  # the contrarian's lone "negative", by the prior
    refit.refit(org.db, org.owner.principal, project["id"])  # flips it to positive
    with org.db.read() as conn:
        models, versions = current_models(conn, project, compiled_spec(project))
        query = select(t.responses).where(t.responses.c.task_id == alone["id"])
        responses = [dict(r) for r in conn.execute(query).mappings()]
    spec, rules = compiled_spec(project), completion_rules(project)
    rescored = refit._rescore_task(read_before, responses, spec, rules, models, versions)
    assert rescored is not None and rescored.moved  # from the stale read, it would write a change...
    assert refit._write_rescored(org.db, [rescored]) == 0  # ...but the task is no longer as it was read
    flips = [e["data"]["answers"] for e in _events(org, alone["id"]) if e["kind"] == "refit_changed"]
    assert flips == [{"sentiment": {"from": "negative", "to": "positive"}}]  # the refit's one, not twice


def test_refit_needs_a_manager(org: Org) -> None:
    project = org.make_project()
    from truthset.errors import Forbidden

    with pytest.raises(Forbidden):
        refit.refit(org.db, org.actor("annotator").principal, project["id"])
    assert projects.get_project(org.db, org.owner.principal, project["id"])


def test_an_even_split_of_ratings_is_a_tie_not_rounded_up(org: Org) -> None:
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    _answer(org, org.add_member(), task["id"], "neutral", stars=2)
    done = _answer(org, org.add_member(), task["id"], "neutral", stars=3)["task"]
    stars = done["result"]["questions"]["stars"]
    assert stars["answer"] is None and stars["tie"] == [2, 3]
    assert done["result"]["answer"]["sentiment"] == "neutral"


def test_a_tie_is_no_result_to_agree_with(org: Org) -> None:
    from truthset.services import quality

    project = org.make_project(spec=BINARY, overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    _answer(org, org.add_member(), task["id"], "negative")
    _answer(org, org.add_member(), task["id"], "positive")
    figures, _ = quality.project_workers(org.db, org.owner.principal, project["id"], cursor=None, limit=10)
    assert [(f["compared_with_results"], f["agreement_with_results"]) for f in figures] == [(0, None), (0, None)]


def test_a_refit_calibrates_confidence_on_gold_once_there_is_enough(org: Org) -> None:
    from truthset.services import gold

    project = org.make_project(spec=BINARY, overlap=3)
    workers = [org.add_member() for _ in range(3)]
    rng = random.Random(1)
    made = org.make_tasks(project["id"], refit.MIN_GOLD_TO_CALIBRATE + 10)
    truths = {}
    for task in made:
        truths[task["id"]] = truth = rng.choice(["positive", "negative"])
        hard = rng.random() < 0.3  # hard items fool workers together
        for worker in workers:
            right = rng.random() < (0.35 if hard else 0.9)
            _answer(org, worker, task["id"], truth if right else ("negative" if truth == "positive" else "positive"))
    without = refit.refit(org.db, org.owner.principal, project["id"])["fitted"]["sentiment"]
    assert without["gold_tasks"] == 0
    for task in made[: refit.MIN_GOLD_TO_CALIBRATE]:
        gold.mark_gold(org.db, org.owner.principal, task["id"], {"sentiment": truths[task["id"]]})
    calibrated = refit.refit(org.db, org.owner.principal, project["id"])["fitted"]["sentiment"]
    assert calibrated["gold_tasks"] == refit.MIN_GOLD_TO_CALIBRATE
    assert calibrated["temperature"] != without["temperature"]

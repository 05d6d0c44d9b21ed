"""Auto-labeling with audits (services): an eligible model completes tasks without people, a seeded
share goes to people as audits, and disagreeing audits pause the model and reopen its unchecked work."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from truthset.config import Settings
from truthset.domain import TaskStatus, Verdict
from truthset.errors import NotFound
from truthset.jobs import Runner, handler_for
from truthset.schemas import AutoLabelPolicy, PredictionUpload, QualityPolicy, ResponseCreate, WebhookCreate
from truthset.services import auto_label, gold, history, predictions, quality, queue, refit, review, webhooks
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

BINARY = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
FLIP = {"positive": "negative", "negative": "positive"}


def _policy(target: float = 0.9, **auto: Any) -> dict[str, Any]:
    rules = {"min_accuracy": 0.8, "min_verified": 20, "audit_rate": 0.0, "audit_min_count": 3, **auto}
    return {"overlap": 1, "target_confidence": target, "auto_label": rules}


def _new(org: Org, project_id: str, n: int) -> list[dict[str, Any]]:
    """``n`` new tasks of the project (``make_tasks`` returns every task of the project)."""
    before = {task["id"] for task in org.all_tasks()}
    return [task for task in org.make_tasks(project_id, n) if task["id"] not in before]


def _predict(org: Org, project_id: str, answers: dict[str, str], score: float = 0.97, version: str = "1") -> dict:
    items = [{"task_id": k, "question": "sentiment", "answer": a, "score": score} for k, a in answers.items()]
    body = PredictionUpload(model="clf", version=version, predictions=items)
    return predictions.upload_predictions(org.db, org.owner.principal, project_id, body)


def _verified(org: Org, project_id: str, n: int, right: int, version: str = "1") -> str:
    """``n`` gold tasks the model predicted, ``right`` of them correctly; returns the model's worker id."""
    tasks = _new(org, project_id, n)
    for task in tasks:
        gold.mark_gold(org.db, org.owner.principal, task["id"], {"sentiment": "positive"})
    answers = {task["id"]: "positive" if i < right else "negative" for i, task in enumerate(tasks)}
    return _predict(org, project_id, answers, version=version)["worker_id"]


def _figures(org: Org, project_id: str, worker_id: str) -> dict[str, Any]:
    items, _ = quality.project_workers(org.db, org.owner.principal, project_id)
    return next(f for f in items if f["worker_id"] == worker_id)


def _kinds(org: Org, task_id: str) -> list[str]:
    return [step["kind"] for step in history.task_history(org.db, org.owner.principal, task_id)]


def test_an_eligible_models_confident_prediction_completes_a_task_without_people(org: Org) -> None:
    project = org.make_project(spec=BINARY, quality=_policy())
    worker_id = _verified(org, project["id"], 30, 30)
    sure, unsure = _new(org, project["id"], 2)
    _predict(org, project["id"], {sure["id"]: "negative"}, score=0.97)
    _predict(org, project["id"], {unsure["id"]: "negative"}, score=0.85, version="2")

    done = org.task(sure["id"])
    assert done["status"] == str(TaskStatus.COMPLETED) and done["response_count"] == 0
    result = done["result"]
    assert result["answer"] == {"sentiment": "negative"} and result["methods"] == {"sentiment": "model"}
    assert result["auto_label"]["worker_id"] == worker_id and result["auto_label"]["verified_tasks"] == 30
    low = result["auto_label"]["verified_interval"][0]
    # it auto-labels as the score capped at the lower end of what people measured reaches the
    # target, and states the score capped at the predictive probability of that record (30.5 / 31)
    details = result["questions"]["sentiment"]["details"]
    assert details["confidence_from"] == "score_capped" and details["lower_bound"] == pytest.approx(min(0.97, low))
    assert done["confidence"] == result["confidence"]["sentiment"] == pytest.approx(min(0.97, 30.5 / 31))
    assert not result["low_confidence"]
    steps = history.task_history(org.db, org.owner.principal, sure["id"])
    labeled = next(s for s in steps if s["kind"] == "auto_labeled")
    assert labeled["data"]["model"] == "clf@1" and labeled["worker_name"] == "clf@1"
    assert "completed" in [s["kind"] for s in steps]
    # a score below the target leaves the task to people (and model 2 is not even measured yet)
    assert org.task(unsure["id"])["status"] == str(TaskStatus.PENDING)

    figures = _figures(org, project["id"], worker_id)
    assert figures["auto_labeled"] == 1 and figures["auto_label_eligible"] is True
    assert figures["verified_tasks"] == 30 and figures["verified_accuracy"] == 1.0
    assert figures["suspended"] is None and figures["audits"] == 0 and figures["audit_agreement"] is None


def test_a_confident_prediction_below_target_after_the_cap_is_left_to_people(org: Org) -> None:
    # 20 of 20 right: the interval's lower end (about 0.89) is below the 0.9 target, whatever the score
    project = org.make_project(spec=BINARY, quality=_policy())
    worker_id = _verified(org, project["id"], 20, 20)
    (task,) = _new(org, project["id"], 1)
    _predict(org, project["id"], {task["id"]: "positive"}, score=0.99)
    assert org.task(task["id"])["status"] == str(TaskStatus.PENDING)
    assert _figures(org, project["id"], worker_id)["auto_label_eligible"] is True


@pytest.mark.parametrize(("verified", "right"), [(10, 10), (40, 28)], ids=["below_min_verified", "below_min_accuracy"])
def test_a_model_not_yet_trusted_never_auto_labels(org: Org, verified: int, right: int) -> None:
    project = org.make_project(spec=BINARY, quality=_policy())
    worker_id = _verified(org, project["id"], verified, right)
    tasks = _new(org, project["id"], 5)
    _predict(org, project["id"], {task["id"]: "positive" for task in tasks}, score=0.99)
    assert all(org.task(task["id"])["status"] == str(TaskStatus.PENDING) for task in tasks)
    assert auto_label.sweep(org.db, org.id, project["id"])["auto_labeled"] == 0
    figures = _figures(org, project["id"], worker_id)
    assert figures["auto_label_eligible"] is False and figures["auto_labeled"] == 0
    assert figures["verified_tasks"] == verified
    # the figures say why, in words a manager can act on
    expected = {10: "10 of the 20 verified tasks it needs", 40: "its verified accuracy is 70.0%, below 80.0%"}
    assert figures["auto_label_blocked_by"] == expected[verified]


def test_why_a_model_may_not_auto_label_names_what_would_change_it() -> None:
    policy = AutoLabelPolicy(min_accuracy=0.95, min_verified=50)
    # 200 tasks people completed, their answers 94% sure of the model's: it cannot reach 95% on them
    on_people = auto_label.Measured("w", verified=200, correct=188.0, certain=0)
    assert on_people.blocked_by(policy) == (
        "its verified accuracy is 94.0%, below 95.0%"
        " (people's answers count as surely as they are; gold and reviews count in full)"
    )
    # on gold alone the same figure needs no hint; 49 of 50 right is not yet sure enough
    assert auto_label.Measured("w", verified=200, correct=188.0, certain=200).blocked_by(policy) == (
        "its verified accuracy is 94.0%, below 95.0%"
    )
    low = gold.jeffreys_interval(49, 50)[0]
    assert auto_label.Measured("w", verified=50, correct=49.0, certain=50).blocked_by(policy) == (
        f"its verified accuracy is surely above {low:.1%} only, not 95.0%: too few verified tasks yet"
    )
    assert auto_label.Measured("w", verified=600, correct=600.0, certain=600).blocked_by(policy) is None


def test_without_the_policy_nothing_is_auto_labeled(org: Org) -> None:
    project = org.make_project(spec=BINARY, quality={"overlap": 1, "target_confidence": 0.9})
    worker_id = _verified(org, project["id"], 30, 30)
    (task,) = _new(org, project["id"], 1)
    _predict(org, project["id"], {task["id"]: "positive"}, score=0.99)
    stored = org.task(task["id"])
    assert stored["status"] == str(TaskStatus.PENDING) and stored["result"] is None
    assert auto_label.sweep(org.db, org.id, project["id"]) == {
        "project_id": project["id"],
        "reopened": 0,
        "auto_labeled": 0,
    }
    figures = _figures(org, project["id"], worker_id)
    assert figures["auto_label_eligible"] is False and figures["auto_labeled"] == 0
    assert figures["auto_label_blocked_by"] == "auto-labeling is off"
    assert QualityPolicy().auto_label is None


def test_the_seeded_audit_share_goes_to_people_and_the_outcome_is_recorded(org: Org) -> None:
    project = org.make_project(spec=BINARY, quality=_policy(audit_rate=0.5, audit_min_count=50))
    worker_id = _verified(org, project["id"], 30, 30)
    tasks = _new(org, project["id"], 12)
    _predict(org, project["id"], {task["id"]: "positive" for task in tasks})
    audited = {task["id"] for task in tasks if auto_label.audit_draw(task["id"]) < 0.5}
    assert 0 < len(audited) < len(tasks)
    for task in tasks:
        stored = org.task(task["id"])
        expected = TaskStatus.PENDING if task["id"] in audited else TaskStatus.COMPLETED
        assert stored["status"] == str(expected), task["id"]
    first, second, *_ = sorted(audited)
    assert "auto_label_audit" in _kinds(org, first) and "auto_labeled" not in _kinds(org, first)

    # people answer the audits like any task: one agrees with the model, one does not
    queue.submit(org.db, org.add_member().principal, first, ResponseCreate(answer={"sentiment": "positive"}))
    queue.submit(org.db, org.add_member().principal, second, ResponseCreate(answer={"sentiment": "negative"}))
    outcomes = {}
    for task_id in (first, second):
        (step,) = [
            s for s in history.task_history(org.db, org.owner.principal, task_id) if s["kind"] == "audit_outcome"
        ]
        outcomes[task_id] = step["data"]["agreed"]
    assert outcomes == {first: True, second: False}
    figures = _figures(org, project["id"], worker_id)
    assert (figures["audits"], figures["audits_agreed"], figures["audit_agreement"]) == (2, 1, 0.5)
    assert figures["auto_labeled"] == len(tasks) - len(audited) and figures["suspended"] is None


def _audited_and_labeled(org: Org, project_id: str, n: int) -> tuple[list[str], list[str]]:
    tasks = _new(org, project_id, n)
    _predict(org, project_id, {task["id"]: "positive" for task in tasks})
    audited = sorted(task["id"] for task in tasks if auto_label.audit_draw(task["id"]) < 0.5)
    labeled = sorted(task["id"] for task in tasks if task["id"] not in audited)
    return audited, labeled


def test_disagreeing_audits_pause_the_model_and_reopen_its_unconfirmed_auto_labels(org: Org, tmp_path: Path) -> None:
    project = org.make_project(spec=BINARY, quality=_policy(target=0.85, audit_rate=0.5, audit_min_count=3))
    worker_id = _verified(org, project["id"], 30, 30)
    hook = WebhookCreate(url="https://93.184.216.34/hook", events=["model.suspended"])  # never contacted
    webhooks.create_webhook(org.db, Settings(data_dir=tmp_path), org.owner.principal, hook)
    audited, labeled = _audited_and_labeled(org, project["id"], 16)
    assert len(audited) >= 3 and len(labeled) >= 2
    # a reviewer confirms one auto-label before the model fails its audits: it stays
    confirmed = labeled[0]
    review.submit_review(org.db, org.add_member("reviewer").principal, confirmed, Verdict.ACCEPT)
    for task_id in audited[:3]:
        queue.submit(org.db, org.add_member().principal, task_id, ResponseCreate(answer={"sentiment": "negative"}))

    figures = _figures(org, project["id"], worker_id)
    assert figures["suspended"] is not None and figures["suspended"].startswith("audits below target: 0 of 3 agreed")
    assert figures["status"] == "paused" and figures["auto_label_eligible"] is False
    assert figures["auto_label_blocked_by"] == figures["suspended"]
    with org.db.read() as conn:
        jobs = conn.execute(t.jobs.select().where(t.jobs.c.kind == auto_label.JOB_KIND)).mappings().all()
        deliveries = conn.execute(t.webhook_deliveries.select()).mappings().all()
    assert [job["payload"] for job in jobs] == [{"project_id": project["id"]}]
    assert [d["event"] for d in deliveries] == ["model.suspended"]

    # its handler is an entry point of pyproject.toml (an install that predates it would loop here)
    assert handler_for(auto_label.JOB_KIND) is not None
    Runner(org.db, kinds=[auto_label.JOB_KIND]).run_until_idle()
    for task_id in labeled[1:]:
        reopened = org.task(task_id)
        assert reopened["status"] == str(TaskStatus.PENDING) and reopened["result"] is None
        step = next(
            s for s in history.task_history(org.db, org.owner.principal, task_id) if s["kind"] == "auto_label_reopened"
        )
        assert step["data"]["answer_before"] == {"sentiment": "positive"}
        assert step["data"]["reason"].startswith("audits below target")
    assert org.task(confirmed)["status"] == str(TaskStatus.COMPLETED)
    assert _figures(org, project["id"], worker_id)["auto_labels_reopened"] == len(labeled) - 1

    # paused, the model labels nothing more, even at upload
    (new,) = _new(org, project["id"], 1)
    _predict(org, project["id"], {new["id"]: "positive"})
    assert org.task(new["id"])["status"] == str(TaskStatus.PENDING)
    assert "auto_label_audit" not in _kinds(org, new["id"])

    # reinstated by a manager: the pause and the audit record restart, but the audits people
    # completed are verified tasks too: the model auto-labels again once its record supports it
    gold.reinstate(org.db, org.owner.principal, project["id"], worker_id)
    figures = _figures(org, project["id"], worker_id)
    assert figures["suspended"] is None and figures["audits"] == 0 and figures["status"] == "active"
    # 30 on gold and the reviewer's accept right; each of the 3 audits one person answered otherwise
    # counts the chance people's answer leaves to the model's (0.3 here): not surely wrong
    left = sum(
        org.task(task_id)["result"]["questions"]["sentiment"]["details"]["posterior"]["positive"]
        for task_id in audited[:3]
    )
    assert 0 < left < 3 and figures["verified_tasks"] == 34
    assert figures["verified_accuracy"] == pytest.approx((31 + left) / 34, abs=1e-6)
    low = gold.jeffreys_interval(31 + left, 34)[0]
    assert figures["auto_label_eligible"] is (low >= 0.8)
    _verified(org, project["id"], 30, 30)
    assert _figures(org, project["id"], worker_id)["auto_label_eligible"] is True
    # tasks the audit draw leaves to the model (half of them; with 24, none at all has odds of 6e-8:
    # with 6 it happened in one run of 64)
    more = [task for task in _new(org, project["id"], 24) if auto_label.audit_draw(task["id"]) >= 0.5]
    assert more
    _predict(org, project["id"], {task["id"]: "positive" for task in more})
    assert all(org.task(task["id"])["status"] == str(TaskStatus.COMPLETED) for task in more)
    # the backlog pass labels the task it predicted while paused, but a reopened task went to people
    # for good: no pass hands it back to the model
    audit = auto_label.audit_draw(new["id"]) < 0.5  # else it is left to people as an audit
    assert auto_label.sweep(org.db, org.id, project["id"])["auto_labeled"] == (0 if audit else 1)
    assert org.task(new["id"])["status"] == str(TaskStatus.PENDING if audit else TaskStatus.COMPLETED)
    assert all(org.task(task_id)["status"] == str(TaskStatus.PENDING) for task_id in labeled[1:])


def test_the_stated_confidence_rests_on_the_record_of_predictions_of_the_same_score(org: Org) -> None:
    project = org.make_project(spec=BINARY, quality=_policy(min_accuracy=0.7))
    # on gold: always right where it scored 0.99, right half the time where it scored 0.7
    sure_gold, unsure_gold = _new(org, project["id"], 60), _new(org, project["id"], 30)
    for task in [*sure_gold, *unsure_gold]:
        gold.mark_gold(org.db, org.owner.principal, task["id"], {"sentiment": "positive"})
    _predict(org, project["id"], {task["id"]: "positive" for task in sure_gold}, score=0.99)
    halves = {task["id"]: "positive" if i % 2 else "negative" for i, task in enumerate(unsure_gold)}
    _predict(org, project["id"], halves, score=0.7)
    # over all 90 (75 right) the lower end is about 0.75: the cap alone would never reach 0.9
    sure, unsure = _new(org, project["id"], 2)
    _predict(org, project["id"], {sure["id"]: "negative"}, score=0.99)
    _predict(org, project["id"], {unsure["id"]: "negative"}, score=0.7)
    done = org.task(sure["id"])
    assert done["status"] == str(TaskStatus.COMPLETED) and done["response_count"] == 0
    details = done["result"]["questions"]["sentiment"]
    assert details["details"]["confidence_from"] == "verified_band"
    # 60 of 60 in its band: the interval's lower end (0.96) let it auto-label, its mean is stated
    assert details["details"]["lower_bound"] == pytest.approx(gold.jeffreys_interval(60, 60)[0], abs=1e-6)
    assert details["confidence"] == pytest.approx(60.5 / 61, abs=1e-6)
    assert org.task(unsure["id"])["status"] == str(TaskStatus.PENDING)  # its band: 15 of 30


def test_the_backlog_is_labeled_once_the_model_becomes_eligible(org: Org) -> None:
    project = org.make_project(spec=BINARY, quality=_policy())
    waiting = _new(org, project["id"], 3)
    worker_id = _predict(org, project["id"], {task["id"]: "negative" for task in waiting})["worker_id"]
    assert all(org.task(task["id"])["status"] == str(TaskStatus.PENDING) for task in waiting)
    _verified(org, project["id"], 30, 30)  # the same version is measured on gold afterwards
    refit.refit_project(org.db, org.id, project["id"])  # a refit ends with the backlog pass
    labeled = [org.task(task["id"]) for task in waiting]
    assert all(task["status"] == str(TaskStatus.COMPLETED) for task in labeled)
    assert _figures(org, project["id"], worker_id)["auto_labeled"] == 3
    assert auto_label.sweep(org.db, org.id, project["id"])["auto_labeled"] == 0  # a rerun changes nothing
    # a refit never re-scores an auto-labeled result: the model's answer stands until people check it
    refit.refit_project(org.db, org.id, project["id"])
    assert [org.task(task["id"])["result"] for task in waiting] == [task["result"] for task in labeled]


def test_auto_label_figures_stay_in_their_organization(org: Org, other_org: Org) -> None:
    project = org.make_project(spec=BINARY, quality=_policy())
    worker_id = _verified(org, project["id"], 30, 30)
    (task,) = _new(org, project["id"], 1)
    _predict(org, project["id"], {task["id"]: "positive"})
    with pytest.raises(NotFound):
        quality.project_workers(org.db, other_org.owner.principal, project["id"])
    with pytest.raises(NotFound):
        quality.worker_stats(org.db, other_org.owner.principal, worker_id, project["id"])
    theirs = other_org.make_project(spec=BINARY, quality=_policy())
    their_worker = _verified(other_org, theirs["id"], 5, 5)
    assert their_worker != worker_id
    mine = quality.worker_stats(org.db, org.owner.principal, worker_id, project["id"])
    assert mine["auto_labeled"] == 1 and mine["verified_tasks"] == 30
    assert _figures(other_org, theirs["id"], their_worker)["auto_labeled"] == 0


def test_the_policy_is_checked_field_by_field() -> None:
    with pytest.raises(ValidationError) as raised:
        QualityPolicy.model_validate({"auto_label": {"min_accuracy": 1.5}})
    assert raised.value.errors()[0]["loc"] == ("auto_label", "min_accuracy")
    with pytest.raises(ValidationError) as raised:
        QualityPolicy.model_validate({"auto_label": {"audit_rate": -0.1}})
    assert raised.value.errors()[0]["loc"] == ("auto_label", "audit_rate")
    policy = AutoLabelPolicy()
    assert (policy.min_accuracy, policy.min_verified, policy.audit_rate, policy.audit_min_count) == (0.95, 50, 0.1, 20)
    assert policy.audit_target == 0.95 and AutoLabelPolicy(audit_min_agreement=0.9).audit_target == 0.9


def _record(org: Org, project: dict[str, Any], worker_id: str) -> auto_label.Measured:
    with org.db.read() as conn:
        return auto_label.measure(conn, project, [worker_id])[worker_id]


def test_a_task_the_models_own_vote_decided_does_not_verify_it(org: Org) -> None:
    # two people a task; never eligible here (min_verified too high): the record alone is under test
    project = org.make_project(spec=BINARY, quality={**_policy(min_verified=1000), "overlap": 2})
    tasks = _new(org, project["id"], 30)
    truth = {task["id"]: "positive" if i % 2 else "negative" for i, task in enumerate(tasks)}
    for task_id, answer in truth.items():
        gold.mark_gold(org.db, org.owner.principal, task_id, {"sentiment": answer})
    worker_id = _predict(org, project["id"], truth)["worker_id"]  # right on all 30
    refit.refit(org.db, org.owner.principal, project["id"])  # the fit now knows the model: its vote counts
    before = _record(org, project, worker_id)
    agreed, split = _new(org, project["id"], 2)
    _predict(org, project["id"], {agreed["id"]: "positive", split["id"]: "positive"})
    for task, answers in ((agreed, ("positive", "positive")), (split, ("positive", "negative"))):
        for answer in answers:
            queue.submit(org.db, org.add_member().principal, task["id"], ResponseCreate(answer={"sentiment": answer}))

    # people split 1-1 on one task: the model's vote decided it, and the result says people alone tied
    result = org.task(split["id"])["result"]
    assert result["answer"] == {"sentiment": "positive"} and result["people_answer"] == {"sentiment": None}
    agreed_result = org.task(agreed["id"])["result"]
    assert agreed_result["people_answer"] == {"sentiment": "positive"}
    # only the task people alone answered as the model did verifies it (right by its own vote is no
    # evidence), and as surely as people's answers without the model's vote are
    sure = agreed_result["people_posterior"]["sentiment"]["positive"]
    assert 0.5 < sure < agreed_result["questions"]["sentiment"]["confidence"]
    after = _record(org, project, worker_id)
    assert after.verified == before.verified + 1
    assert after.correct == pytest.approx(before.correct + sure, abs=1e-9)

"""Review: routing to review (sample, low confidence, at max overlap), the exclusive review lease,
accept / reject / fix, the figures a review feeds, a task's history, and who may review."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from conftest import until_not_busy
from truthset.domain import Principal, ReviewStatus, Role, TaskStatus, Verdict
from truthset.errors import Conflict, Forbidden, InvalidInput, NotFound
from truthset.schemas import GoldPolicy, ResponseCreate
from truthset.services import gold, history, lifecycle, projects, quality, queue, refit, review, tasks
from truthset.services.completion import Decision, Outcome, completion_rules
from truthset.services.tasks import TaskFilter
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

if TYPE_CHECKING:
    from conftest import Org


def _answer(org: Org, principal: Principal, project_id: str, sentiment: str) -> dict[str, Any]:
    lease = queue.next_assignment(org.db, principal, project_id)
    assert lease is not None
    body = ResponseCreate(answer={"sentiment": sentiment}, assignment_id=lease["id"])
    queue.submit(org.db, principal, lease["task"]["id"], body)
    return org.task(lease["task"]["id"])  # an annotator's reply hides the status and result


def _task(org: Org, task_id: str) -> dict[str, Any]:
    return tasks.get_task(org.db, org.owner.principal, task_id)


def _completed_task(org: Org, *, quality_policy: dict | None = None, sentiment: str = "positive") -> tuple:
    """A project sending every task to review, with one task answered by one annotator."""
    project = org.make_project(quality=quality_policy or {"overlap": 1, "review": {"sample_rate": 1.0}})
    (task,) = org.make_tasks(project["id"], 1)
    annotator = org.add_member(Role.ANNOTATOR)
    done = _answer(org, annotator.principal, project["id"], sentiment)
    assert done["status"] == str(TaskStatus.COMPLETED)
    return project, task, annotator


def _expire_claim(org: Org, task_id: str) -> None:
    """Move the clock: the task's review claim ended a second ago (no sleeping)."""
    past = (utcnow() - timedelta(seconds=1)).isoformat()
    with org.db.write() as conn:
        conn.execute(
            update(t.task_events)
            .where(t.task_events.c.task_id == task_id, t.task_events.c.kind == review.CLAIMED)
            .values(data={"expires_at": past})
        )


# --- routing -----------------------------------------------------------------------------------


def test_a_sample_rate_sends_the_tasks_whose_stable_draw_falls_under_it(org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "review": {"sample_rate": 0.3}})
    made = org.make_tasks(project["id"], 40)
    annotator = org.actor(Role.ANNOTATOR)
    for _ in made:
        _answer(org, annotator.principal, project["id"], "positive")
    sent = {
        task["id"] for task in org.all_tasks(TaskFilter(project_id=project["id"], review_status=ReviewStatus.PENDING))
    }
    expected = {task["id"] for task in made if review.sample_draw(task["id"]) < 0.3}
    assert sent == expected
    assert 0 < len(sent) < 40  # a real sample, not all or nothing
    assert review.sample_draw(made[0]["id"]) == review.sample_draw(made[0]["id"])


def test_no_review_policy_sends_nothing_to_review(org: Org) -> None:
    project = org.make_project(overlap=1)
    org.make_tasks(project["id"], 5)
    annotator = org.actor(Role.ANNOTATOR)
    for _ in range(5):
        _answer(org, annotator.principal, project["id"], "positive")
    assert all(task["review_status"] is None for task in org.all_tasks())


def test_low_confidence_tasks_go_to_review_and_confident_ones_do_not(org: Org) -> None:
    policy = {"overlap": 2, "target_confidence": 0.7, "review": {"low_confidence": True}}
    project = org.make_project(quality=policy)
    split, agreed = org.make_tasks(project["id"], 2)
    first, second = org.add_member(Role.ANNOTATOR), org.add_member(Role.ANNOTATOR)
    for principal, answers in (
        (first.principal, ("positive", "positive")),
        (second.principal, ("negative", "positive")),
    ):
        for answer in answers:
            _answer(org, principal, project["id"], answer)
    assert _task(org, split["id"])["review_status"] == str(ReviewStatus.PENDING)
    assert _task(org, agreed["id"])["review_status"] is None
    requested = [step for step in history.task_history(org.db, org.owner.principal, split["id"])]
    assert [s["data"]["reasons"] for s in requested if s["kind"] == review.REQUESTED] == [["low_confidence"]]


def test_at_max_overlap_review_routes_a_task_still_below_target(org: Org) -> None:
    project = org.make_project(quality={"overlap": 2, "target_confidence": 0.7, "at_max_overlap": "review"})
    (task,) = org.make_tasks(project["id"], 1)
    _answer(org, org.add_member().principal, project["id"], "positive")
    _answer(org, org.add_member().principal, project["id"], "negative")
    assert _task(org, task["id"])["review_status"] == str(ReviewStatus.PENDING)


def test_gold_tasks_and_unfinished_decisions_never_go_to_review(org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "review": {"sample_rate": 1.0, "low_confidence": True}})
    rules = completion_rules(project)
    task = {"id": "t1", "gold": None, "review_status": None}
    assert review.review_reasons(task, Decision(Outcome.COMPLETE), rules) == ["sampled"]
    assert review.review_reasons(task, Decision(Outcome.FLAGGED, ("sentiment",)), rules) == [
        "low_confidence",
        "sampled",
    ]
    assert review.review_reasons(task, Decision(Outcome.MORE, ("sentiment",)), rules) == []
    assert review.review_reasons({**task, "gold": {"sentiment": "positive"}}, Decision(Outcome.COMPLETE), rules) == []


# --- the review lease --------------------------------------------------------------------------


def test_one_pending_review_goes_to_one_reviewer_until_the_claim_expires(org: Org) -> None:
    project, task, _ = _completed_task(org)
    first, second = org.add_member(Role.REVIEWER), org.add_member(Role.REVIEWER)
    item = review.next_review(org.db, first.principal, project["id"])
    assert item is not None and item["task"]["id"] == task["id"]
    assert [r["answer"] for r in item["responses"]] == [{"sentiment": "positive"}]
    assert item["responses"][0]["worker_name"] is not None
    assert item["expires_at"] > utcnow()
    assert _task(org, task["id"])["review_status"] == str(ReviewStatus.REVIEWING)
    assert review.next_review(org.db, second.principal, project["id"]) is None
    with pytest.raises(Conflict) as refused:
        review.submit_review(org.db, second.principal, task["id"], Verdict.ACCEPT)
    assert refused.value.code == "review_claimed"
    _expire_claim(org, task["id"])
    again = review.next_review(org.db, second.principal, project["id"])
    assert again is not None and again["task"]["id"] == task["id"]


def test_concurrent_reviewers_never_share_a_task(org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "review": {"sample_rate": 1.0}})
    org.make_tasks(project["id"], 6)
    annotator = org.actor(Role.ANNOTATOR)
    for _ in range(6):
        _answer(org, annotator.principal, project["id"], "positive")
    reviewers = [org.add_member(Role.REVIEWER).principal for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        claims = [lambda p=p: review.next_review(org.db, p, project["id"]) for p in reviewers]
        items = list(pool.map(until_not_busy, claims))
    claimed = [item["task"]["id"] for item in items if item is not None]
    assert len(claimed) == 6 and len(set(claimed)) == 6


def test_a_worker_who_answered_a_task_never_reviews_it(org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "review": {"sample_rate": 1.0}})
    (task,) = org.make_tasks(project["id"], 1)
    reviewer = org.add_member(Role.REVIEWER)
    _answer(org, reviewer.principal, project["id"], "positive")  # reviewers may label too
    assert review.next_review(org.db, reviewer.principal, project["id"]) is None
    with pytest.raises(Forbidden):
        review.submit_review(org.db, reviewer.principal, task["id"], Verdict.ACCEPT)


def test_a_skipped_review_goes_to_another_reviewer_never_back(org: Org) -> None:
    project, task, _ = _completed_task(org)
    first, second = org.add_member(Role.REVIEWER), org.add_member(Role.REVIEWER)
    assert review.next_review(org.db, first.principal, project["id"]) is not None
    skipped = review.skip_review(org.db, first.principal, task["id"])
    assert skipped["review_status"] == str(ReviewStatus.PENDING)
    assert review.next_review(org.db, first.principal, project["id"]) is None
    item = review.next_review(org.db, second.principal, project["id"])
    assert item is not None and item["task"]["id"] == task["id"]


# --- verdicts ----------------------------------------------------------------------------------


def test_accept_records_the_review_on_the_result(org: Org) -> None:
    project, task, _ = _completed_task(org)
    reviewer = org.actor(Role.REVIEWER)
    review.next_review(org.db, reviewer.principal, project["id"])
    out = review.submit_review(org.db, reviewer.principal, task["id"], Verdict.ACCEPT)
    assert out["task"]["review_status"] == str(ReviewStatus.ACCEPTED)
    stored = _task(org, task["id"])
    assert stored["review_status"] == str(ReviewStatus.ACCEPTED)
    assert stored["result"]["answer"] == {"sentiment": "positive"}
    assert stored["result"]["review"]["verdict"] == "accept"
    assert stored["result"]["review"]["reviewer_id"] == reviewer.worker_id
    listed = review.list_reviews(org.db, org.owner.principal, task["id"])
    assert [(r["verdict"], r["reviewer_id"]) for r in listed] == [("accept", reviewer.worker_id)]


def test_a_reviewers_fix_changes_the_result(org: Org) -> None:
    project, task, _ = _completed_task(org, sentiment="positive")
    reviewer = org.actor(Role.REVIEWER)
    review.next_review(org.db, reviewer.principal, project["id"])
    out = review.submit_review(org.db, reviewer.principal, task["id"], Verdict.FIX, answer={"sentiment": "negative"})
    stored = _task(org, task["id"])
    assert stored["result"]["answer"]["sentiment"] == "negative"
    assert stored["result"]["methods"]["sentiment"] == review.FIX_METHOD
    fixed_question = stored["result"]["questions"]["sentiment"]
    assert (fixed_question["method"], fixed_question["answer"], fixed_question["crowd"]["answer"]) == (
        review.FIX_METHOD,
        "negative",
        "positive",
    )
    # one reviewer without a gold record: the policy's fix_confidence (0.95 by default), never 1.0
    assert stored["confidence"] == 0.95 and stored["result"]["low_confidence"] is False
    assert stored["result"]["confidence"]["sentiment"] == 0.95
    assert stored["review_status"] == str(ReviewStatus.FIXED)
    assert stored["status"] == str(TaskStatus.COMPLETED)
    responses = tasks.task_responses(org.db, org.owner.principal, task["id"])
    assert [r["worker_id"] for r in responses][-1] == reviewer.worker_id
    assert out["review"]["response_id"] == responses[-1]["id"]
    assert stored["response_count"] == 2


def test_a_fix_is_validated_against_the_spec(org: Org) -> None:
    _, task, _ = _completed_task(org)
    reviewer = org.actor(Role.REVIEWER)
    with pytest.raises(InvalidInput) as bad:
        review.submit_review(org.db, reviewer.principal, task["id"], Verdict.FIX, answer={"sentiment": "furious"})
    assert bad.value.details == {"field": "answer"} and "sentiment" in bad.value.message
    with pytest.raises(InvalidInput) as missing:
        review.submit_review(org.db, reviewer.principal, task["id"], Verdict.FIX)
    assert missing.value.details == {"field": "answer"}
    with pytest.raises(InvalidInput) as stray:
        review.submit_review(org.db, reviewer.principal, task["id"], Verdict.ACCEPT, answer={"sentiment": "positive"})
    assert stray.value.details == {"field": "answer"}
    assert _task(org, task["id"])["review_status"] == str(ReviewStatus.PENDING)  # nothing was stored


def test_reject_needs_a_reason_and_sends_the_task_back_for_more_judgments(org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "review": {"sample_rate": 1.0}})
    batch = org.make_batch(project["id"])
    (task,) = org.make_tasks(project["id"], 1, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    _answer(org, org.add_member().principal, project["id"], "positive")
    assert projects.get_batch(org.db, org.owner.principal, batch["id"])["status"] == "completed"
    reviewer = org.actor(Role.REVIEWER)
    with pytest.raises(InvalidInput) as no_reason:
        review.submit_review(org.db, reviewer.principal, task["id"], Verdict.REJECT, reason="  ")
    assert no_reason.value.details == {"field": "reason"}
    out = review.submit_review(org.db, reviewer.principal, task["id"], Verdict.REJECT, reason="sarcasm, not praise")
    back = _task(org, task["id"])
    assert out["task"]["status"] == back["status"] == str(TaskStatus.PENDING)
    assert back["review_status"] == str(ReviewStatus.REJECTED)
    assert back["overlap"] == 2 and back["result"] is None and back["completed_at"] is None
    assert projects.get_batch(org.db, org.owner.principal, batch["id"])["status"] == "finalized"
    # a new worker answers; the task completes again and goes back to review
    done = _answer(org, org.add_member().principal, project["id"], "negative")
    assert done["status"] == str(TaskStatus.COMPLETED) and done["response_count"] == 2
    assert _task(org, task["id"])["review_status"] == str(ReviewStatus.PENDING)
    assert projects.get_batch(org.db, org.owner.principal, batch["id"])["status"] == "completed"


def test_a_batch_wide_move_never_reopens_a_completed_task(org: Org) -> None:
    project = org.make_project(overlap=1)
    batch = org.make_batch(project["id"])
    staged, done = org.make_tasks(project["id"], 2, batch_id=batch["id"])
    with org.db.write() as conn:  # a completed task in an open batch (as an unmarked gold task can be)
        conn.execute(update(t.tasks).where(t.tasks.c.id == done["id"]).values(status="completed"))
        lifecycle.move_batch(conn, batch["id"], TaskStatus.PENDING)
    assert _task(org, staged["id"])["status"] == "pending"
    assert _task(org, done["id"])["status"] == "completed"  # only a reviewer's reject reopens it


def test_only_a_completed_task_is_reviewed(org: Org) -> None:
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    with pytest.raises(Conflict):
        review.submit_review(org.db, org.actor(Role.REVIEWER).principal, task["id"], Verdict.ACCEPT)


def test_rejections_and_fixes_count_against_the_workers_who_answered(org: Org) -> None:
    project = org.make_project(quality={"overlap": 2, "review": {"sample_rate": 1.0}})
    fixed, rejected, accepted = org.make_tasks(project["id"], 3)
    good, bad = org.add_member(), org.add_member()
    for task_id, answers in (
        (fixed["id"], ("negative", "positive")),
        (rejected["id"], ("positive", "positive")),
        (accepted["id"], ("negative", "negative")),
    ):
        for principal, sentiment in zip((good.principal, bad.principal), answers, strict=True):
            body = ResponseCreate(answer={"sentiment": sentiment})
            queue.submit(org.db, principal, task_id, body)
    reviewer = org.actor(Role.REVIEWER).principal
    review.submit_review(org.db, reviewer, fixed["id"], Verdict.FIX, answer={"sentiment": "negative"})
    review.submit_review(org.db, reviewer, rejected["id"], Verdict.REJECT, reason="it is not positive")
    review.submit_review(org.db, reviewer, accepted["id"], Verdict.ACCEPT)
    figures, _ = quality.project_workers(org.db, org.owner.principal, project["id"])
    by_worker = {f["worker_id"]: f for f in figures}
    assert {k: by_worker[good.worker_id][k] for k in ("reviewed", "review_accepted", "review_rejected")} == {
        "reviewed": 3,
        "review_accepted": 2,
        "review_rejected": 1,
    }
    assert {k: by_worker[bad.worker_id][k] for k in ("reviewed", "review_accepted", "review_rejected")} == {
        "reviewed": 3,
        "review_accepted": 1,
        "review_rejected": 2,
    }
    mine = quality.worker_stats(org.db, bad.principal, bad.worker_id, project["id"])
    assert mine["review_rejected"] == 2


# --- history -----------------------------------------------------------------------------------


def test_history_lists_every_step_in_order(org: Org) -> None:
    project = org.make_project(quality={"overlap": 1, "review": {"sample_rate": 1.0}})
    (task,) = org.make_tasks(project["id"], 1)
    annotator = org.actor(Role.ANNOTATOR)
    lease = queue.next_assignment(org.db, annotator.principal, project["id"])
    assert lease is not None
    queue.release(org.db, annotator.principal, lease["id"])
    _answer(org, annotator.principal, project["id"], "positive")
    reviewer = org.actor(Role.REVIEWER)
    review.next_review(org.db, reviewer.principal, project["id"])
    review.submit_review(org.db, reviewer.principal, task["id"], Verdict.FIX, answer={"sentiment": "neutral"})
    steps = history.task_history(org.db, org.actor(Role.MANAGER).principal, task["id"])
    assert [s["kind"] for s in steps] == [
        "created",
        "leased",
        "lease_released",
        "leased",
        "response",
        "completed",
        "review_requested",
        "review_claimed",
        "response",
        "reviewed",
    ]
    assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)
    assert steps[4]["worker_id"] == annotator.worker_id and steps[4]["worker_name"] is not None
    assert steps[8]["data"]["review_fix"] is True and steps[8]["worker_id"] == reviewer.worker_id
    reviewed = steps[-1]["data"]
    assert (reviewed["verdict"], reviewed["answer_before"], reviewed["answer_after"]) == (
        "fix",
        {"sentiment": "positive"},
        {"sentiment": "neutral"},
    )


# --- permissions -------------------------------------------------------------------------------


def test_an_annotator_may_not_review(org: Org) -> None:
    project, task, annotator = _completed_task(org)
    other = org.add_member(Role.ANNOTATOR).principal
    with pytest.raises(Forbidden):
        review.next_review(org.db, other, project["id"])
    with pytest.raises(Forbidden):
        review.submit_review(org.db, other, task["id"], Verdict.ACCEPT)
    with pytest.raises(Forbidden):
        history.task_history(org.db, annotator.principal, task["id"])


def test_another_organizations_task_is_not_found(org: Org, other_org: Org) -> None:
    project, task, _ = _completed_task(org)
    outsider = other_org.actor(Role.REVIEWER).principal
    with pytest.raises(NotFound):
        review.next_review(org.db, outsider, project["id"])
    for call in (
        lambda: review.submit_review(org.db, outsider, task["id"], Verdict.ACCEPT),
        lambda: review.list_reviews(org.db, outsider, task["id"]),
        lambda: review.skip_review(org.db, outsider, task["id"]),
        lambda: history.task_history(org.db, outsider, task["id"]),
    ):
        with pytest.raises(NotFound):
            call()
    with org.db.read() as conn:
        assert conn.execute(select(t.reviews)).first() is None


def test_a_refit_leaves_reviewed_results_alone(org: Org) -> None:
    """A contrarian's lone answers would flip once a model is fitted; accepted and fixed ones stay."""
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
    }
    project = org.make_project(spec=spec, overlap=1)
    contrarian, honest = org.add_member(), [org.add_member(), org.add_member()]
    for i, task in enumerate(org.make_tasks(project["id"], 40, overlap=3)):
        truth = ("positive", "negative")[i % 2]
        for worker in honest:
            queue.submit(org.db, worker.principal, task["id"], ResponseCreate(answer={"sentiment": truth}))
        other = "negative" if truth == "positive" else "positive"
        queue.submit(org.db, contrarian.principal, task["id"], ResponseCreate(answer={"sentiment": other}))
    accepted, fixed, untouched = (org.make_task(project["id"], f"alone {i}") for i in range(3))
    for task in (accepted, fixed, untouched):
        queue.submit(org.db, contrarian.principal, task["id"], ResponseCreate(answer={"sentiment": "negative"}))
    reviewer = org.actor(Role.REVIEWER).principal
    review.submit_review(org.db, reviewer, accepted["id"], Verdict.ACCEPT)
    review.submit_review(org.db, reviewer, fixed["id"], Verdict.FIX, answer={"sentiment": "negative"})
    refit.refit(org.db, org.owner.principal, project["id"])
    assert _task(org, untouched["id"])["result"]["answer"] == {"sentiment": "positive"}  # the model flips it
    kept = _task(org, accepted["id"])["result"]
    assert kept["answer"] == {"sentiment": "negative"} and kept["review"]["verdict"] == "accept"
    assert _task(org, fixed["id"])["result"]["questions"]["sentiment"]["method"] == review.FIX_METHOD
    kinds = [s["kind"] for s in history.task_history(org.db, org.owner.principal, accepted["id"])]
    assert "refit_changed" not in kinds


def test_a_fix_states_the_reviewers_gold_record_and_says_when_it_is_below_target(org: Org) -> None:
    """A reviewer right on 5 of 10 gold tasks of the project: their fix states (10 x 0.9 + 5) / 20 =
    0.7, below the question's target of 0.8, so the fixed result is low-confidence."""
    policy = {"overlap": 1, "target_confidence": 0.8, "review": {"sample_rate": 1.0, "fix_confidence": 0.9}}
    project, task, _ = _completed_task(org, quality_policy=policy, sentiment="positive")
    reviewer = org.actor(Role.REVIEWER)
    with org.db.write() as conn:
        rules = gold.policy_of(project) or GoldPolicy()
        standing = gold.ensure_standing(conn, reviewer.principal, project, rules, utcnow())
        record = {"gold_answers": 10, "gold_correct": 5.0}
        repo.change(conn, t.project_workers, standing["organization_id"], standing["id"], **record)
    review.next_review(org.db, reviewer.principal, project["id"])
    review.submit_review(org.db, reviewer.principal, task["id"], Verdict.FIX, answer={"sentiment": "negative"})
    stored = _task(org, task["id"])
    fixed = stored["result"]["questions"]["sentiment"]
    assert (fixed["answer"], fixed["confidence"], fixed["reached_target"]) == ("negative", 0.7, False)
    assert stored["confidence"] == 0.7 and stored["result"]["low_confidence"] is True


def test_the_fix_confidence_must_be_below_certainty(org: Org) -> None:
    with pytest.raises(ValidationError, match="fix_confidence"):
        org.make_project(quality={"overlap": 1, "review": {"fix_confidence": 1.0}})


def test_an_accepted_result_states_the_confidence_the_reviewer_adds(org: Org) -> None:
    """Tasks go to review because they are below target; the reviewer's acceptance is an independent
    check (a 0.95 reviewer without a gold record), so the answer's confidence rises by Bayes' rule and
    the task leaves the low-confidence set that min_confidence exports leave out."""
    policy = {"overlap": 1, "target_confidence": 0.9, "review": {"low_confidence": True}}
    project, task, _ = _completed_task(org, quality_policy=policy)
    before = _task(org, task["id"])
    crowd = before["result"]["questions"]["sentiment"]["confidence"]
    assert before["review_status"] == str(ReviewStatus.PENDING) and crowd < 0.9 and before["result"]["low_confidence"]
    reviewer = org.actor(Role.REVIEWER)
    review.next_review(org.db, reviewer.principal, project["id"])
    review.submit_review(org.db, reviewer.principal, task["id"], Verdict.ACCEPT)
    stored = _task(org, task["id"])
    question = stored["result"]["questions"]["sentiment"]
    expected = round(crowd * 0.95 / (crowd * 0.95 + (1 - crowd) * 0.05), 6)
    assert question["confidence"] == expected == stored["confidence"] and 0.9 <= expected < 1.0
    assert question["answer"] == "positive" and question["crowd"]["confidence"] == crowd
    assert question["reached_target"] is True and stored["result"]["low_confidence"] is False
    wanted = TaskFilter(project_id=project["id"], min_confidence=0.9)
    confident = tasks.list_tasks(org.db, org.owner.principal, wanted, cursor=None, limit=10)
    assert [t["id"] for t in confident[0]] == [task["id"]]

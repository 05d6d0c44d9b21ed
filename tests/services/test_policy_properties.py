"""The quality policy's promises, checked on random policies and random streams of work.

The other policy tests (tests/services/test_results.py) check small cases with known answers. Here
Hypothesis draws a policy (``min_overlap``, ``max_overlap``, ``target_confidence``, what happens at
the maximum) and a stream of steps through the real services: workers leasing from the queue and
answering, answers sent without a lease (late, or to a task they never had), reviewers' verdicts
(accept, reject, fix) and refits. After every step every task of the project must keep the
policy's promises (docs/quality.md):

- a task never has more people's answers than ``max_overlap``, and its counts are its responses;
- a pending task still wants a judgment, and once ``min_overlap`` is met it is pending only while a
  deciding question is below target (at the moment it was scored);
- a task completes only at its target (with ``min_overlap`` met), or at ``max_overlap`` flagged
  ``low_confidence`` (then, with ``at_max_overlap: review``, in the review queue);
- a result names exactly the task's responses, its confidences are probabilities, and a tie is
  an explicit ``tie`` with no answer, never an option picked by its order;
- the queue never serves a worker a task they answered, nor a task that wants no one;
- a refit that changes a completed task's answer records it in the task's history, and never
  touches a reviewed one: a fix outranks the crowd, an accepted answer stands;
- an acceptance never lowers a confidence, a fix states the reviewer's confidence (never 1.0), a
  rejection sends the task back for ``min_overlap`` more judgments and clears its result;
- whatever the step, a refusal is a Conflict naming why, never another error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select

from truthset.domain import Role, TaskStatus
from truthset.errors import Conflict, Forbidden
from truthset.schemas import ResponseCreate
from truthset.services import queue, refit, review
from truthset.services.tasks import TaskFilter, import_tasks
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org


@dataclass(frozen=True)
class Kind:
    """A question type under the policy: its spec, a task's data, and the answers drawn (by index)."""

    spec: dict[str, Any]
    answers: tuple[Any, ...]  # what a worker may answer, drawn by index
    finals: tuple[Any, ...]  # what a result's answer may be
    fixed: tuple[Any, ...]  # the result's answer once a reviewer's fix gave answers[i]

    def data(self, i: int) -> dict[str, Any]:
        fields = {field["name"]: field["type"] for field in self.spec["fields"]}
        if "answers" in fields:
            return {"prompt": f"prompt {i}", "answers": [f"answer {i}-{c}" for c in range(2)]}
        return {"text": f"item {i}"}


KINDS = {
    "label": Kind(
        {
            "fields": [{"name": "text", "type": "text"}],
            "questions": [{"name": "choice", "type": "label", "options": ["a", "b", "c"]}],
        },
        answers=("a", "b", "c"),
        finals=("a", "b", "c"),
        fixed=("a", "b", "c"),
    ),
    "rating": Kind(
        {
            "fields": [{"name": "text", "type": "text"}],
            "questions": [{"name": "choice", "type": "rating", "min": 1, "max": 5}],
        },
        answers=(1, 2, 5),
        finals=(1, 2, 3, 4, 5),
        fixed=(1, 2, 5),
    ),
    "ranking": Kind(
        {
            "fields": [{"name": "prompt", "type": "text"}, {"name": "answers", "type": "responses"}],
            "questions": [{"name": "choice", "type": "ranking", "field": "answers", "mode": "pairwise"}],
        },
        answers=({"winner": 0}, {"winner": 1}, {"winner": 1}),  # a pair: two candidates
        finals=(0, 1),
        fixed=(0, 1, 1),
    ),
}
TASKS = 3
WORKERS = 5
REVIEWERS = 2


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(1, 3))
    return {
        "min_overlap": low,
        "max_overlap": draw(st.integers(low, 5)),
        "target_confidence": draw(st.sampled_from([0.6, 0.8, 0.9, 0.99])),
        "at_max_overlap": draw(st.sampled_from(["complete", "review"])),
    }


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("lease"), st.integers(0, WORKERS - 1), st.integers(0, 2)),
        st.tuples(st.just("late"), st.integers(0, WORKERS - 1), st.integers(0, TASKS - 1), st.integers(0, 2)),
        st.tuples(st.just("refit")),
        st.tuples(
            st.just("review"),
            st.integers(0, REVIEWERS - 1),
            st.integers(0, TASKS - 1),
            st.sampled_from(["accept", "reject", "fix"]),
            st.integers(0, 2),
        ),
    ),
    min_size=3,
    max_size=40,
)


@dataclass
class Expected:
    """What the steps so far promise of one task, beyond what any task promises."""

    ceiling: int  # the most responses it may have: max_overlap, raised by each rejection and fix
    reviewed: bool = False  # a verdict was given (its review_status is the verdict's, not the policy's)
    fixed: str | None = None  # the answer a reviewer's fix set (until a rejection clears it)
    accepted: Any = None  # the answer a reviewer accepted (until a rejection clears it)
    fixers: set[str] = field(default_factory=set)  # reviewers who fixed it: a fix counts as an answer


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=policies(), steps=STEPS)
@pytest.mark.parametrize("kind_name", list(KINDS))
def test_every_step_keeps_the_policy_s_promises(
    org: Org, kind_name: str, policy: dict[str, Any], steps: list[tuple]
) -> None:
    kind = KINDS[kind_name]
    note(f"policy={policy} steps={steps}")  # pytest's report of a failing case leaves them out
    project = org.make_project(spec=kind.spec, quality=policy)
    report = import_tasks(
        org.db, org.owner.principal, project["id"], [(i + 1, {"data": kind.data(i)}) for i in range(TASKS)]
    )
    assert report.created == TASKS
    tasks = [task["id"] for task in org.all_tasks(TaskFilter(project_id=project["id"]))]
    workers = [org.add_member() for _ in range(WORKERS)]
    reviewers = [org.add_member(Role.REVIEWER) for _ in range(REVIEWERS)]
    expected = {task_id: Expected(ceiling=policy["max_overlap"]) for task_id in tasks}
    answered: set[tuple[int, str]] = set()
    for step in steps:
        if step[0] == "refit":
            _refit_and_check_history(org, project["id"], tasks)
        elif step[0] == "review":
            _, who, index, verdict, option = step
            _review(org, kind, reviewers[who], tasks[index], verdict, option, policy, expected[tasks[index]])
        else:
            task_id = _step(org, kind, project["id"], workers, tasks, answered, step)
            if task_id is not None:
                _check_scored(org, _row(org, task_id), policy)
        for task_id in tasks:
            _check_task(org, kind, _row(org, task_id), policy, expected[task_id])


def _review(
    org: Org,
    kind: Kind,
    reviewer: Any,
    task_id: str,
    verdict: str,
    option: int,
    policy: dict[str, Any],
    expected: Expected,
) -> None:
    """A reviewer's verdict on a task, and what it must do to the task."""
    before = _row(org, task_id)
    reason = "wrong" if verdict == "reject" else None
    answer = {"choice": kind.answers[option]} if verdict == "fix" else None
    try:
        review.submit_review(org.db, reviewer.principal, task_id, verdict, reason=reason, answer=answer)
    except Forbidden:  # never by a worker who answered the task
        assert reviewer.principal.worker_id in expected.fixers, "a reviewer who never answered was refused"
        return
    except Conflict:
        assert before["status"] != str(TaskStatus.COMPLETED), "a completed task refused a review"
        return
    assert reviewer.principal.worker_id not in expected.fixers, "a reviewer reviewed their own fix"
    assert before["status"] == str(TaskStatus.COMPLETED), "a task that was not completed was reviewed"
    after = _row(org, task_id)
    expected.reviewed = True
    if verdict == "reject":
        more = max(1, policy["min_overlap"])
        assert after["status"] == str(TaskStatus.PENDING) and after["result"] is None
        assert after["overlap"] == before["response_count"] + more and after["review_status"] == "rejected"
        expected.ceiling = max(expected.ceiling, after["overlap"])
        expected.fixed = expected.accepted = None
        return
    question, old = after["result"]["questions"]["choice"], before["result"]["questions"]["choice"]
    assert after["status"] == str(TaskStatus.COMPLETED) and question["confidence"] < 1.0
    if verdict == "fix":
        assert question["answer"] == kind.fixed[option] and question["method"] == review.FIX_METHOD
        assert after["review_status"] == "fixed" and after["response_count"] == before["response_count"] + 1
        expected.ceiling += 1
        expected.fixed = kind.fixed[option]
        expected.fixers.add(reviewer.principal.worker_id)
    else:
        assert question["answer"] == old["answer"] and question["confidence"] >= old["confidence"]
        assert after["review_status"] == "accepted"
        if expected.fixed is None:
            expected.accepted = question["answer"]


def _step(
    org: Org,
    kind: Kind,
    project_id: str,
    workers: list[Any],
    tasks: list[str],
    answered: set[tuple[int, str]],
    step: tuple,
) -> str | None:
    """One worker's step; the task answered, or None when the step was (rightly) refused or idle."""
    if step[0] == "lease":
        _, who, option = step
        lease = queue.next_assignment(org.db, workers[who].principal, project_id)
        if lease is None:  # nothing left for this worker: every task they have not answered wants no one
            for task_id in tasks:
                row = _row(org, task_id)
                assert (who, task_id) in answered or row["status"] != str(TaskStatus.PENDING) or _full(row)
            return None
        task_id = lease["task_id"]
        assert (who, task_id) not in answered, "the queue served a worker a task they answered"
        row = _row(org, task_id)
        assert row["status"] == str(TaskStatus.PENDING) and row["response_count"] < row["overlap"]
        answer = ResponseCreate(answer={"choice": kind.answers[option]}, assignment_id=lease["id"])
    else:
        _, who, index, option = step
        task_id, answer = tasks[index], ResponseCreate(answer={"choice": kind.answers[option]})
    before = _row(org, task_id)
    try:
        queue.submit(org.db, workers[who].principal, task_id, answer)
    except Conflict as refused:  # answered already, or the task is done, or no slot is free
        assert step[0] == "late", f"a leased task refused its answer: {refused.message}"
        assert (who, task_id) in answered or before["status"] != str(TaskStatus.PENDING) or _full(before), (
            f"an answer was refused with a free slot: {refused.message}"
        )
        return None
    assert (who, task_id) not in answered and before["status"] == str(TaskStatus.PENDING)
    answered.add((who, task_id))
    return task_id


def _full(task: dict[str, Any]) -> bool:
    return task["response_count"] + task["lease_count"] >= task["overlap"]


def _row(org: Org, task_id: str) -> dict[str, Any]:
    with org.db.read() as conn:
        return dict(conn.execute(select(t.tasks).where(t.tasks.c.id == task_id)).mappings().one())


def _response_ids(org: Org, task_id: str) -> list[str]:
    with org.db.read() as conn:
        query = select(t.responses.c.id).where(t.responses.c.task_id == task_id).order_by(t.responses.c.id)
        return list(conn.execute(query).scalars())


def _check_task(org: Org, kind: Kind, task: dict[str, Any], policy: dict[str, Any], expected: Expected) -> None:
    """What holds of a task at any time, refits and reviews included."""
    responses = _response_ids(org, task["id"])
    assert task["response_count"] == len(responses) <= expected.ceiling
    assert task["lease_count"] >= 0
    if task["status"] == str(TaskStatus.PENDING):  # (a reviewer's fix is one response beyond the overlap)
        assert task["response_count"] + task["lease_count"] <= task["overlap"] <= expected.ceiling
        assert task["response_count"] < task["overlap"]
    else:
        assert task["status"] == str(TaskStatus.COMPLETED)
        assert task["response_count"] >= policy["min_overlap"]
    result = task["result"]
    if result is None:
        assert task["status"] == str(TaskStatus.PENDING)
        return
    assert sorted(result["response_ids"]) == responses and result["response_count"] == len(responses)
    question = result["questions"]["choice"]
    assert 0.0 <= question["confidence"] <= 1.0
    if question.get("tie"):
        assert question["answer"] is None and len(question["tie"]) >= 2
    else:
        assert question["answer"] in kind.finals
    if expected.fixed is not None:  # a fix outranks the crowd, whatever came after (refits, acceptances)
        assert question["answer"] == expected.fixed and question["method"] == review.FIX_METHOD
    elif expected.accepted is not None:  # an accepted answer is never re-scored
        assert question["answer"] == expected.accepted
    if task["status"] == str(TaskStatus.COMPLETED) and result.get("low_confidence") and expected.fixed is None:
        assert task["response_count"] >= policy["max_overlap"]
        if not expected.reviewed:
            assert task["review_status"] == ("pending" if policy["at_max_overlap"] == "review" else None)


def _check_scored(org: Org, task: dict[str, Any], policy: dict[str, Any]) -> None:
    """Right after an answer, before any refit re-scores it: the decision the policy asked for.

    A task is scored once it has the judgments it asked for (``overlap``); before that (after a
    rejection asked for several more, or while below ``min_overlap``) it waits, pending."""
    target, count = policy["target_confidence"], task["response_count"]
    scored = task["result"] is not None and task["result"]["response_count"] == count
    if count < policy["min_overlap"] or not scored:
        assert task["status"] == str(TaskStatus.PENDING)
        return
    reached = task["result"]["questions"]["choice"]["confidence"] >= target
    if task["status"] == str(TaskStatus.COMPLETED):
        assert reached or (count >= policy["max_overlap"] and task["result"]["low_confidence"])
        assert task["result"]["low_confidence"] is (not reached)
    else:
        assert not reached and count < policy["max_overlap"], "a task at its target was left pending"


def _refit_and_check_history(org: Org, project_id: str, tasks: list[str]) -> None:
    """A refit may change completed tasks' answers; each change is in the task's history."""
    before = {task_id: _row(org, task_id) for task_id in tasks}
    outcome = refit.refit(org.db, org.owner.principal, project_id)
    changed = 0
    for task_id, old in before.items():
        new = _row(org, task_id)
        if old["status"] != str(TaskStatus.COMPLETED) or old["result"] is None:
            continue
        if new["result"]["answer"] != old["result"]["answer"]:
            changed += 1
            with org.db.read() as conn:
                query = select(t.task_events.c.kind).where(t.task_events.c.task_id == task_id)
                assert "refit_changed" in set(conn.execute(query).scalars())
    assert outcome["changed_answers"] >= changed

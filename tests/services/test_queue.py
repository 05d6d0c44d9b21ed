"""The queue: leases, skip/release, expiry, submission, idempotency, completion."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select, text, update

from truthset.domain import AssignmentStatus, Role, TaskStatus
from truthset.errors import Busy, Conflict, InvalidInput, NotFound
from truthset.schemas import ResponseCreate
from truthset.services import projects, queue, tasks
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

if TYPE_CHECKING:
    from conftest import Org


def answer(sentiment: str = "positive", *, assignment_id: str | None = None, **more: object) -> ResponseCreate:
    return ResponseCreate(answer={"sentiment": sentiment, **more}, assignment_id=assignment_id)


def _count(db: Database, table: t.Table) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _expire(db: Database, assignment_id: str) -> None:
    """Move the clock: the lease's deadline is now in the past (no sleeping)."""
    with db.write() as conn:
        conn.execute(
            update(t.assignments)
            .where(t.assignments.c.id == assignment_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def _assignment(db: Database, assignment_id: str) -> dict:
    with db.read() as conn:
        return dict(conn.execute(select(t.assignments).where(t.assignments.c.id == assignment_id)).mappings().one())


def _task(org: Org, task_id: str) -> dict:
    return tasks.get_task(org.db, org.owner.principal, task_id)


def test_a_lease_names_the_task_worker_and_deadline(org: Org) -> None:
    project = org.make_project(lease_seconds=120)
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    before = utcnow()
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease is not None
    assert lease["task"]["id"] == task["id"] and lease["task"]["data"] == {"text": "item 0"}
    assert lease["worker_id"] == worker.worker_id
    assert lease["status"] == str(AssignmentStatus.ACTIVE)
    assert before + timedelta(seconds=119) <= lease["expires_at"] <= utcnow() + timedelta(seconds=120)
    assert _task(org, task["id"])["status"] == str(TaskStatus.PENDING)
    with pytest.raises(NotFound):
        queue.next_assignment(org.db, worker.principal, "0" * 24)


def test_priority_order_then_creation_order(org: Org) -> None:
    project = org.make_project()
    made = [org.make_task(project["id"], str(p), priority=p) for p in (0, 5, -1, 5, 2)]
    worker = org.add_member()
    served = []
    while lease := queue.next_assignment(org.db, worker.principal, project["id"]):
        served.append(lease["task"]["id"])
    assert served == [made[1]["id"], made[3]["id"], made[4]["id"], made[0]["id"], made[2]["id"]]


def test_never_more_leases_than_the_overlap_still_needs(org: Org) -> None:
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    a, b, c = org.add_member(), org.add_member(), org.add_member()
    lease_a = queue.next_assignment(org.db, a.principal, project["id"])
    lease_b = queue.next_assignment(org.db, b.principal, project["id"])
    assert lease_a and lease_b and lease_a["task"]["id"] == lease_b["task"]["id"] == task["id"]
    assert queue.next_assignment(org.db, c.principal, project["id"]) is None
    queue.submit(org.db, a.principal, task["id"], answer())
    # one response + one live lease = the overlap: still nothing for c
    assert queue.next_assignment(org.db, c.principal, project["id"]) is None
    queue.release(org.db, b.principal, lease_b["id"])
    lease_c = queue.next_assignment(org.db, c.principal, project["id"])
    assert lease_c is not None and lease_c["task"]["id"] == task["id"]
    stored = _task(org, task["id"])
    assert stored["response_count"] + stored["lease_count"] == 2


def test_a_worker_never_gets_a_task_it_answered_or_skipped(org: Org) -> None:
    project = org.make_project(overlap=3)
    first, second, third = org.make_tasks(project["id"], 3)
    worker = org.add_member()
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease and lease["task"]["id"] == first["id"]
    queue.submit(org.db, worker.principal, first["id"], answer(assignment_id=lease["id"]))
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease and lease["task"]["id"] == second["id"]
    skipped = queue.skip(org.db, worker.principal, lease["id"])
    assert skipped["status"] == str(AssignmentStatus.SKIPPED) and skipped["task"]["lease_count"] == 0
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease and lease["task"]["id"] == third["id"]
    # holding third, having answered first and skipped second: nothing left for this worker
    assert queue.next_assignment(org.db, worker.principal, project["id"]) is None
    # while someone else still gets the first task
    other = org.add_member()
    other_lease = queue.next_assignment(org.db, other.principal, project["id"])
    assert other_lease and other_lease["task"]["id"] == first["id"]


def test_release_returns_the_task_to_the_same_worker_too(org: Org) -> None:
    project = org.make_project()
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease is not None
    released = queue.release(org.db, worker.principal, lease["id"])
    assert released["status"] == str(AssignmentStatus.RELEASED) and released["ended_at"] is not None
    again = queue.next_assignment(org.db, worker.principal, project["id"])
    assert again is not None and again["task"]["id"] == task["id"] and again["id"] != lease["id"]
    with pytest.raises(Conflict):
        queue.release(org.db, worker.principal, lease["id"])
    with pytest.raises(Conflict):
        queue.skip(org.db, worker.principal, lease["id"])


def test_only_the_leaseholder_ends_a_lease(org: Org) -> None:
    project = org.make_project()
    org.make_tasks(project["id"], 1)
    holder, other = org.add_member(), org.add_member()
    lease = queue.next_assignment(org.db, holder.principal, project["id"])
    assert lease is not None
    for finish in (queue.skip, queue.release):
        with pytest.raises(NotFound):
            finish(org.db, other.principal, lease["id"])
    with pytest.raises(NotFound):
        queue.skip(org.db, holder.principal, "0" * 24)
    assert _assignment(org.db, lease["id"])["status"] == "active"


def test_expired_leases_return_to_the_queue(org: Org) -> None:
    project = org.make_project(lease_seconds=10)
    (task,) = org.make_tasks(project["id"], 1)
    slow, fast = org.add_member(), org.add_member()
    lease = queue.next_assignment(org.db, slow.principal, project["id"])
    assert lease is not None
    assert queue.next_assignment(org.db, fast.principal, project["id"]) is None
    _expire(org.db, lease["id"])
    taken = queue.next_assignment(org.db, fast.principal, project["id"])
    assert taken is not None and taken["task"]["id"] == task["id"]
    expired = _assignment(org.db, lease["id"])
    assert expired["status"] == str(AssignmentStatus.EXPIRED) and expired["ended_at"] is not None
    assert _task(org, task["id"])["lease_count"] == 1
    # the slow worker's late answer is refused: the only slot went to someone else
    with pytest.raises(Conflict):
        queue.submit(org.db, slow.principal, task["id"], answer(assignment_id=lease["id"]))
    with pytest.raises(Conflict):
        queue.skip(org.db, slow.principal, lease["id"])
    queue.submit(org.db, fast.principal, task["id"], answer(assignment_id=taken["id"]))
    assert org.task(task["id"])["status"] == str(TaskStatus.COMPLETED)
    assert _count(org.db, t.responses) == 1


def test_a_late_answer_is_kept_while_a_slot_is_free(org: Org) -> None:
    project = org.make_project(overlap=2, lease_seconds=10)
    (task,) = org.make_tasks(project["id"], 1)
    slow, other = org.add_member(), org.add_member()
    lease = queue.next_assignment(org.db, slow.principal, project["id"])
    assert lease is not None
    _expire(org.db, lease["id"])
    # the next request reclaims the expired lease; the other worker takes one of the two free slots
    assert queue.next_assignment(org.db, other.principal, project["id"]) is not None
    assert _assignment(org.db, lease["id"])["status"] == str(AssignmentStatus.EXPIRED)
    result = queue.submit(org.db, slow.principal, task["id"], answer(assignment_id=lease["id"]))
    # the answer gets a closed assignment of its own; the expired lease stays expired
    own = _assignment(org.db, result["response"]["assignment_id"])
    assert own["id"] != lease["id"] and own["status"] == str(AssignmentStatus.SUBMITTED)
    assert _assignment(org.db, lease["id"])["status"] == str(AssignmentStatus.EXPIRED)
    assert result["task"]["response_count"] == 1 and result["task"]["lease_count"] == 1
    # the expired lease was not given back twice
    with org.db.read() as conn:
        lease_count = conn.execute(select(t.tasks.c.lease_count).where(t.tasks.c.id == task["id"])).scalar_one()
    assert lease_count == 1


def test_an_unreclaimed_expired_lease_still_counts_at_submit(org: Org) -> None:
    project = org.make_project(lease_seconds=10)
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease is not None
    _expire(org.db, lease["id"])
    # nobody asked for work since: the lease was never reclaimed, so the answer closes it
    result = queue.submit(org.db, worker.principal, task["id"], answer(assignment_id=lease["id"]))
    assert result["response"]["assignment_id"] == lease["id"]
    assert org.task(task["id"])["status"] == str(TaskStatus.COMPLETED)
    assert _assignment(org.db, lease["id"])["status"] == str(AssignmentStatus.SUBMITTED)


def test_expired_leases_are_counted_back_once(org: Org) -> None:
    project = org.make_project(overlap=2, lease_seconds=10)
    (task,) = org.make_tasks(project["id"], 1)
    a, b, c = org.add_member(), org.add_member(), org.add_member()
    lease_a = queue.next_assignment(org.db, a.principal, project["id"])
    lease_b = queue.next_assignment(org.db, b.principal, project["id"])
    assert lease_a and lease_b
    _expire(org.db, lease_a["id"])
    _expire(org.db, lease_b["id"])
    assert queue.next_assignment(org.db, c.principal, project["id"]) is not None
    with org.db.read() as conn:
        lease_count = conn.execute(select(t.tasks.c.lease_count).where(t.tasks.c.id == task["id"])).scalar_one()
    assert lease_count == 1
    # a and b may have it again (their leases expired, they never answered)
    assert queue.next_assignment(org.db, a.principal, project["id"]) is not None
    assert queue.next_assignment(org.db, b.principal, project["id"]) is None


# --- submit -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"sentiment": "positive", "colour": "red"}, "colour"),
        ({"sentiment": "happy"}, "sentiment"),
        ({"sentiment": 1}, "sentiment"),
        ({"stars": 3}, "sentiment: an answer is required"),
        ({"sentiment": "positive", "stars": 9}, "stars"),
        ({"sentiment": "positive", "stars": 2.5}, "stars"),
    ],
)
def test_submit_validates_the_answer(org: Org, bad: dict, named: str) -> None:
    project = org.make_project()
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease is not None
    with pytest.raises(InvalidInput) as exc:
        queue.submit(org.db, worker.principal, task["id"], ResponseCreate(answer=bad, assignment_id=lease["id"]))
    assert named in exc.value.message and exc.value.message.startswith("answer.")
    assert exc.value.details == {"field": "answer"}
    assert _count(org.db, t.responses) == 0
    assert _assignment(org.db, lease["id"])["status"] == "active"
    assert _task(org, task["id"])["response_count"] == 0


def test_submit_normalises_and_stores_the_answer(org: Org) -> None:
    project = org.make_project()
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease is not None
    result = queue.submit(
        org.db,
        worker.principal,
        task["id"],
        ResponseCreate(answer={"sentiment": "neutral", "stars": 4.0}, assignment_id=lease["id"], duration_ms=1234),
    )
    response = result["response"]
    assert response["answer"] == {"sentiment": "neutral", "stars": 4}
    assert response["assignment_id"] == lease["id"] and response["duration_ms"] == 1234
    assert response["worker_id"] == worker.worker_id and result["replayed"] is False
    assert _assignment(org.db, lease["id"])["status"] == str(AssignmentStatus.SUBMITTED)
    (stored,) = tasks.task_responses(org.db, org.owner.principal, task["id"])
    assert stored["id"] == response["id"] and stored["answer"] == {"sentiment": "neutral", "stars": 4}


def test_submit_finds_the_workers_lease_without_its_id(org: Org) -> None:
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease is not None
    result = queue.submit(org.db, worker.principal, task["id"], answer())
    assert result["response"]["assignment_id"] == lease["id"]
    assert result["task"]["lease_count"] == 0 and result["task"]["response_count"] == 1


def test_submit_with_a_lease_of_another_task(org: Org) -> None:
    project = org.make_project()
    first, second = org.make_tasks(project["id"], 2)
    worker = org.add_member()
    lease = queue.next_assignment(org.db, worker.principal, project["id"])
    assert lease and lease["task"]["id"] == first["id"]
    with pytest.raises(InvalidInput) as exc:
        queue.submit(org.db, worker.principal, second["id"], answer(assignment_id=lease["id"]))
    assert exc.value.details == {"field": "assignment_id"}
    assert _count(org.db, t.responses) == 0


def test_submit_without_a_lease_only_while_a_slot_is_free(org: Org) -> None:
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    holder, walk_in, late = org.add_member(), org.add_member(), org.add_member()
    assert queue.next_assignment(org.db, holder.principal, project["id"]) is not None
    # one lease out of two: a slot is free
    accepted = queue.submit(org.db, walk_in.principal, task["id"], answer())
    walk_in_record = _assignment(org.db, accepted["response"]["assignment_id"])
    assert walk_in_record["worker_id"] == walk_in.worker_id
    assert walk_in_record["status"] == str(AssignmentStatus.SUBMITTED)
    # now the holder's lease takes the last slot
    with pytest.raises(Conflict):
        queue.submit(org.db, late.principal, task["id"], answer())
    assert _count(org.db, t.responses) == 1
    queue.submit(org.db, holder.principal, task["id"], answer())
    assert _task(org, task["id"])["status"] == str(TaskStatus.COMPLETED)


def test_one_response_per_worker_and_task(org: Org) -> None:
    project = org.make_project(overlap=3)
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    queue.submit(org.db, worker.principal, task["id"], answer())
    with pytest.raises(Conflict):
        queue.submit(org.db, worker.principal, task["id"], answer("negative"))
    with pytest.raises(Conflict):
        queue.submit(org.db, worker.principal, task["id"], answer("negative"), idempotency_key="new-key")
    assert _count(org.db, t.responses) == 1
    assert queue.next_assignment(org.db, worker.principal, project["id"]) is None


def test_idempotency_key_replay_returns_the_same_response_and_creates_nothing(org: Org) -> None:
    project = org.make_project(overlap=2)
    first, second = org.make_tasks(project["id"], 2)
    worker = org.add_member()
    original = queue.submit(org.db, worker.principal, first["id"], answer(), idempotency_key="k-1")
    replay = queue.submit(org.db, worker.principal, first["id"], answer(), idempotency_key="k-1")
    assert replay["replayed"] is True
    assert replay["response"]["id"] == original["response"]["id"]
    assert replay["response"]["answer"] == {"sentiment": "positive"}
    assert _count(org.db, t.responses) == 1
    assert _task(org, first["id"])["response_count"] == 1
    # the same key for another request (another answer, another task) is a mistake, not a replay
    with pytest.raises(InvalidInput) as exc:
        queue.submit(org.db, worker.principal, first["id"], answer("negative"), idempotency_key="k-1")
    assert exc.value.code == "idempotency_key_reused"
    assert exc.value.details == {"field": "Idempotency-Key", "differs": ["answer"]}
    with pytest.raises(InvalidInput) as exc:
        queue.submit(org.db, worker.principal, second["id"], answer(), idempotency_key="k-1")
    assert exc.value.details == {"field": "Idempotency-Key", "differs": ["task_id"]}
    # keys belong to one worker: another worker may use the same key
    other = org.add_member()
    theirs = queue.submit(org.db, other.principal, first["id"], answer(), idempotency_key="k-1")
    assert theirs["replayed"] is False and org.task(first["id"])["status"] == str(TaskStatus.COMPLETED)
    # a replay after completion still answers with the first response
    late_replay = queue.submit(org.db, worker.principal, first["id"], answer(), idempotency_key="k-1")
    assert late_replay["response"]["id"] == original["response"]["id"] and late_replay["replayed"] is True
    assert _count(org.db, t.responses) == 2


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_idempotency_key_length(org: Org, key: str) -> None:
    project = org.make_project()
    (task,) = org.make_tasks(project["id"], 1)
    with pytest.raises(InvalidInput):
        queue.submit(org.db, org.add_member().principal, task["id"], answer(), idempotency_key=key)
    assert _count(org.db, t.responses) == 0


def test_completion_at_overlap_with_majority_and_confidence(org: Org) -> None:
    project = org.make_project(overlap=3)
    (task,) = org.make_tasks(project["id"], 1)
    workers = [org.add_member() for _ in range(4)]
    votes = [("positive", 4), ("negative", 2), ("positive", 5)]
    for (sentiment, stars), worker in zip(votes, workers, strict=False):
        result = queue.submit(org.db, worker.principal, task["id"], answer(sentiment, stars=stars))
    # the annotator's reply shows the task as it was served (blind); the task itself completed
    assert result["task"]["status"] == str(TaskStatus.PENDING) and result["task"]["result"] is None
    assert org.task(task["id"])["status"] == str(TaskStatus.COMPLETED)
    stored = _task(org, task["id"])
    assert stored["status"] == str(TaskStatus.COMPLETED) and stored["completed_at"] is not None
    assert stored["response_count"] == 3
    assert stored["result"]["answer"] == {"sentiment": "positive", "stars": 4}
    # before any fit each worker is right with 0.7, else one of the two other options (0.15 each):
    # positive 0.7 * 0.15 * 0.7, negative 0.15 * 0.7 * 0.15, neutral 0.15 ** 3
    expected = 0.0735 / (0.0735 + 0.01575 + 0.003375)
    assert stored["result"]["confidence"]["sentiment"] == pytest.approx(expected, abs=1e-6)
    # stars 4, 2, 5: the median 4; two of three ratings within one point: (2 + 1) / (3 + 2)
    assert stored["result"]["confidence"]["stars"] == pytest.approx(3 / 5, abs=1e-6)
    assert stored["result"]["methods"] == {"sentiment": "prior", "stars": "median"}
    assert stored["result"]["response_count"] == 3
    assert stored["result"]["workers"] == [w.worker_id for w in workers[:3]]
    # stars is optional, so it does not decide: the task's confidence is sentiment's
    assert stored["confidence"] == pytest.approx(stored["result"]["confidence"]["sentiment"])
    # completed: no more responses, no more leases
    with pytest.raises(Conflict):
        queue.submit(org.db, workers[3].principal, task["id"], answer())
    assert queue.next_assignment(org.db, workers[3].principal, project["id"]) is None
    assert _count(org.db, t.responses) == 3


def test_two_agreeing_answers_are_likely_but_not_certain(org: Org) -> None:
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    for worker in (org.add_member(), org.add_member()):
        queue.submit(org.db, worker.principal, task["id"], answer("neutral"))
    stored = _task(org, task["id"])
    assert stored["result"]["answer"] == {"sentiment": "neutral"}
    assert stored["confidence"] == pytest.approx(0.49 / (0.49 + 2 * 0.0225))  # 0.916, not 1.0


def test_the_batch_completes_with_its_last_task(org: Org) -> None:
    project = org.make_project(overlap=2)
    batch = org.make_batch(project["id"])
    made = org.make_tasks(project["id"], 2, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    a, b = org.add_member(), org.add_member()
    for worker in (a, b):
        while lease := queue.next_assignment(org.db, worker.principal, project["id"]):
            assert projects.get_batch(org.db, org.owner.principal, batch["id"])["status"] == "finalized"
            queue.submit(org.db, worker.principal, lease["task"]["id"], answer(assignment_id=lease["id"]))
    done = projects.get_batch(org.db, org.owner.principal, batch["id"])
    assert done["status"] == "completed" and done["counts"] == {"completed": 2}
    assert all(_task(org, x["id"])["status"] == "completed" for x in made)


def test_every_role_may_annotate(org: Org) -> None:
    project = org.make_project(overlap=5)
    (task,) = org.make_tasks(project["id"], 1)
    for role in Role:
        principal = org.principal_for(role)
        lease = queue.next_assignment(org.db, principal, project["id"])
        assert lease is not None, role
        queue.submit(org.db, principal, task["id"], answer(assignment_id=lease["id"]))
    assert _task(org, task["id"])["status"] == "completed"


# --- the per-worker frontier: a search starts behind the last task leased, until the epoch moves ---


def _lease_and_answer(org: Org, worker: object, project_id: str) -> str:
    lease = queue.next_assignment(org.db, worker.principal, project_id)  # type: ignore[attr-defined]
    assert lease is not None
    queue.submit(org.db, worker.principal, lease["task"]["id"], answer(assignment_id=lease["id"]))  # type: ignore[attr-defined]
    return lease["task"]["id"]


@pytest.mark.parametrize("give_back", ["release", "skip", "expire"])
def test_a_lease_given_back_before_the_frontier_is_served_next(org: Org, give_back: str) -> None:
    """W passed T1 while X held it; once X gives it back, W's next task is T1, not one further on."""
    project = org.make_project(overlap=1, lease_seconds=60)
    t1, t2, t3, _t4 = org.make_tasks(project["id"], 4)
    x, w = org.add_member(), org.add_member()
    held = queue.next_assignment(org.db, x.principal, project["id"])
    assert held is not None and held["task"]["id"] == t1["id"]
    assert _lease_and_answer(org, w, project["id"]) == t2["id"]  # W's frontier is now behind T2
    if give_back == "release":
        queue.release(org.db, x.principal, held["id"])
    elif give_back == "skip":
        queue.skip(org.db, x.principal, held["id"])
    else:
        _expire(org.db, held["id"])
    assert _lease_and_answer(org, w, project["id"]) == t1["id"]
    assert _lease_and_answer(org, w, project["id"]) == t3["id"]


def test_new_tasks_that_rank_first_are_served_before_the_frontier_moves_on(org: Org) -> None:
    project = org.make_project(overlap=2)
    first, second, third = org.make_tasks(project["id"], 3)
    w = org.add_member()
    assert _lease_and_answer(org, w, project["id"]) == first["id"]
    urgent = org.make_task(project["id"], "urgent", priority=5)  # one task, created alone
    assert _lease_and_answer(org, w, project["id"]) == urgent["id"]
    imported = org.make_tasks(project["id"], 1, priority=9)  # a bulk import
    assert _lease_and_answer(org, w, project["id"]) == imported[-1]["id"]
    assert _lease_and_answer(org, w, project["id"]) == second["id"]
    assert _lease_and_answer(org, w, project["id"]) == third["id"]
    assert queue.next_assignment(org.db, w.principal, project["id"]) is None


def test_a_finalized_batch_joins_the_queue_in_order(org: Org) -> None:
    """Staged tasks created before the worker's frontier are served once their batch is finalized."""
    project = org.make_project(overlap=2)
    batch = org.make_batch(project["id"])
    staged = org.make_tasks(project["id"], 2, batch_id=batch["id"])
    loose = org.make_tasks(project["id"], 2)[-2:]  # (the helper lists the whole project)
    w = org.add_member()
    assert _lease_and_answer(org, w, project["id"]) == loose[0]["id"]
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    served = [_lease_and_answer(org, w, project["id"]) for _ in range(3)]
    assert served == [staged[0]["id"], staged[1]["id"], loose[1]["id"]]


def test_a_worker_with_many_answered_pending_tasks_still_gets_the_next_in_order(org: Org) -> None:
    """Overlap 3, one worker: every answered task stays pending; each call serves the next one."""
    project = org.make_project(overlap=3)
    made = org.make_tasks(project["id"], 30)
    w = org.add_member()
    assert [_lease_and_answer(org, w, project["id"]) for _ in range(30)] == [x["id"] for x in made]
    assert queue.next_assignment(org.db, w.principal, project["id"]) is None
    other = org.add_member()
    assert _lease_and_answer(org, other, project["id"]) == made[0]["id"]


def test_a_lease_rolled_back_after_the_search_is_still_served(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """The frontier is noted before the commit; a lease that then fails must not hide its task."""
    project = org.make_project(overlap=2)
    first, second, _third = org.make_tasks(project["id"], 3)
    w = org.add_member()
    assert _lease_and_answer(org, w, project["id"]) == first["id"]
    real_add = queue.repo.add

    def failing_add(conn: object, table: t.Table, values: dict) -> dict:
        if table is t.assignments:
            raise RuntimeError("the disk is full")
        return real_add(conn, table, values)  # type: ignore[arg-type]

    monkeypatch.setattr(queue.repo, "add", failing_add)
    with pytest.raises(RuntimeError):
        queue.next_assignment(org.db, w.principal, project["id"])  # found `second`, then rolled back
    monkeypatch.setattr(queue.repo, "add", real_add)
    assert _lease_and_answer(org, w, project["id"]) == second["id"]


class _HeldRows:
    """Another transaction holding task rows, as a submit to them does until it commits (PostgreSQL)."""

    def __init__(self, db: Database, task_ids: list[str]) -> None:
        self.holder = db.engine.connect()
        self.holder.execute(select(t.tasks.c.id).where(t.tasks.c.id.in_(task_ids)).with_for_update())

    def release(self) -> None:
        self.holder.rollback()
        self.holder.close()


def _postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite serialises write transactions: a row is never locked by another writer")


def test_a_lease_says_try_again_while_the_only_free_task_is_being_written(org: Org, backend: str) -> None:
    """A task whose row a submit holds may still have a slot for this worker: 503 busy, not "nothing"."""
    _postgres_only(backend)
    project = org.make_project(overlap=2)
    (only,) = org.make_tasks(project["id"], 1)
    w = org.add_member()
    held = _HeldRows(org.db, [only["id"]])
    try:
        with pytest.raises(Busy, match="try again"):
            queue.next_assignment(org.db, w.principal, project["id"])
    finally:
        held.release()
    lease = queue.next_assignment(org.db, w.principal, project["id"])
    assert lease is not None and lease["task"]["id"] == only["id"]


def test_a_task_passed_over_while_locked_is_served_though_behind_the_frontier(org: Org, backend: str) -> None:
    """W's search passed over T1 while its row was held and leased T2; T1 still has a slot for W."""
    _postgres_only(backend)
    project = org.make_project(overlap=2)
    t1, t2 = org.make_tasks(project["id"], 2)
    w = org.add_member()
    held = _HeldRows(org.db, [t1["id"]])
    try:
        assert _lease_and_answer(org, w, project["id"]) == t2["id"]  # W's frontier is now T2
    finally:
        held.release()
    assert _lease_and_answer(org, w, project["id"]) == t1["id"]
    assert queue.next_assignment(org.db, w.principal, project["id"]) is None  # now truly nothing


def _wait_until_blocked_on_a_lock(db: Database) -> None:
    """Until some other session of this database waits for a row lock (PostgreSQL), without sleeping blind."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    for _ in range(2000):
        with db.engine.connect() as conn:
            if conn.execute(query).scalar_one():
                return
        threading.Event().wait(0.005)
    raise AssertionError("the submit never waited for the project's row")


def test_an_answer_racing_a_spec_change_is_checked_against_the_new_spec(org: Org, backend: str) -> None:
    """A spec change holds the project row (FOR UPDATE) while it checks that no answers exist; a submit
    reading the project meanwhile waits for it and is then checked against the new spec. Before, it
    was checked against the old one and stored after the change: an answer no option allows."""
    _postgres_only(backend)
    project = org.make_project(overlap=1)
    (task,) = org.make_tasks(project["id"], 1)
    w = org.add_member()
    narrowed = {
        **project["spec"],
        "questions": [{**project["spec"]["questions"][0], "options": ["positive", "negative"]}],
    }
    outcome: dict[str, object] = {}

    def submit() -> None:
        try:
            outcome["result"] = queue.submit(org.db, w.principal, task["id"], answer("neutral"))
        except Exception as exc:  # the test looks at it
            outcome["result"] = exc

    with org.db.engine.connect() as change:
        change.execute(select(t.projects.c.id).where(t.projects.c.id == project["id"]).with_for_update())
        submitting = threading.Thread(target=submit)
        submitting.start()
        _wait_until_blocked_on_a_lock(org.db)
        change.execute(
            update(t.projects).where(t.projects.c.id == project["id"]).values(spec=narrowed, updated_at=utcnow())
        )
        change.commit()
    submitting.join(30)
    assert not submitting.is_alive()
    assert isinstance(outcome["result"], InvalidInput) and "neutral" in str(outcome["result"])
    assert _count(org.db, t.responses) == 0

"""Many workers asking for and answering tasks at once, on SQLite and PostgreSQL.

Afterwards the database itself must prove the queue's promises: no task has more responses than its
overlap, no worker answered a task twice, every acknowledged response is stored, every task completed.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from conftest import until_not_busy
from truthset.domain import AssignmentStatus, Role, TaskStatus
from truthset.errors import Conflict
from truthset.schemas import MemberUpdate, ResponseCreate, TaskCreate
from truthset.services import accounts, projects, queue, tasks
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Actor, Org

THREADS = 16
TASKS = 200
OVERLAP = 3
LABELS = ("positive", "negative", "neutral")


@dataclass
class Tally:
    acknowledged: list[str] = field(default_factory=list)  # response ids the service returned
    leases: int = 0
    released: int = 0
    skipped: int = 0
    replays: int = 0


def _work(org: Org, project_id: str, actor: Actor, start: threading.Barrier, seed: int) -> Tally:
    """One worker: lease, then mostly answer (sometimes release, skip, or retry the submit)."""
    rng = random.Random(seed)
    tally = Tally()
    start.wait()
    while lease := until_not_busy(lambda: queue.next_assignment(org.db, actor.principal, project_id)):
        tally.leases += 1
        roll = rng.random()
        if roll < 0.05:
            queue.release(org.db, actor.principal, lease["id"])
            tally.released += 1
            continue
        if roll < 0.08:
            queue.skip(org.db, actor.principal, lease["id"])
            tally.skipped += 1
            continue
        key = f"{actor.worker_id}:{lease['task']['id']}"
        data = ResponseCreate(answer={"sentiment": rng.choice(LABELS)}, assignment_id=lease["id"])
        result = queue.submit(org.db, actor.principal, lease["task"]["id"], data, idempotency_key=key)
        assert result["replayed"] is False
        tally.acknowledged.append(result["response"]["id"])
        if roll > 0.9:  # a client retrying after a lost reply gets the same response back
            again = queue.submit(org.db, actor.principal, lease["task"]["id"], data, idempotency_key=key)
            assert again["replayed"] is True and again["response"]["id"] == result["response"]["id"]
            tally.replays += 1
    return tally


def test_many_workers_at_once_keep_every_promise(org: Org) -> None:
    project = org.make_project(overlap=OVERLAP, lease_seconds=600)
    batch = org.make_batch(project["id"])
    made = org.make_tasks(project["id"], TASKS, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    workers = [org.add_member() for _ in range(THREADS)]

    tallies: list[Tally] = []
    # Rounds: a worker stops when the queue has nothing for it *right now*; tasks that others
    # released or skipped afterwards are picked up by the next round (a handful at most).
    for round_number in range(5):
        start = threading.Barrier(THREADS)
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [
                pool.submit(_work, org, project["id"], w, start, 1000 * round_number + i) for i, w in enumerate(workers)
            ]
            tallies.extend(f.result(timeout=300) for f in futures)
        if projects.get_batch(org.db, org.owner.principal, batch["id"])["status"] == "completed":
            break
    acknowledged = [rid for tally in tallies for rid in tally.acknowledged]
    assert sum(t.leases for t in tallies) >= TASKS * OVERLAP
    assert sum(t.released + t.skipped for t in tallies) > 0  # the run did exercise both paths
    assert sum(t.replays for t in tallies) > 0

    with org.db.read() as conn:
        over_full = conn.execute(
            select(t.responses.c.task_id, func.count().label("n"), t.tasks.c.overlap)
            .join(t.tasks, t.tasks.c.id == t.responses.c.task_id)
            .group_by(t.responses.c.task_id, t.tasks.c.overlap)
            .having(func.count() > t.tasks.c.overlap)
        ).all()
        doubles = conn.execute(
            select(t.responses.c.task_id, t.responses.c.worker_id)
            .group_by(t.responses.c.task_id, t.responses.c.worker_id)
            .having(func.count() > 1)
        ).all()
        stored = set(conn.execute(select(t.responses.c.id)).scalars())
        task_rows = conn.execute(select(t.tasks).where(t.tasks.c.project_id == project["id"])).mappings().all()
        actual = dict(conn.execute(select(t.responses.c.task_id, func.count()).group_by(t.responses.c.task_id)).all())
        active = conn.execute(
            select(func.count()).select_from(t.assignments).where(t.assignments.c.status == "active")
        ).scalar_one()
        submitted = conn.execute(
            select(func.count())
            .select_from(t.assignments)
            .where(t.assignments.c.status == str(AssignmentStatus.SUBMITTED))
        ).scalar_one()

    assert over_full == []
    assert doubles == []
    assert len(acknowledged) == len(set(acknowledged)) == TASKS * OVERLAP
    assert set(acknowledged) == stored  # every acknowledged response is there, nothing else is
    assert len(task_rows) == len(made) == TASKS
    for task in task_rows:
        assert task["status"] == str(TaskStatus.COMPLETED), task["id"]
        assert task["response_count"] == actual[task["id"]] == OVERLAP
        assert task["lease_count"] == 0
        # an answer, or an explicit tie that names the answers it cannot tell apart
        assert task["result"]["answer"]["sentiment"] in LABELS or set(
            task["result"]["questions"]["sentiment"]["tie"]
        ) <= set(LABELS)
        assert len(set(task["result"]["workers"])) == OVERLAP
    assert active == 0
    assert submitted == TASKS * OVERLAP  # every response came through its lease
    assert projects.get_batch(org.db, org.owner.principal, batch["id"])["status"] == "completed"


def test_racing_submits_of_one_worker_store_one_response(org: Org) -> None:
    """The same answer sent many times at once (a retry storm): one stored, the rest replays or 409."""
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    start = threading.Barrier(8)
    answer = ResponseCreate(answer={"sentiment": "neutral"})

    def send(i: int) -> str:
        start.wait()
        key = "same-key" if i % 2 == 0 else None
        try:
            result = queue.submit(org.db, worker.principal, task["id"], answer, idempotency_key=key)
        except Conflict:
            return "conflict"
        return result["response"]["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(send, range(8)))
    with org.db.read() as conn:
        stored = list(conn.execute(select(t.responses.c.id)).scalars())
    assert len(stored) == 1
    # each request either got the one stored response (first or replayed) or was refused
    assert {o for i, o in enumerate(outcomes) if i % 2 == 0} <= {stored[0], "conflict"}
    assert set(outcomes) - {"conflict"} == {stored[0]}


def test_a_batch_whose_last_two_tasks_complete_at_once_completes(org: Org) -> None:
    """Two workers finishing a batch's last two tasks at the same moment: someone completes the batch.

    On PostgreSQL (READ COMMITTED) each transaction alone still sees the other's task open.
    """
    project = org.make_project(overlap=1)
    workers = [org.add_member(), org.add_member()]
    answer = ResponseCreate(answer={"sentiment": "positive"})
    for _ in range(15):
        batch = org.make_batch(project["id"])
        pair = org.make_tasks(project["id"], 2, batch_id=batch["id"])
        projects.finalize_batch(org.db, org.owner.principal, batch["id"])
        start = threading.Barrier(2)

        def finish(i: int, pair: list[dict] = pair, start: threading.Barrier = start) -> str:
            start.wait()
            queue.submit(org.db, workers[i].principal, pair[i]["id"], answer)
            return org.task(pair[i]["id"])["status"]

        with ThreadPoolExecutor(max_workers=2) as pool:
            assert list(pool.map(finish, range(2))) == ["completed", "completed"]
        assert projects.get_batch(org.db, org.owner.principal, batch["id"])["status"] == "completed"


def test_two_owners_stepping_down_at_once_leave_one_owner(org: Org) -> None:
    """Each sees another active owner; together they must not leave the organization ownerless."""
    for _ in range(10):
        owners = [org.owner, org.add_member(Role.OWNER)]
        start = threading.Barrier(2)

        def step_down(i: int, owners: list[Actor] = owners, start: threading.Barrier = start) -> str:
            start.wait()
            try:
                accounts.update_member(org.db, owners[i].principal, owners[i].id, MemberUpdate(role=Role.ADMIN))
            except Conflict:
                return "refused"
            return "done"

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(step_down, range(2)))
        assert outcomes == ["done", "refused"]
        with org.db.read() as conn:
            owners_left = conn.execute(
                select(func.count())
                .select_from(t.members)
                .where(t.members.c.role == "owner", t.members.c.disabled_at.is_(None))
            ).scalar_one()
        assert owners_left == 1
        org.owner = next(o for o in owners if accounts.get_member(org.db, o.principal, o.id)["role"] == "owner")


def test_racing_creates_with_one_unique_id_make_one_task(org: Org) -> None:
    """Client retries of one task creation arriving together: one task, every caller gets it."""
    project = org.make_project()
    start = threading.Barrier(8)

    def create(i: int) -> tuple[str, bool]:
        start.wait()
        task = tasks.create_task(
            org.db, org.owner.principal, project["id"], TaskCreate(data={"text": f"try {i}"}, unique_id="once")
        )
        return task["id"], task["created"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(create, range(8)))
    assert len({task_id for task_id, _ in outcomes}) == 1
    assert sorted(created for _, created in outcomes) == [False] * 7 + [True]
    assert len(org.all_tasks()) == 1


def test_racing_imports_of_the_same_unique_ids_store_each_once(org: Org) -> None:
    """Two overlapping bulk imports at once (a retried upload): every unique_id is stored once."""
    project = org.make_project()
    start = threading.Barrier(2)
    items = [(i + 1, {"data": {"text": f"item {i}"}, "unique_id": f"u{i}"}) for i in range(300)]

    def run(on_error: str) -> tasks.ImportReport:
        start.wait()
        return tasks.import_tasks(org.db, org.owner.principal, project["id"], items, on_error=on_error)  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(run, ["reject", "skip"]))
    assert all(r.created + r.existing == 300 and r.invalid == 0 and r.stored for r in reports)
    assert sum(r.created for r in reports) == 300
    stored = org.all_tasks()
    assert sorted(x["unique_id"] for x in stored) == sorted(f"u{i}" for i in range(300))


def test_racing_duplicates_get_conflict_not_a_database_error(org: Org) -> None:
    """Two batches with one name, two members with one email, at the same moment: one wins, one 409."""
    project = org.make_project()

    def race(make: Callable[[], object]) -> list[str]:
        start = threading.Barrier(4)

        def attempt(_: int) -> str:
            start.wait()
            try:
                make()
            except Conflict:
                return "conflict"
            return "made"

        with ThreadPoolExecutor(max_workers=4) as pool:
            return sorted(pool.map(attempt, range(4)))

    for n in range(3):
        assert race(lambda n=n: org.make_batch(project["id"], name=f"b{n}")) == ["conflict"] * 3 + ["made"]
        assert race(lambda n=n: org.add_member(email=f"same{n}@x.io")) == ["conflict"] * 3 + ["made"]

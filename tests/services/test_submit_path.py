"""The submit path's shortcuts keep its behaviour: counts written with the result, reads memoised per
transaction (webhook subscriptions, model versions) and forgotten by the writes that change them.

SQLite always, PostgreSQL when configured. On SQLite the writer thread runs the calls waiting at once
in one transaction, which is where a memo lives longest; the batch tests hold the writer on an event
so that their calls are certain to share one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from truthset.config import Settings
from truthset.domain import TaskStatus
from truthset.schemas import ResponseCreate, WebhookCreate, WebhookUpdate
from truthset.services import queue, webhooks
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

DYNAMIC = {"min_overlap": 1, "max_overlap": 3, "target_confidence": 0.999}  # asks again until 3


def answer(sentiment: str = "positive", assignment_id: str | None = None) -> ResponseCreate:
    return ResponseCreate(answer={"sentiment": sentiment}, assignment_id=assignment_id)


def stored_counts(db: Database, task_id: str) -> dict[str, int]:
    """The task row's counters next to what the rows they count say."""
    with db.read() as conn:
        row = conn.execute(select(t.tasks).where(t.tasks.c.id == task_id)).mappings().one()
        responses = conn.execute(select(func.count()).where(t.responses.c.task_id == task_id)).scalar_one()
        active = conn.execute(
            select(func.count()).where(t.assignments.c.task_id == task_id, t.assignments.c.status == "active")
        ).scalar_one()
    return {
        "response_count": row["response_count"],
        "responses": responses,
        "lease_count": row["lease_count"],
        "active_leases": active,
        "overlap": row["overlap"],
    }


def test_counts_are_stored_with_the_result_whether_leased_or_not(org: Org) -> None:
    project = org.make_project(quality=DYNAMIC)
    (task,) = org.make_tasks(project["id"], 1)
    workers = [org.add_member() for _ in range(3)]
    # a leased answer, an answer while another worker holds a lease, and that lease's answer
    lease = queue.next_assignment(org.db, workers[0].principal, project["id"])
    assert lease is not None
    queue.submit(org.db, workers[0].principal, task["id"], answer(assignment_id=lease["id"]))
    first = stored_counts(org.db, task["id"])
    assert first == {"response_count": 1, "responses": 1, "lease_count": 0, "active_leases": 0, "overlap": 2}
    held = queue.next_assignment(org.db, workers[1].principal, project["id"])
    assert held is not None and stored_counts(org.db, task["id"])["lease_count"] == 1
    queue.submit(org.db, workers[1].principal, task["id"], answer("negative", assignment_id=held["id"]))
    second = stored_counts(org.db, task["id"])
    assert second == {"response_count": 2, "responses": 2, "lease_count": 0, "active_leases": 0, "overlap": 3}
    queue.submit(org.db, workers[2].principal, task["id"], answer())  # no lease: takes the free slot
    done = org.task(task["id"])
    assert done["status"] == str(TaskStatus.COMPLETED)
    assert done["response_count"] == 3 and done["result"]["response_count"] == 3
    last = stored_counts(org.db, task["id"])
    assert last == {"response_count": 3, "responses": 3, "lease_count": 0, "active_leases": 0, "overlap": 3}


def test_an_answer_below_the_overlap_is_counted_alone(org: Org) -> None:
    project = org.make_project(overlap=2)
    (task,) = org.make_tasks(project["id"], 1)
    worker = org.add_member()
    queue.submit(org.db, worker.principal, task["id"], answer())
    assert stored_counts(org.db, task["id"]) == {
        "response_count": 1,
        "responses": 1,
        "lease_count": 0,
        "active_leases": 0,
        "overlap": 2,
    }
    assert org.task(task["id"])["status"] == str(TaskStatus.PENDING)


def test_the_memo_lives_for_one_transaction(db: Database) -> None:
    with db.write() as conn:
        memo = repo.transaction_memo(conn)
        memo["k"] = 1
        assert repo.transaction_memo(conn) is memo
        repo.forget(conn, "k")
        assert "k" not in repo.transaction_memo(conn)
        memo["k"] = 2
    with db.write() as conn:
        assert "k" not in repo.transaction_memo(conn)


def in_one_batch(db: Database, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` through the writer (as the API's submit route does), held until all are queued,
    so that on SQLite they run in one transaction (after the gate's own); returns their results (or
    raises the first error)."""
    if db._batch_writer is None:  # PostgreSQL: one transaction per call, in this order
        return [call() for call in calls]
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(30)

    gate = db.submit(hold)
    entered.wait(30)  # the writer runs the gate: every call below waits for the next transaction
    futures = [db.submit(call) for call in calls]
    release.set()
    gate.result()
    return [future.result() for future in futures]


def test_a_webhook_created_between_two_submits_of_one_transaction_gets_the_later_events(
    org: Org, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    project = org.make_project()
    first, second = org.make_tasks(project["id"], 2)
    workers = [org.add_member() for _ in range(2)]
    data = WebhookCreate.model_validate({"url": "https://93.184.216.34/hook", "events": ["task.completed"]})
    before = org.db._batch_writer.batches if org.db._batch_writer else 0
    in_one_batch(
        org.db,
        [
            lambda: queue.submit(org.db, workers[0].principal, first["id"], answer()),  # reads: no subscription
            lambda: webhooks.create_webhook(org.db, settings, org.owner.principal, data),
            lambda: queue.submit(org.db, workers[1].principal, second["id"], answer()),
        ],
    )
    if org.db._batch_writer is not None:  # SQLite: the gate's transaction, then the three calls' one
        assert org.db._batch_writer.batches - before == 2
    with org.db.read() as conn:
        rows = conn.execute(select(t.webhook_deliveries.c.payload)).mappings().all()
    assert [row["payload"]["task"]["id"] for row in rows] == [second["id"]]


def test_a_disabled_webhook_gets_no_event_later_in_the_same_transaction(org: Org, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    project = org.make_project()
    first, second = org.make_tasks(project["id"], 2)
    workers = [org.add_member() for _ in range(2)]
    data = WebhookCreate.model_validate({"url": "https://93.184.216.34/hook", "events": ["task.completed"]})
    hook = webhooks.create_webhook(org.db, settings, org.owner.principal, data)
    off = WebhookUpdate(active=False)
    in_one_batch(
        org.db,
        [
            lambda: queue.submit(org.db, workers[0].principal, first["id"], answer()),
            lambda: webhooks.update_webhook(org.db, settings, org.owner.principal, hook["id"], off),
            lambda: queue.submit(org.db, workers[1].principal, second["id"], answer()),
        ],
    )
    with org.db.read() as conn:
        rows = conn.execute(select(t.webhook_deliveries.c.payload)).mappings().all()
    assert [row["payload"]["task"]["id"] for row in rows] == [first["id"]]

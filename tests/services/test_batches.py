"""Batches: open -> finalized -> completed, staged tasks, cancel, status counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from truthset.domain import BatchStatus, Role, TaskStatus
from truthset.errors import Conflict, Forbidden, InvalidInput, NotFound
from truthset.schemas import BatchCreate, ResponseCreate, TaskCreate
from truthset.services import projects, queue, tasks
from truthset.storage import repositories as repo
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

ANSWER = ResponseCreate(answer={"sentiment": "positive"})


def test_create_batch_is_open_and_names_are_unique_per_project(org: Org) -> None:
    project = org.make_project()
    other = org.make_project()
    batch = org.make_batch(project["id"], name="week 1", source="upload")
    assert batch["status"] == str(BatchStatus.OPEN)
    assert batch["metadata"] == {"source": "upload"}
    assert batch["counts"] == {}
    with pytest.raises(Conflict) as exc:
        org.make_batch(project["id"], name="week 1")
    assert exc.value.details == {"field": "name"}
    assert org.make_batch(other["id"], name="week 1")["project_id"] == other["id"]


def test_annotators_do_not_manage_batches(org: Org) -> None:
    project = org.make_project()
    annotator = org.principal_for(Role.ANNOTATOR)
    with pytest.raises(Forbidden):
        projects.create_batch(org.db, annotator, project["id"], BatchCreate(name="x"))
    batch = org.make_batch(project["id"])
    with pytest.raises(Forbidden):
        projects.finalize_batch(org.db, annotator, batch["id"])
    with pytest.raises(Forbidden):
        projects.cancel_batch(org.db, annotator, batch["id"])
    with pytest.raises(NotFound):
        projects.create_batch(org.db, org.owner.principal, "0" * 24, BatchCreate(name="x"))


def test_staged_tasks_are_served_only_after_finalize(org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    staged = org.make_tasks(project["id"], 3, batch_id=batch["id"])
    assert {t["status"] for t in staged} == {str(TaskStatus.STAGED)}
    annotator = org.principal_for(Role.ANNOTATOR)
    assert queue.next_assignment(org.db, annotator, project["id"]) is None
    # nor answered directly
    with pytest.raises(Conflict):
        queue.submit(org.db, annotator, staged[0]["id"], ANSWER)
    assert projects.get_batch(org.db, org.owner.principal, batch["id"])["counts"] == {"staged": 3}

    finalized = projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    assert finalized["status"] == str(BatchStatus.FINALIZED)
    assert finalized["finalized_at"] is not None
    assert finalized["counts"] == {"pending": 3}
    lease = queue.next_assignment(org.db, annotator, project["id"])
    assert lease is not None and lease["task"]["id"] == staged[0]["id"]


def test_batch_goes_open_finalized_completed(org: Org) -> None:
    project = org.make_project(overlap=1)
    batch = org.make_batch(project["id"])
    made = org.make_tasks(project["id"], 2, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    # finalizing twice is harmless
    assert projects.finalize_batch(org.db, org.owner.principal, batch["id"])["status"] == "finalized"
    # tasks added to a finalized batch go straight to the queue
    late = org.make_task(project["id"], batch_id=batch["id"])
    assert late["status"] == str(TaskStatus.PENDING)

    annotator = org.principal_for(Role.ANNOTATOR)
    for task in [*made, late]:
        assert projects.get_batch(org.db, org.owner.principal, batch["id"])["status"] == "finalized"
        queue.submit(org.db, annotator, task["id"], ANSWER)
    done = projects.get_batch(org.db, org.owner.principal, batch["id"])
    assert done["status"] == str(BatchStatus.COMPLETED)
    assert done["completed_at"] is not None
    assert done["counts"] == {"completed": 3}
    # a completed batch takes no more tasks and cannot be canceled
    with pytest.raises(Conflict):
        org.make_task(project["id"], batch_id=batch["id"])
    with pytest.raises(Conflict):
        projects.cancel_batch(org.db, org.owner.principal, batch["id"])


def test_finalizing_an_empty_batch_completes_it(org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    done = projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    assert done["status"] == str(BatchStatus.COMPLETED)


def test_cancel_batch_cancels_open_tasks_and_keeps_results(org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    made = org.make_tasks(project["id"], 3, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    annotator = org.principal_for(Role.ANNOTATOR)
    queue.submit(org.db, annotator, made[0]["id"], ANSWER)

    canceled = projects.cancel_batch(org.db, org.owner.principal, batch["id"])
    assert canceled["status"] == str(BatchStatus.CANCELED)
    assert canceled["counts"] == {"completed": 1, "canceled": 2}
    assert tasks.get_task(org.db, org.owner.principal, made[0]["id"])["result"] is not None
    # canceling again is harmless; nothing else is possible
    assert projects.cancel_batch(org.db, org.owner.principal, batch["id"])["status"] == "canceled"
    with pytest.raises(Conflict):
        projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    with pytest.raises(Conflict):
        org.make_task(project["id"], batch_id=batch["id"])
    assert queue.next_assignment(org.db, annotator, project["id"]) is None
    with pytest.raises(Conflict):
        queue.submit(org.db, annotator, made[1]["id"], ANSWER)


def test_cancel_an_open_batch(org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    org.make_tasks(project["id"], 2, batch_id=batch["id"])
    canceled = projects.cancel_batch(org.db, org.owner.principal, batch["id"])
    assert canceled["counts"] == {"canceled": 2}


def test_batch_of_another_project_is_refused(org: Org) -> None:
    project = org.make_project()
    other = org.make_project()
    batch = org.make_batch(other["id"])
    with pytest.raises(InvalidInput) as exc:
        org.make_task(project["id"], batch_id=batch["id"])
    assert exc.value.details == {"field": "batch_id"}
    with pytest.raises(NotFound):
        org.make_task(project["id"], batch_id="0" * 24)


def test_list_batches_with_counts(org: Org) -> None:
    project = org.make_project()
    first = org.make_batch(project["id"], name="a")
    second = org.make_batch(project["id"], name="b")
    org.make_tasks(project["id"], 2, batch_id=first["id"])
    projects.finalize_batch(org.db, org.owner.principal, second["id"])
    listed, cursor = projects.list_batches(org.db, org.owner.principal, project["id"], cursor=None, limit=10)
    assert cursor is None
    assert [(b["name"], b["status"], b["counts"]) for b in listed] == [
        ("a", "open", {"staged": 2}),
        ("b", "completed", {}),
    ]
    reviewer = org.principal_for(Role.REVIEWER)
    assert projects.get_batch(org.db, reviewer, first["id"])["counts"] == {"staged": 2}
    with pytest.raises(Forbidden):
        projects.get_batch(org.db, org.principal_for(Role.ANNOTATOR), first["id"])


def test_single_task_in_open_batch_is_staged(org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    task = tasks.create_task(
        org.db, org.owner.principal, project["id"], TaskCreate(data={"text": "x"}, batch_id=batch["id"])
    )
    assert task["status"] == str(TaskStatus.STAGED) and task["created"] is True


def test_a_batch_left_finalized_by_a_crash_completes_when_read(org: Org) -> None:
    """The last task's batch check runs after its commit; if the process died in between, reading
    the batch finishes the job instead of showing it finalized forever."""
    project = org.make_project(overlap=1)
    batch = org.make_batch(project["id"])
    (task,) = org.make_tasks(project["id"], 1, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    queue.submit(org.db, org.add_member().principal, task["id"], ResponseCreate(answer={"sentiment": "neutral"}))
    with org.db.write() as conn:  # what a crash between the commit and the batch check leaves
        repo.change(conn, t.batches, org.id, batch["id"], status=str(BatchStatus.FINALIZED), completed_at=None)
    listed = projects.list_batches(org.db, org.owner.principal, project["id"], cursor=None, limit=10)[0]
    assert [b["status"] for b in listed] == ["completed"]
    got = projects.get_batch(org.db, org.owner.principal, batch["id"])
    assert got["status"] == "completed" and got["completed_at"] is not None and got["counts"] == {"completed": 1}

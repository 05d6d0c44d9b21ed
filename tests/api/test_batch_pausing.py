"""Pausing and resuming a batch: a paused batch's waiting tasks leave the queue, a task out on a
lease when it was paused still takes its answer, and resuming puts the tasks back."""

from __future__ import annotations

from .helpers import ANSWER, API, Api, Org, assert_error


def _finalized(api: Api, org: Org, n: int) -> tuple[dict, dict]:
    project = org.make_project()
    batch = org.make_batch(project["id"], name="paused one")
    org.make_tasks(project["id"], n, batch_id=batch["id"])
    assert api.post(f"{API}/batches/{batch['id']}/finalize", auth=org.owner).status_code == 200
    return project, batch


def test_a_paused_batch_serves_nothing_until_resumed(api: Api, org: Org) -> None:
    project, batch = _finalized(api, org, 3)
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=org.owner)
    assert lease.status_code == 200
    paused = api.post(f"{API}/batches/{batch['id']}/pause", auth=org.owner).json()
    assert paused["status"] == "paused" and paused["counts"] == {"staged": 2, "pending": 1}
    annotator = org.actor("annotator")
    assert api.post(f"{API}/projects/{project['id']}/next", auth=annotator).status_code == 204
    # the task out on a lease still takes its worker's answer
    task_id = lease.json()["task"]["id"]
    answered = api.post(f"{API}/tasks/{task_id}/responses", auth=org.owner, json={"answer": ANSWER})
    assert answered.status_code == 201, answered.text
    assert api.get(f"{API}/batches/{batch['id']}", auth=org.owner).json()["status"] == "paused"
    assert_error(api.post(f"{API}/batches/{batch['id']}/finalize", auth=org.owner), 409)
    resumed = api.post(f"{API}/batches/{batch['id']}/resume", auth=org.owner).json()
    assert resumed["status"] == "finalized" and resumed["counts"] == {"pending": 2, "completed": 1}
    assert api.post(f"{API}/projects/{project['id']}/next", auth=annotator).status_code == 200


def test_only_a_finalized_batch_pauses_and_only_a_paused_one_resumes(api: Api, org: Org) -> None:
    project = org.make_project()
    open_batch = org.make_batch(project["id"], name="open")
    error = assert_error(api.post(f"{API}/batches/{open_batch['id']}/pause", auth=org.owner), 409, "conflict")
    assert "open batch cannot be paused" in error["message"]
    error = assert_error(api.post(f"{API}/batches/{open_batch['id']}/resume", auth=org.owner), 409, "conflict")
    assert "cannot be resumed" in error["message"]
    _, batch = _finalized(api, org, 1)
    assert api.post(f"{API}/batches/{batch['id']}/pause", auth=org.owner).status_code == 200
    assert api.post(f"{API}/batches/{batch['id']}/pause", auth=org.owner).json()["status"] == "paused"  # twice: fine
    canceled = api.post(f"{API}/batches/{batch['id']}/cancel", auth=org.owner).json()
    assert canceled["status"] == "canceled" and canceled["counts"] == {"canceled": 1}
    assert_error(api.post(f"{API}/batches/{batch['id']}/resume", auth=org.owner), 409)


def test_resuming_a_batch_with_nothing_open_completes_it(api: Api, org: Org) -> None:
    project, batch = _finalized(api, org, 1)
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=org.owner).json()
    api.post(f"{API}/batches/{batch['id']}/pause", auth=org.owner)
    api.post(f"{API}/tasks/{lease['task']['id']}/responses", auth=org.owner, json={"answer": ANSWER})
    resumed = api.post(f"{API}/batches/{batch['id']}/resume", auth=org.owner).json()
    assert resumed["status"] == "completed" and resumed["completed_at"]


def test_an_archived_project_pauses_but_does_not_resume(api: Api, org: Org) -> None:
    project, batch = _finalized(api, org, 1)
    api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json={"archived": True})
    assert api.post(f"{API}/batches/{batch['id']}/pause", auth=org.owner).status_code == 200
    assert_error(api.post(f"{API}/batches/{batch['id']}/resume", auth=org.owner), 409, "project_archived")

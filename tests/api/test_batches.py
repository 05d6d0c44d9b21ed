"""Batches: open -> finalized -> completed, or canceled; counts of tasks per status."""

from __future__ import annotations

from .helpers import ANSWER, API, Api, Org, assert_error


def test_batch_lifecycle_with_counts(api: Api, org: Org) -> None:
    project = org.make_project()
    r = api.post(f"{API}/projects/{project['id']}/batches", auth=org.owner, json={"name": "b1", "metadata": {"a": 1}})
    assert r.status_code == 201 and r.json()["status"] == "open" and r.json()["metadata"] == {"a": 1}
    batch = r.json()
    for n in range(3):
        api.post(
            f"{API}/projects/{project['id']}/tasks",
            auth=org.owner,
            json={"data": {"text": f"t{n}"}, "batch_id": batch["id"]},
        )
    assert api.get(f"{API}/batches/{batch['id']}", auth=org.owner).json()["counts"] == {"staged": 3}
    assert api.post(f"{API}/projects/{project['id']}/next", auth=org.owner).status_code == 204  # staged: not served
    finalized = api.post(f"{API}/batches/{batch['id']}/finalize", auth=org.owner).json()
    assert finalized["status"] == "finalized" and finalized["counts"] == {"pending": 3} and finalized["finalized_at"]
    assert api.post(f"{API}/batches/{batch['id']}/finalize", auth=org.owner).status_code == 200  # harmless twice
    listed = api.get(f"{API}/projects/{project['id']}/batches", auth=org.owner).json()["items"]
    assert [b["id"] for b in listed] == [batch["id"]] and listed[0]["counts"] == {"pending": 3}
    while (lease := api.post(f"{API}/projects/{project['id']}/next", auth=org.owner)).status_code == 200:
        task_id = lease.json()["task"]["id"]
        assert api.post(f"{API}/tasks/{task_id}/responses", auth=org.owner, json={"answer": ANSWER}).status_code == 201
    done = api.get(f"{API}/batches/{batch['id']}", auth=org.owner).json()
    assert done["status"] == "completed" and done["counts"] == {"completed": 3} and done["completed_at"]
    assert_error(api.post(f"{API}/batches/{batch['id']}/cancel", auth=org.owner), 409, "conflict")
    assert_error(api.post(f"{API}/projects/{project['id']}/batches", auth=org.owner, json={"name": "b1"}), 409)


def test_cancel_keeps_completed_results(api: Api, org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    tasks = org.make_tasks(project["id"], 3, batch_id=batch["id"])
    api.post(f"{API}/batches/{batch['id']}/finalize", auth=org.owner)
    api.post(f"{API}/tasks/{tasks[0]['id']}/responses", auth=org.owner, json={"answer": ANSWER})
    canceled = api.post(f"{API}/batches/{batch['id']}/cancel", auth=org.owner).json()
    assert canceled["status"] == "canceled" and canceled["counts"] == {"completed": 1, "canceled": 2}
    assert_error(api.post(f"{API}/batches/{batch['id']}/finalize", auth=org.owner), 409, "conflict")
    r = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"text": "x"}, "batch_id": batch["id"]}
    )
    assert_error(r, 409, "conflict")

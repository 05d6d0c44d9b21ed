"""The queue: next (a lease, or 204), submit (idempotent), skip, release, completion with a result."""

from __future__ import annotations

from sqlalchemy import func, select

from truthset.storage import tables as t

from .helpers import ANSWER, API, Api, Org, assert_error


def _responses(org: Org) -> int:
    with org.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.responses)).scalar_one())


def test_next_leases_then_204_when_nothing_is_left(api: Api, org: Org) -> None:
    project = org.make_project(lease_seconds=60)
    task = org.make_task(project["id"])
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=annotator)
    assert lease.status_code == 200, lease.text
    body = lease.json()
    assert body["task"]["id"] == task["id"] and body["status"] == "active"
    assert body["worker_id"] == annotator.worker_id and body["expires_at"] > body["created_at"]
    empty = api.post(f"{API}/projects/{project['id']}/next", auth=annotator)
    assert empty.status_code == 204 and empty.content == b""
    assert api.post(f"{API}/projects/{project['id']}/next", auth=org.actor("reviewer")).status_code == 204


def test_submit_and_idempotent_replay(api: Api, org: Org) -> None:
    project = org.make_project(overlap=2)
    task = org.make_task(project["id"])
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=annotator).json()
    body = {"answer": {"sentiment": "positive", "stars": 4}, "assignment_id": lease["id"], "duration_ms": 1200}
    headers = {"Idempotency-Key": "try-1"}
    first = api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert first.json()["response"]["assignment_id"] == lease["id"]
    assert first.json()["task"]["response_count"] == 1 and first.json()["task"]["status"] == "pending"
    stored = _responses(org)
    replay = api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=body, headers=headers)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["response"] == first.json()["response"]
    assert _responses(org) == stored
    # without the key, a second answer is a conflict
    assert_error(api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json={"answer": body["answer"]}), 409)
    assert _responses(org) == stored


def test_a_reused_idempotency_key_with_another_request_is_refused(api: Api, org: Org) -> None:
    """IETF draft-ietf-httpapi-idempotency-key-header: the same key with another payload is a 422."""
    project = org.make_project(overlap=2)
    task, other = org.make_task(project["id"]), org.make_task(project["id"], "other")
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=annotator).json()
    body = {"answer": {"sentiment": "positive", "stars": 4}, "assignment_id": lease["id"], "duration_ms": 1200}
    headers = {"Idempotency-Key": "try-1"}
    first = api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=body, headers=headers)
    assert first.status_code == 201, first.text
    stored = _responses(org)
    changed = [
        ("answer", task, {**body, "answer": {"sentiment": "negative", "stars": 4}}),
        ("answer", task, {**body, "answer": {"sentiment": "positive"}}),
        ("duration_ms", task, {**body, "duration_ms": 1300}),
        ("duration_ms", task, {"answer": body["answer"], "assignment_id": lease["id"]}),
        ("assignment_id", task, {**body, "assignment_id": "0" * 24}),
        ("task_id", other, body),
    ]
    for differs, target, changed_body in changed:
        r = api.post(f"{API}/tasks/{target['id']}/responses", auth=annotator, json=changed_body, headers=headers)
        error = assert_error(r, 422, "idempotency_key_reused")
        assert error["details"]["field"] == "Idempotency-Key" and differs in error["details"]["differs"], error
        assert error["message"].startswith("Idempotency-Key"), error
        assert "Idempotent-Replayed" not in r.headers
    assert _responses(org) == stored
    # the very same request is still a replay; without the assignment id too (the stored one is the lease)
    same = {"answer": body["answer"], "duration_ms": 1200}
    replay = api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=same, headers=headers)
    assert replay.status_code == 200 and replay.json()["response"] == first.json()["response"]


def test_idempotency_keys_are_scoped_to_the_caller(api: Api, org: Org) -> None:
    """Two members sending the same key value never see each other's response."""
    project = org.make_project(overlap=2)
    task = org.make_task(project["id"])
    ann, bob = org.add_member("annotator"), org.add_member("annotator")
    headers = {"Idempotency-Key": "same-value"}
    mine = api.post(f"{API}/tasks/{task['id']}/responses", auth=ann, json={"answer": ANSWER}, headers=headers)
    theirs = api.post(
        f"{API}/tasks/{task['id']}/responses", auth=bob, json={"answer": {"sentiment": "negative"}}, headers=headers
    )
    assert mine.status_code == 201 and theirs.status_code == 201, theirs.text
    assert mine.json()["response"]["id"] != theirs.json()["response"]["id"]
    assert theirs.json()["response"]["worker_id"] == bob.worker_id
    assert theirs.json()["response"]["answer"] == {"sentiment": "negative"}
    again = api.post(f"{API}/tasks/{task['id']}/responses", auth=ann, json={"answer": ANSWER}, headers=headers)
    assert again.status_code == 200 and again.json()["response"] == mine.json()["response"]


def test_completion_by_majority_with_confidence(api: Api, org: Org) -> None:
    project = org.make_project(overlap=3)
    task = org.make_task(project["id"])
    votes = ["positive", "negative", "positive"]
    for n, vote in enumerate(votes):
        worker = org.add_member("annotator")
        lease = api.post(f"{API}/projects/{project['id']}/next", auth=worker).json()
        assert lease["task"]["id"] == task["id"]
        # labelling is blind: nobody is served the answers so far, nor how many there are
        served = lease["task"]
        assert (served["result"], served["confidence"], served["response_count"]) == (None, None, 0)
        r = api.post(f"{API}/tasks/{task['id']}/responses", auth=worker, json={"answer": {"sentiment": vote}})
        assert r.status_code == 201
        # an annotator's reply is the same whether the task completed or not (as it is for a gold task)
        seen = r.json()["task"]
        assert (seen["status"], seen["result"], seen["response_count"]) == ("pending", None, 1), n
        assert api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()["status"] == (
            "completed" if n == 2 else "pending"
        )
    done = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()
    assert done["status"] == "completed" and done["completed_at"]
    assert done["result"]["answer"] == {"sentiment": "positive"}
    assert abs(done["confidence"] - 0.0735 / (0.0735 + 0.01575 + 0.003375)) < 1e-6  # see tests/services/test_queue.py
    assert done["result"]["response_count"] == 3
    extra = org.add_member("annotator")
    assert api.post(f"{API}/projects/{project['id']}/next", auth=extra).status_code == 204
    assert_error(
        api.post(f"{API}/tasks/{task['id']}/responses", auth=extra, json={"answer": {"sentiment": "neutral"}}), 409
    )


def test_skip_never_comes_back_release_does(api: Api, org: Org) -> None:
    project = org.make_project()
    task = org.make_task(project["id"])
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=annotator).json()
    released = api.post(f"{API}/assignments/{lease['id']}/release", auth=annotator)
    assert released.status_code == 200 and released.json()["status"] == "released"
    again = api.post(f"{API}/projects/{project['id']}/next", auth=annotator).json()
    assert again["task"]["id"] == task["id"] and again["id"] != lease["id"]
    skipped = api.post(f"{API}/assignments/{again['id']}/skip", auth=annotator)
    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    assert api.post(f"{API}/projects/{project['id']}/next", auth=annotator).status_code == 204
    assert_error(api.post(f"{API}/assignments/{again['id']}/release", auth=annotator), 409, "conflict")
    # someone else still gets it
    assert (
        api.post(f"{API}/projects/{project['id']}/next", auth=org.actor("reviewer")).json()["task"]["id"] == task["id"]
    )


def test_a_task_never_gets_more_leases_than_it_needs(api: Api, org: Org) -> None:
    project = org.make_project(overlap=2)
    task = org.make_task(project["id"])
    workers = [org.add_member("annotator") for _ in range(3)]
    leased = [api.post(f"{API}/projects/{project['id']}/next", auth=w) for w in workers]
    assert [r.status_code for r in leased] == [200, 200, 204]
    assert {r.json()["task"]["id"] for r in leased[:2]} == {task["id"]}
    # an answer without a lease while both slots are leased: a conflict, nothing stored
    assert_error(
        api.post(f"{API}/tasks/{task['id']}/responses", auth=workers[2], json={"answer": {"sentiment": "neutral"}}),
        409,
        "conflict",
    )
    assert _responses(org) == 0

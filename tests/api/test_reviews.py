"""Review and history through the API: the review queue, verdicts, errors naming the field, history."""

from __future__ import annotations

from typing import Any

from truthset.schemas import ResponseCreate
from truthset.services import queue

from .helpers import API, Api, Org, assert_error


def _reviewable(org: Org, sentiment: str = "positive") -> tuple[dict[str, Any], dict[str, Any]]:
    project = org.make_project(quality={"overlap": 1, "review": {"sample_rate": 1.0}})
    (task,) = org.make_tasks(project["id"], 1)
    queue.submit(org.db, org.actor("annotator").principal, task["id"], ResponseCreate(answer={"sentiment": sentiment}))
    return project, task


def test_a_reviewer_takes_the_next_review_and_fixes_it(api: Api, org: Org) -> None:
    project, task = _reviewable(org)
    reviewer = org.actor("reviewer")
    listed = api.get(f"{API}/tasks", auth=reviewer, params={"project_id": project["id"], "review_status": "pending"})
    assert [t["id"] for t in listed.json()["items"]] == [task["id"]]
    item = api.post(f"{API}/projects/{project['id']}/reviews/next", auth=reviewer)
    assert item.status_code == 200, item.text
    body = item.json()
    assert body["task"]["id"] == task["id"] and body["task"]["review_status"] == "reviewing"
    assert [(r["answer"], r["worker_kind"]) for r in body["responses"]] == [({"sentiment": "positive"}, "human")]
    assert body["expires_at"].endswith("Z")
    assert api.post(f"{API}/projects/{project['id']}/reviews/next", auth=reviewer).status_code == 204
    fixed = api.post(
        f"{API}/tasks/{task['id']}/reviews", auth=reviewer, json={"verdict": "fix", "answer": {"sentiment": "negative"}}
    )
    assert fixed.status_code == 201, fixed.text
    out = fixed.json()
    assert out["review"]["verdict"] == "fix" and out["review"]["response_id"]
    assert out["task"]["result"]["answer"]["sentiment"] == "negative"
    assert out["task"]["review_status"] == "fixed"
    reviews = api.get(f"{API}/tasks/{task['id']}/reviews", auth=org.owner).json()
    assert [(r["verdict"], r["reviewer_id"]) for r in reviews] == [("fix", reviewer.worker_id)]
    assert reviews[0]["reviewer_name"] is not None
    steps = api.get(f"{API}/tasks/{task['id']}/history", auth=org.owner).json()
    kinds = [s["kind"] for s in steps]
    assert kinds[0] == "created" and kinds[-1] == "reviewed" and "response" in kinds
    assert all(s["at"].endswith("Z") for s in steps)


def test_bad_verdicts_name_the_field(api: Api, org: Org) -> None:
    _, task = _reviewable(org)
    reviewer = org.actor("reviewer")
    url = f"{API}/tasks/{task['id']}/reviews"
    error = assert_error(api.post(url, auth=reviewer, json={"verdict": "reject"}), 422)
    assert error["details"]["field"] == "reason"
    error = assert_error(api.post(url, auth=reviewer, json={"verdict": "fix", "answer": {"sentiment": "x"}}), 422)
    assert error["details"]["field"] == "answer" and error["message"].startswith("answer.sentiment")
    error = assert_error(api.post(url, auth=reviewer, json={"verdict": "maybe"}), 422)
    assert "verdict" in str(error["details"])
    rejected = api.post(url, auth=reviewer, json={"verdict": "reject", "reason": "wrong language"})
    assert rejected.status_code == 201 and rejected.json()["task"]["status"] == "pending"
    assert_error(api.post(url, auth=reviewer, json={"verdict": "accept"}), 409)  # no longer completed


def test_an_annotator_is_refused_and_another_orgs_task_is_not_found(api: Api, org: Org, other_org: Org) -> None:
    project, task = _reviewable(org)
    annotator = org.add_member("annotator")
    assert_error(api.post(f"{API}/projects/{project['id']}/reviews/next", auth=annotator), 403, "forbidden")
    assert_error(api.post(f"{API}/tasks/{task['id']}/reviews", auth=annotator, json={"verdict": "accept"}), 403)
    assert_error(api.get(f"{API}/tasks/{task['id']}/history", auth=annotator), 403)
    outsider = other_org.actor("reviewer")
    assert_error(api.post(f"{API}/tasks/{task['id']}/reviews", auth=outsider, json={"verdict": "accept"}), 404)
    assert_error(api.get(f"{API}/tasks/{task['id']}/history", auth=outsider), 404)


def test_the_review_status_filter_is_checked(api: Api, org: Org) -> None:
    error = assert_error(api.get(f"{API}/tasks", auth=org.owner, params={"review_status": "done"}), 422)
    assert "review_status" in str(error)

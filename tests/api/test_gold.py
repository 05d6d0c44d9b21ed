"""Gold over HTTP: marking, the CSV import's errors, a paused worker's 403, reinstating, tenants."""

from __future__ import annotations

from typing import Any

from .helpers import API, Api, Org, assert_error

WRONG = {"positive": "negative", "negative": "neutral", "neutral": "positive"}


def _gold_project(api: Api, org: Org, **gold: Any) -> tuple[str, dict[str, str]]:
    project = org.make_project(quality={"overlap": 1, "gold": gold})
    made = org.make_tasks(project["id"], 20)
    truth = {}
    for i, task in enumerate(made[:10]):
        truth[task["id"]] = ["positive", "negative", "neutral"][i % 3]
        marked = api.request(
            "PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json={"answer": {"sentiment": truth[task["id"]]}}
        )
        assert marked.status_code == 200 and marked.json()["status"] == "gold", marked.text
        assert marked.json()["gold"] == {"sentiment": truth[task["id"]]}
    return project["id"], truth


def test_a_worker_paused_by_gold_gets_403_and_a_manager_reinstates_them(api: Api, org: Org) -> None:
    project_id, truth = _gold_project(api, org, qualification=3, min_accuracy=0.6)
    worker = org.actor("annotator")
    for _ in range(3):  # the qualification set, all wrong
        lease = api.post(f"{API}/projects/{project_id}/next", auth=worker).json()
        assert lease["task"]["status"] == "pending" and "gold" not in lease["task"]
        task_id = lease["task"]["id"]
        answer = {"answer": {"sentiment": WRONG[truth[task_id]]}, "assignment_id": lease["id"]}
        submitted = api.post(f"{API}/tasks/{task_id}/responses", auth=worker, json=answer)
        assert submitted.status_code == 201 and submitted.json()["task"]["status"] == "pending"
    error = assert_error(api.post(f"{API}/projects/{project_id}/next", auth=worker), 403, "worker_paused")
    assert "failed the qualification" in error["message"] and error["details"]["reason"] in error["message"]
    figures = api.get(f"{API}/projects/{project_id}/workers", auth=org.owner).json()["items"]
    (mine,) = [f for f in figures if f["worker_id"] == worker.worker_id]
    assert mine["status"] == "paused" and mine["gold_answers"] == 3 and mine["gold_accuracy"] == 0.0
    assert mine["gold_interval"][0] == 0.0 and mine["status_reason"] == error["details"]["reason"]
    url = f"{API}/projects/{project_id}/workers/{worker.worker_id}/reinstate"
    assert_error(api.post(url, auth=worker), 403, "forbidden")
    back = api.post(url, auth=org.actor("manager"))
    assert back.status_code == 200 and back.json()["status"] == "active" and back.json()["gold_answers"] == 0
    assert api.post(f"{API}/projects/{project_id}/next", auth=worker).status_code == 200


def test_managers_list_the_gold_tasks_with_their_answers_in_pages(api: Api, org: Org, other_org: Org) -> None:
    project_id, truth = _gold_project(api, org)
    url = f"{API}/projects/{project_id}/gold"
    first = api.get(url, auth=org.actor("manager"), params={"limit": 6})
    assert first.status_code == 200, first.text
    rest = api.get(url, auth=org.owner, params={"limit": 6, "cursor": first.json()["next_cursor"]}).json()
    listed = first.json()["items"] + rest["items"]
    assert rest["next_cursor"] is None
    assert {task["id"]: task["gold"]["sentiment"] for task in listed} == truth  # the 10 gold of 20 tasks
    assert [task["id"] for task in listed] == sorted(truth) and {task["status"] for task in listed} == {"gold"}
    for role in ("reviewer", "annotator"):  # the answers are the key workers are scored by
        assert_error(api.get(url, auth=org.actor(role)), 403, "forbidden")
    assert_error(api.get(url, auth=other_org.owner), 404, "not_found")


def test_a_csv_with_a_bad_line_is_refused_naming_the_line(api: Api, org: Org) -> None:
    project = org.make_project()
    task = org.make_task(project["id"], unique_id="g-1")
    body = "unique_id,sentiment\ng-1,negative\ng-2,positive\n"
    headers = {"Content-Type": "text/csv"}
    response = api.post(f"{API}/projects/{project['id']}/gold", auth=org.owner, content=body, headers=headers)
    error = assert_error(response, 422, "invalid_input")
    assert error["message"].startswith("line 3: no task has unique_id 'g-2'")
    assert error["details"]["errors"][0]["line"] == 3 and error["details"]["field"] == "body"
    assert api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()["status"] == "pending"
    good = api.post(
        f"{API}/projects/{project['id']}/gold",
        auth=org.owner,
        content="unique_id,sentiment\ng-1,negative\n",
        headers=headers,
    )
    assert good.status_code == 200 and good.json() == {"received": 1, "marked": 1, "updated": 0}
    assert_error(
        api.post(f"{API}/projects/{project['id']}/gold", auth=org.owner, content=b"\xff\xfe", headers=headers), 422
    )
    assert_error(
        api.post(
            f"{API}/projects/{project['id']}/gold",
            auth=org.owner,
            content=body,
            headers={"Content-Type": "application/json"},
        ),
        422,
    )


def test_another_organizations_task_cannot_be_marked(api: Api, org: Org, other_org: Org) -> None:
    task = org.make_task(org.make_project()["id"])
    intruder = other_org.owner
    put = api.request(
        "PUT", f"{API}/tasks/{task['id']}/gold", auth=intruder, json={"answer": {"sentiment": "positive"}}
    )
    assert_error(put, 404, "not_found")
    assert_error(api.delete(f"{API}/tasks/{task['id']}/gold", auth=intruder), 404, "not_found")
    assert api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()["status"] == "pending"


def test_a_gold_answer_the_spec_refuses_names_the_question(api: Api, org: Org) -> None:
    task = org.make_task(org.make_project()["id"])
    response = api.request("PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json={"answer": {"sentiment": "x"}})
    error = assert_error(response, 422, "invalid_input")
    assert error["details"]["field"] == "answer" and error["message"].startswith("answer.sentiment:")

"""Projects: a spec with every field and question type, reads, lists, updates, archiving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .helpers import ANSWER, API, FULL_SPEC, Api, Org, assert_error, snapshot


def test_create_a_project_with_every_field_and_question_type(api: Api, org: Org) -> None:
    body = {
        "name": "Everything",
        "description": "all types",
        "instructions": "# Read me",
        "spec": FULL_SPEC,
        "quality": {"overlap": 3},
        "lease_seconds": 120,
    }
    r = api.post(f"{API}/projects", auth=org.owner, json=body)
    assert r.status_code == 201, r.text
    project = r.json()
    assert [f["type"] for f in project["spec"]["fields"]] == ["text", "image", "html", "responses"]
    assert [q["type"] for q in project["spec"]["questions"]] == ["label", "labels", "rating", "text"]
    assert project["quality"]["min_overlap"] == project["quality"]["max_overlap"] == 3
    assert "overlap" not in project["quality"] and project["lease_seconds"] == 120
    assert project["created_at"].endswith("Z") or "+00:00" in project["created_at"]
    assert api.get(f"{API}/projects/{project['id']}", auth=org.owner).json() == project
    task = {
        "data": {
            "text": "hello",
            "image": "https://example.com/cat.png",
            "html": "<b>hi</b>",
            "responses": ["a", {"text": "b", "model": "m"}],
        }
    }
    assert api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json=task).status_code == 201
    answer = {"sentiment": "neutral", "topics": ["tech", "sport"], "stars": 4, "summary": "fine"}
    r = api.post(
        f"{API}/tasks/{_first_task(api, org, project['id'])}/responses", auth=org.owner, json={"answer": answer}
    )
    assert r.status_code == 201, r.text
    assert r.json()["response"]["answer"]["stars"] == 4


def _first_task(api: Api, org: Org, project_id: str) -> str:
    return api.get(f"{API}/tasks", auth=org.owner, params={"project_id": project_id}).json()["items"][0]["id"]


def test_question_types_are_listed(api: Api, org: Org) -> None:
    types = {item["name"] for item in api.get(f"{API}/question-types", auth=org.owner).json()}
    assert {"label", "labels", "rating", "text"} <= types


def test_invalid_specs_name_the_bad_field(api: Api, org: Org) -> None:
    base = {"fields": [{"name": "text", "type": "text"}], "questions": [{"name": "q", "type": "text"}]}
    cases = [
        ({**base, "questions": [{"name": "q", "type": "label", "options": ["only"]}]}, "spec.questions[0].options"),
        ({**base, "questions": [{"name": "q", "type": "labels", "options": ["a", "a"]}]}, "spec.questions[0].options"),
        ({**base, "questions": [{"name": "q", "type": "rating", "min": 3, "max": 3}]}, "spec.questions[0]"),
        ({**base, "questions": [{"name": "bad name!", "type": "text"}]}, "spec.questions[0].name"),
        ({**base, "questions": [{"type": "text"}]}, "spec.questions[0].name"),
        ({**base, "fields": [{"name": "f", "type": "audio"}]}, "spec.fields[0].type"),
        ({"fields": base["fields"]}, "spec.questions"),
    ]
    for spec, field in cases:
        error = assert_error(api.post(f"{API}/projects", auth=org.owner, json={"name": "p", "spec": spec}), 422)
        assert error["message"].startswith(field), (field, error)
        assert error["details"]["errors"][0]["field"].startswith(field), (field, error)
    assert api.get(f"{API}/projects", auth=org.owner).json()["items"] == []


def test_list_page_update_and_archive(api: Api, org: Org) -> None:
    made = [org.make_project(name=f"p{n}")["id"] for n in range(5)]
    page1 = api.get(f"{API}/projects", auth=org.owner, params={"limit": 3}).json()
    page2 = api.get(f"{API}/projects", auth=org.owner, params={"limit": 3, "cursor": page1["next_cursor"]}).json()
    assert [p["id"] for p in page1["items"] + page2["items"]] == made and page2["next_cursor"] is None
    r = api.patch(f"{API}/projects/{made[0]}", auth=org.owner, json={"name": "renamed", "quality": {"overlap": 2}})
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    assert r.json()["quality"]["min_overlap"] == r.json()["quality"]["max_overlap"] == 2
    assert api.patch(f"{API}/projects/{made[0]}", auth=org.owner, json={"description": None}).status_code == 200
    assert api.patch(f"{API}/projects/{made[1]}", auth=org.owner, json={"archived": True}).json()["archived_at"]
    listed = [p["id"] for p in api.get(f"{API}/projects", auth=org.owner).json()["items"]]
    assert made[1] not in listed and len(listed) == 4
    everything = api.get(f"{API}/projects", auth=org.owner, params={"include_archived": "true"}).json()["items"]
    assert made[1] in [p["id"] for p in everything]
    assert_error(api.post(f"{API}/projects/{made[1]}/next", auth=org.owner), 409, "project_archived")
    assert_error(api.patch(f"{API}/projects/{made[0]}", auth=org.owner, json={"spec": {}}), 422, "invalid_input")


Write = tuple[str, Callable[[], httpx.Response]]


def _writes(
    api: Api, org: Org, project: dict[str, Any], open_batch: dict[str, Any], task: dict[str, Any]
) -> list[Write]:
    """Every write that adds work or an answer to ``project``, as (name, call)."""
    pid, owner = project["id"], org.owner
    jsonl = {"content": b'{"data": {"text": "a"}}\n', "headers": {"Content-Type": "application/x-ndjson"}}
    return [
        ("create task", lambda: api.post(f"{API}/projects/{pid}/tasks", auth=owner, json={"data": {"text": "x"}})),
        ("import JSONL", lambda: api.post(f"{API}/projects/{pid}/tasks/bulk", auth=owner, **jsonl)),
        (
            "import JSON",
            lambda: api.post(f"{API}/projects/{pid}/tasks/bulk", auth=owner, json=[{"data": {"text": "b"}}]),
        ),
        (
            "import JSONL, skipping bad lines",
            lambda: api.post(f"{API}/projects/{pid}/tasks/bulk", auth=owner, params={"on_error": "skip"}, **jsonl),
        ),
        ("create batch", lambda: api.post(f"{API}/projects/{pid}/batches", auth=owner, json={"name": "late"})),
        ("finalize batch", lambda: api.post(f"{API}/batches/{open_batch['id']}/finalize", auth=owner)),
        ("next", lambda: api.post(f"{API}/projects/{pid}/next", auth=owner)),
        (
            "submit",
            lambda: api.post(
                f"{API}/tasks/{task['id']}/responses",
                auth=owner,
                json={"answer": ANSWER},
                headers={"Idempotency-Key": "archived-1"},
            ),
        ),
    ]


def test_an_archived_project_takes_no_new_work_or_answers(api: Api, org: Org) -> None:
    project = org.make_project(overlap=2)
    task = org.make_task(project["id"], "answer me")
    open_batch = org.make_batch(project["id"], name="staged")
    org.make_task(project["id"], "staged", batch_id=open_batch["id"])
    assert api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json={"archived": True}).status_code == 200
    before = snapshot(org.db, org.id)
    for name, call in _writes(api, org, project, open_batch, task):
        error = assert_error(call(), 409, "project_archived")
        assert project["id"] in error["message"] and "archived" in error["message"], (name, error)
        assert error["details"]["project_id"] == project["id"], (name, error)
    assert snapshot(org.db, org.id) == before, "a refused write stored something"
    # reads and exports still work
    reads: list[httpx.Response] = [
        api.get(f"{API}/projects/{project['id']}", auth=org.owner),
        api.get(f"{API}/tasks", auth=org.owner, params={"project_id": project["id"]}),
        api.get(f"{API}/tasks/{task['id']}", auth=org.owner),
        api.get(f"{API}/projects/{project['id']}/batches", auth=org.owner),
        api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"all_statuses": "true"}),
    ]
    assert [r.status_code for r in reads] == [200] * len(reads)
    # unarchiving restores every write
    assert api.patch(f"{API}/projects/{project['id']}", auth=org.owner, json={"archived": False}).status_code == 200
    for name, call in _writes(api, org, project, open_batch, task):
        response = call()
        assert 200 <= response.status_code < 300, (name, response.status_code, response.text)

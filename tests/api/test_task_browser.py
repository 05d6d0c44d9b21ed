"""The task browser's query (GET /tasks filters, search, sorts, keyset pages) and bulk actions."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import API, Api, Org, assert_error

ANSWERS = ({"sentiment": "positive", "stars": 4}, {"sentiment": "negative", "stars": 2})
SORTS = ("created", "-created", "updated", "-updated", "confidence", "-confidence", "priority", "-priority")


def _pages(api: Api, org: Org, auth: Any = None, **params: Any) -> list[dict[str, Any]]:
    """Every task the listing gives, following the cursor page by page (3 a page) to the end."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
        r = api.get(f"{API}/tasks", auth=auth or org.owner, params=query)
        assert r.status_code == 200, r.text
        found.extend(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return found


def _complete(api: Api, org: Org, project: dict[str, Any], answer: dict[str, Any]) -> str:
    """The annotator leases the next task and answers it (overlap 1: the task completes)."""
    annotator = org.actor("annotator")
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=annotator).json()
    body = {"answer": answer, "assignment_id": lease["id"], "duration_ms": 900}
    r = api.post(f"{API}/tasks/{lease['task']['id']}/responses", auth=annotator, json=body)
    assert r.status_code == 201, r.text
    return str(lease["task"]["id"])


@pytest.fixture
def world(api: Api, org: Org) -> dict[str, Any]:
    """A project of 10 tasks: varied priority, metadata and words; 4 of them answered."""
    project = org.make_project()
    words = ["red apple", "green apple", "red car", "blue sky", "café crème", "x", "y", "z", "w", "v"]
    tasks = [
        org.make_task(project["id"], word, priority=i % 3, metadata={"source": "web" if i % 2 else "mail"})
        for i, word in enumerate(words)
    ]
    answered = [_complete(api, org, project, ANSWERS[i % 2]) for i in range(4)]
    return {"project": project, "tasks": tasks, "answered": answered}


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_pages_to_the_end_without_gaps_or_duplicates(api: Api, org: Org, world: dict, sort: str) -> None:
    found = _pages(api, org, project_id=world["project"]["id"], sort=sort)
    ids = [task["id"] for task in found]
    assert len(ids) == len(set(ids))
    expected = world["answered"] if "confidence" in sort else [task["id"] for task in world["tasks"]]
    assert set(ids) == set(expected)  # confidence sorts list the tasks that have a result
    name = sort.lstrip("-")
    key = {"created": "id", "updated": "updated_at"}.get(name, name)
    keys = [(task[key], task["id"]) for task in found]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


def test_filters(api: Api, org: Org, world: dict) -> None:
    project_id = world["project"]["id"]
    every = {task["id"] for task in world["tasks"]}
    answered = set(world["answered"])

    def ids(**params: Any) -> set[str]:
        return {task["id"] for task in _pages(api, org, project_id=project_id, **params)}

    assert ids(status="completed") == answered
    assert ids(status="pending") == every - answered
    assert ids(**{"metadata.source": "web"}) == {t["id"] for t in world["tasks"] if t["metadata"]["source"] == "web"}
    assert ids(worker_id=org.actor("annotator").worker_id) == answered
    assert ids(worker_id=org.owner.worker_id) == set()
    assert ids(gold=False) == every and ids(gold=True) == set()
    assert ids(unreviewed=True) == every
    assert ids(min_confidence=0, max_confidence=1) == answered
    assert ids(max_confidence=0) == set()
    # filters combine with sorts
    assert ids(status="completed", sort="-priority") == answered
    assert ids(**{"metadata.source": "web"}, sort="updated") == ids(**{"metadata.source": "web"})


def test_search_finds_all_words_in_string_values(api: Api, org: Org, world: dict) -> None:
    project_id = world["project"]["id"]
    by_text = {task["data"]["text"]: task["id"] for task in world["tasks"]}

    def found(words: str, **params: Any) -> set[str]:
        return {task["id"] for task in _pages(api, org, project_id=project_id, search=words, **params)}

    assert found("apple") == {by_text["red apple"], by_text["green apple"]}
    assert found("red apple") == {by_text["red apple"]}  # every word must appear
    assert found("APPLE", sort="-priority") == found("apple")
    assert found("crème") == {by_text["café crème"]}  # (lowercasing non-ASCII on PostgreSQL follows its locale)
    assert found("creme") == set()  # accents are kept, alike on SQLite and PostgreSQL
    assert found("text") == set()  # keys are not words of the task
    assert found('"apple" OR car') == set()  # words, not query syntax: nothing is interpreted
    assert found("nothing-like-it") == set()


def test_search_never_crosses_organizations(api: Api, org: Org, other_org: Org, world: dict) -> None:
    theirs = other_org.make_project()
    secret = other_org.make_task(theirs["id"], "apple secret")
    mine = {task["id"] for task in _pages(api, org, search="apple")}
    assert secret["id"] not in mine and len(mine) == 2
    assert [t["id"] for t in _pages(api, other_org, auth=other_org.owner, search="apple")] == [secret["id"]]


def test_bad_sort_and_cursor_are_named(api: Api, org: Org, world: dict) -> None:
    r = api.get(f"{API}/tasks", auth=org.owner, params={"sort": "colour"})
    assert r.status_code == 422 and "sort" in r.text
    r = api.get(f"{API}/tasks", auth=org.owner, params={"sort": "priority", "cursor": "bm90LWpzb24"})
    assert_error(r, 422)
    assert "cursor" in r.text


def _act(api: Api, org: Org, project_id: str, auth: Any = None, **body: Any) -> Any:
    return api.post(f"{API}/projects/{project_id}/tasks/actions", auth=auth or org.owner, json=body)


def test_bulk_set_priority_by_ids_and_cancel_by_filter(api: Api, org: Org, world: dict) -> None:
    project_id = world["project"]["id"]
    chosen = [task["id"] for task in world["tasks"][:3]]
    r = _act(api, org, project_id, action="set_priority", ids=chosen, priority=9)
    assert r.status_code == 200, r.text
    assert r.json() == {"matched": 3, "changed": 3, "skipped": 0}
    assert {org.task(task_id)["priority"] for task_id in chosen} == {9}
    r = _act(api, org, project_id, action="cancel", filter={"metadata": {"source": "web"}})
    web = [t for t in world["tasks"] if t["metadata"]["source"] == "web"]
    done = set(world["answered"])
    assert r.json() == {
        "matched": len(web),
        "changed": len([t for t in web if t["id"] not in done]),
        "skipped": len([t for t in web if t["id"] in done]),  # a completed task cannot be canceled
    }
    assert {org.task(t["id"])["status"] for t in web if t["id"] not in done} == {"canceled"}


def test_bulk_requeue_and_promote_to_gold(api: Api, org: Org, world: dict) -> None:
    project_id = world["project"]["id"]
    completed = world["answered"][0]
    canceled = next(t["id"] for t in world["tasks"] if t["id"] not in world["answered"])
    assert api.post(f"{API}/tasks/{canceled}/cancel", auth=org.owner).status_code == 200
    r = _act(api, org, project_id, action="requeue", ids=[completed, canceled])
    assert r.json() == {"matched": 2, "changed": 2, "skipped": 0}
    again = org.task(completed)
    assert again["status"] == "pending" and again["overlap"] == again["response_count"] + 1  # one more judgment
    assert org.task(canceled)["status"] == "pending"
    second = world["answered"][1]
    r = _act(api, org, project_id, action="promote_gold", ids=[second, canceled])
    assert r.json() == {"matched": 2, "changed": 1, "skipped": 1}  # only a completed task's result
    promoted = org.task(second)
    assert promoted["status"] == "gold" and promoted["gold"] == promoted["result"]["answer"]


def test_bulk_is_for_managers_and_stays_in_its_organization(api: Api, org: Org, other_org: Org, world: dict) -> None:
    project_id = world["project"]["id"]
    mine = [task["id"] for task in world["tasks"]]
    r = _act(api, org, project_id, auth=org.actor("annotator"), action="cancel", ids=mine)
    assert_error(r, 403)
    theirs = other_org.make_project()
    foreign = other_org.make_task(theirs["id"], "apple")
    # another organization's project is missing; its tasks are never matched from mine
    assert_error(_act(api, org, theirs["id"], action="cancel", ids=[foreign["id"]]), 404)
    r = _act(api, org, project_id, action="cancel", ids=[foreign["id"]])
    assert r.json() == {"matched": 0, "changed": 0, "skipped": 0}
    r = _act(api, org, project_id, action="set_priority", filter={"search": "apple"}, priority=5)
    assert r.json()["matched"] == 2
    assert other_org.task(foreign["id"])["status"] == "pending" and other_org.task(foreign["id"])["priority"] == 0


def test_bulk_input_errors_name_the_field(api: Api, org: Org, world: dict) -> None:
    project_id = world["project"]["id"]
    r = _act(api, org, project_id, action="set_priority", ids=[world["tasks"][0]["id"]])
    assert "priority" in assert_error(r, 422)["message"]
    r = _act(api, org, project_id, action="cancel")
    assert "ids" in assert_error(r, 422)["message"]


@pytest.mark.parametrize("drive_limit", [0, 10**9])
def test_both_sqlite_search_plans_list_the_same_tasks(
    api: Api, org: Org, world: dict, drive_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few matches start from the FTS index, many walk the sort's index: the same tasks either way."""
    from truthset.services import task_browse

    monkeypatch.setattr(task_browse, "DRIVE_LIMIT", drive_limit)
    apples = {t["id"] for t in world["tasks"] if "apple" in t["data"]["text"]}
    for sort in SORTS:
        found = _pages(api, org, project_id=world["project"]["id"], search="apple", sort=sort)
        expected = apples & set(world["answered"]) if "confidence" in sort else apples
        assert {t["id"] for t in found} == expected and len(found) == len(expected)

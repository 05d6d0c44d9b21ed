"""Tasks: idempotent create, bulk import (streamed JSONL and JSON arrays), filters and pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from .helpers import ANSWER, API, Api, Org, assert_error

JSONL = {"Content-Type": "application/x-ndjson"}


def _all(api: Api, org: Org, **params: Any) -> list[dict[str, Any]]:
    r = api.get(f"{API}/tasks", auth=org.owner, params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_create_is_idempotent_on_unique_id(api: Api, org: Org) -> None:
    project = org.make_project()
    body = {"data": {"text": "hi"}, "unique_id": "item-1", "priority": 5, "metadata": {"source": "web"}}
    first = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json=body)
    assert first.status_code == 201 and first.json()["created"] is True
    task = first.json()
    assert task["status"] == "pending" and task["priority"] == 5 and task["overlap"] == 1
    again = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={**body, "data": {"text": "new"}})
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["id"] == task["id"] and again.json()["data"] == {"text": "hi"}
    assert len(_all(api, org)) == 1
    assert api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()["unique_id"] == "item-1"


def test_a_unique_id_of_another_project_is_a_409_naming_it(api: Api, org: Org) -> None:
    pilot, production = org.make_project(), org.make_project()
    body = {"data": {"text": "hi"}, "unique_id": "item-1"}
    assert api.post(f"{API}/projects/{pilot['id']}/tasks", auth=org.owner, json=body).status_code == 201
    r = api.post(f"{API}/projects/{production['id']}/tasks", auth=org.owner, json=body)
    error = assert_error(r, 409, "conflict")
    assert "'item-1'" in error["message"] and error["details"]["project_id"] == pilot["id"]
    assert [task["project_id"] for task in _all(api, org)] == [pilot["id"]]


def test_a_required_text_field_that_is_empty_is_refused_naming_it(api: Api, org: Org) -> None:
    """An empty (or blank) required text shows annotators nothing to judge: refused, the field named;
    an optional one may be empty."""
    spec = {
        "fields": [{"name": "text", "type": "text"}, {"name": "note", "type": "text", "required": False}],
        "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
    }
    project = org.make_project(spec=spec)
    url = f"{API}/projects/{project['id']}/tasks"
    for blank in ("", "  \n"):
        error = assert_error(api.post(url, auth=org.owner, json={"data": {"text": blank}}), 422, "invalid_input")
        assert "data.text is required and is empty" in error["message"]
    kept = api.post(url, auth=org.owner, json={"data": {"text": "fine", "note": ""}})
    assert kept.status_code == 201, kept.text
    # in a file every such line is invalid, named; the others are stored with on_error=skip
    body = b'{"data": {"text": "first"}}\n{"data": {"text": " ", "note": "a note"}}\n'
    skipped = api.post(f"{url}/bulk", auth=org.owner, content=body, headers=JSONL, params={"on_error": "skip"})
    report = skipped.json()
    assert (report["created"], report["invalid"]) == (1, 1), report
    assert report["errors"][0]["line"] == 2 and "data.text is required and is empty" in report["errors"][0]["message"]


def test_bulk_jsonl_is_streamed(api: Api, org: Org) -> None:
    project = org.make_project()

    async def lines() -> AsyncIterator[bytes]:
        for n in range(250):
            yield b'{"data": {"text": "item %d"}, "unique_id": "u%d"}\n' % (n, n)

    r = api.post(f"{API}/projects/{project['id']}/tasks/bulk", auth=org.owner, content=lines(), headers=JSONL)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "received": 250, "checked": 250, "created": 250, "existing": 0, "invalid": 0, "errors": [], "stored": True
    }
    # importing again creates nothing
    again = api.post(
        f"{API}/projects/{project['id']}/tasks/bulk",
        auth=org.owner,
        content=b"".join(b'{"data": {"text": "x"}, "unique_id": "u%d"}\n' % n for n in range(250)),
        headers=JSONL,
    )
    assert again.json()["created"] == 0 and again.json()["existing"] == 250
    assert len(_all(api, org, project_id=project["id"])) == 250


def test_bulk_json_array(api: Api, org: Org) -> None:
    project = org.make_project()
    items = [{"data": {"text": "a"}}, {"data": {"text": "b"}, "metadata": {"k": 1}}]
    r = api.post(f"{API}/projects/{project['id']}/tasks/bulk", auth=org.owner, json=items)
    assert r.status_code == 200 and r.json()["created"] == 2


def test_bulk_bad_lines_reject_or_skip(api: Api, org: Org) -> None:
    project = org.make_project()
    body = (
        b'{"data": {"text": "good 1"}}\n'
        b"not json\n"
        b'{"data": {"text": "good 2"}}\n'
        b'{"data": {"text": 5}}\n'
        b"\n"
        b'{"data": {"nope": "x"}}\n'
        b'{"data": {"text": "good 3"}, "colour": "red"}\n'
    )
    url = f"{API}/projects/{project['id']}/tasks/bulk"
    rejected = api.post(url, auth=org.owner, content=body, headers=JSONL)
    # bad lines and nothing stored: a 422 whose details name the lines and hold the report
    error = assert_error(rejected, 422, "invalid_input")
    assert error["message"].startswith("4 invalid lines (line 2: invalid JSON")
    assert [e["field"] for e in error["details"]["errors"]] == ["line 2", "line 4", "line 6", "line 7"]
    report = error["details"]["report"]
    assert report["stored"] is False and report["created"] == 0 and report["invalid"] == 4
    assert [e["line"] for e in report["errors"]] == [2, 4, 6, 7]
    assert "text" in report["errors"][1]["message"] and "colour" in report["errors"][3]["message"]
    assert _all(api, org) == []
    skipped = api.post(url, auth=org.owner, content=body, headers=JSONL, params={"on_error": "skip"}).json()
    assert skipped["stored"] is True and skipped["created"] == 2 and skipped["invalid"] == 4
    assert sorted(t["data"]["text"] for t in _all(api, org)) == ["good 1", "good 2"]


def test_bulk_into_a_batch_stages_tasks(api: Api, org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    r = api.post(
        f"{API}/projects/{project['id']}/tasks/bulk",
        auth=org.owner,
        params={"batch_id": batch["id"]},
        content=b'{"data": {"text": "a"}}\n{"data": {"text": "b"}}',
        headers=JSONL,
    )
    assert r.json()["created"] == 2
    assert {t["status"] for t in _all(api, org, batch_id=batch["id"])} == {"staged"}


def test_every_filter_and_cursor_pagination(api: Api, org: Org) -> None:
    project = org.make_project()
    other = org.make_project()
    batch = org.make_batch(project["id"])
    start = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(7):
        api.post(
            f"{API}/projects/{project['id']}/tasks",
            auth=org.owner,
            json={"data": {"text": f"t{n}"}, "unique_id": f"f{n}", "metadata": {"lang": "en" if n % 2 else "fr"}},
        )
    api.post(f"{API}/projects/{other['id']}/tasks", auth=org.owner, json={"data": {"text": "elsewhere"}})
    staged = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"text": "s"}, "batch_id": batch["id"]}
    ).json()
    done = _all(api, org, project_id=project["id"], status="pending")[0]
    assert api.post(f"{API}/tasks/{done['id']}/responses", auth=org.owner, json={"answer": ANSWER}).status_code == 201
    canceled = _all(api, org, project_id=project["id"], status="pending")[0]
    api.post(f"{API}/tasks/{canceled['id']}/cancel", auth=org.owner)
    later = datetime.now(UTC) + timedelta(seconds=1)

    assert len(_all(api, org)) == 9
    assert len(_all(api, org, project_id=project["id"])) == 8
    assert [t["id"] for t in _all(api, org, batch_id=batch["id"])] == [staged["id"]]
    assert [t["id"] for t in _all(api, org, status="completed")] == [done["id"]]
    assert [t["id"] for t in _all(api, org, status="canceled")] == [canceled["id"]]
    assert [t["id"] for t in _all(api, org, status="staged")] == [staged["id"]]
    assert [t["unique_id"] for t in _all(api, org, unique_id="f3")] == ["f3"]
    assert len(_all(api, org, **{"metadata.lang": "en"})) == 3
    assert len(_all(api, org, **{"metadata.lang": "fr", "project_id": project["id"]})) == 4
    assert _all(api, org, **{"metadata.lang": "de"}) == []
    iso = {"start": start.isoformat(), "later": later.isoformat()}
    assert len(_all(api, org, created_after=iso["start"], created_before=iso["later"])) == 9
    assert _all(api, org, created_after=iso["later"]) == []
    assert _all(api, org, created_before=iso["start"]) == []
    assert {t["id"] for t in _all(api, org, completed_after=iso["start"])} == {done["id"]}
    assert _all(api, org, completed_before=iso["start"]) == []
    assert len(_all(api, org, updated_after=iso["start"], updated_before=iso["later"])) == 9
    assert len(_all(api, org, updated_after="2000-01-01")) == 9  # a plain date works too

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "project_id": project["id"]}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"{API}/tasks", auth=org.owner, params=params).json()
        assert len(page["items"]) <= 2
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [t["id"] for t in _all(api, org, project_id=project["id"])] and len(set(seen)) == 8
    # a cursor of the right shape that names nothing real gives an empty page...
    r = api.get(f"{API}/tasks", auth=org.owner, params={"cursor": "f" * 24})
    assert r.status_code == 200 and r.json()["items"] == []
    # ...and anything else is refused, naming the parameter
    r = api.get(f"{API}/tasks", auth=org.owner, params={"cursor": "zzzzzzzzzzzzzzzzzzzzzzzz"})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "query.cursor"


def test_cancel_and_responses(api: Api, org: Org) -> None:
    project = org.make_project()
    task = org.make_task(project["id"])
    r = api.post(f"{API}/tasks/{task['id']}/responses", auth=org.owner, json={"answer": {"sentiment": "negative"}})
    assert r.status_code == 201
    responses = api.get(f"{API}/tasks/{task['id']}/responses", auth=org.owner).json()
    assert [x["answer"] for x in responses] == [{"sentiment": "negative"}]
    assert responses[0]["worker_id"] == org.owner.worker_id
    assert_error(api.post(f"{API}/tasks/{task['id']}/cancel", auth=org.owner), 409, "conflict")  # completed
    other = org.make_task(project["id"], "x")
    canceled = api.post(f"{API}/tasks/{other['id']}/cancel", auth=org.owner)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"

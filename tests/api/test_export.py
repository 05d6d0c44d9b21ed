"""Export: tasks with their results as JSONL (completed by default, every status on request)."""

from __future__ import annotations

import errno
import io

import orjson
import pytest

from truthset.api import memory
from truthset.services import export

from .helpers import ANSWER, API, Api, Org, assert_error


def test_export_jsonl(api: Api, org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    tasks = org.make_tasks(project["id"], 3, batch_id=batch["id"], metadata={"src": "x"})
    api.post(f"{API}/batches/{batch['id']}/finalize", auth=org.owner)
    api.post(f"{API}/tasks/{tasks[0]['id']}/responses", auth=org.owner, json={"answer": {**ANSWER, "stars": 5}})
    r = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in r.content.splitlines()]
    assert len(lines) == 1
    row = lines[0]
    assert row["task_id"] == tasks[0]["id"] and row["batch_id"] == batch["id"] and row["status"] == "completed"
    assert (
        row["answer"] == {"sentiment": "positive", "stars": 5} and row["confidence"] == 0.7
    )  # one answer, before any fit: never certain
    assert row["data"] == {"text": "item 0"} and row["metadata"] == {"src": "x"} and row["completed_at"]
    everything = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"all_statuses": "true"})
    rows = [orjson.loads(line) for line in everything.content.splitlines()]
    assert [x["task_id"] for x in rows] == [t["id"] for t in tasks]
    assert [x["answer"] for x in rows[1:]] == [None, None]
    pending = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"status": "pending"})
    assert len(pending.content.splitlines()) == 2
    empty = org.make_project()
    r = api.get(f"{API}/projects/{empty['id']}/export", auth=org.owner)
    assert r.status_code == 200 and r.content == b""


def test_large_requests_give_memory_back_once_they_end(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """An export (like an import or an upload) is followed by a malloc trim; other calls are not."""
    trims: list[int] = []
    monkeypatch.setattr(memory, "_glibc", lambda: object())  # as on glibc, wherever the test runs
    monkeypatch.setattr(memory, "trim", lambda: trims.append(1) or True)
    project = org.make_project()
    org.make_tasks(project["id"], 3)
    r = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"all_statuses": "true"})
    assert r.status_code == 200 and len(r.content.splitlines()) == 3
    assert trims == [1]
    assert api.get(f"{API}/projects/{project['id']}", auth=org.owner).status_code == 200
    assert trims == [1]


def test_trim_runs_where_it_can() -> None:
    assert memory.trim() in (True, False)  # glibc: malloc_trim(0); elsewhere: nothing to do


def test_an_unknown_export_format_is_a_422_naming_the_formats(api: Api, org: Org) -> None:
    """`?format=coco` used to be ignored and answered JSONL: a client could not tell."""
    project = org.make_project()
    r = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"format": "xlsx"})
    error = assert_error(r, 422)
    assert error["details"]["field"] == "format" and error["details"]["formats"] == list(export.FORMATS)
    assert f"'xlsx' is not an export format; the formats are: {', '.join(export.FORMATS)}" in error["message"]
    assert {"jsonl", "csv", "parquet"} <= set(export.FORMATS)
    named = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"format": "jsonl"})
    assert named.status_code == 200 and named.headers["content-type"].startswith("application/x-ndjson")


def test_list_and_export_can_require_a_minimum_confidence(api: Api, org: Org) -> None:
    """Customers keep only answers they can trust: `min_confidence` on listing and export."""
    project = org.make_project(overlap=2)
    agreed, split, open_ = org.make_tasks(project["id"], 3)
    for actor, answer in ((org.owner, "positive"), (org.actor("annotator"), "positive")):
        api.post(f"{API}/tasks/{agreed['id']}/responses", auth=actor, json={"answer": {"sentiment": answer}})
    for actor, answer in ((org.owner, "positive"), (org.actor("annotator"), "negative")):
        api.post(f"{API}/tasks/{split['id']}/responses", auth=actor, json={"answer": {"sentiment": answer}})
    listed = api.get(f"{API}/tasks", auth=org.owner, params={"project_id": project["id"], "min_confidence": 0.9})
    assert [task["id"] for task in listed.json()["items"]] == [agreed["id"]]
    # the split task is a tie at 0.105 / 0.2325 = 0.45 (two of three options, each worker right with 0.7)
    loose = api.get(f"{API}/tasks", auth=org.owner, params={"project_id": project["id"], "min_confidence": 0.4})
    assert [task["id"] for task in loose.json()["items"]] == [agreed["id"], split["id"]]  # no result: never
    export = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"min_confidence": 0.9})
    assert [orjson.loads(line)["task_id"] for line in export.content.splitlines()] == [agreed["id"]]
    for bad in ("1.5", "-0.1", "high"):
        r = api.get(f"{API}/tasks", auth=org.owner, params={"min_confidence": bad})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "query.min_confidence"
    assert open_["id"] not in [task["id"] for task in loose.json()["items"]]


class FullDiskFile(io.BytesIO):
    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_an_export_on_a_full_temporary_directory_answers_507(
    api: Api, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = org.make_project()
    org.make_tasks(project["id"], 2)
    monkeypatch.setattr(export.tempfile, "TemporaryFile", lambda **_: FullDiskFile())
    r = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"all_statuses": "true"})
    assert r.status_code == 507 and r.json()["error"]["code"] == "storage_full"
    assert "temporary directory" in r.json()["error"]["message"] and r.headers["Retry-After"]

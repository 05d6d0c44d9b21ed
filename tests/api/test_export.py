"""Export: tasks with their results as JSONL (completed by default, every status on request)."""

from __future__ import annotations

import orjson

from .helpers import ANSWER, API, Api, Org


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
    assert row["answer"] == {"sentiment": "positive", "stars": 5} and row["confidence"] == 1.0
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

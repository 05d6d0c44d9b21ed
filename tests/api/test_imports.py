"""Import jobs through the API: every format, idempotence, bad input, zip safety, progress, cancel,
a crashed run resumed without duplicates, and tenant isolation."""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truthset.config import Settings
from truthset.jobs import Runner, register, unregister
from truthset.services import jobs
from truthset.storage import Database

from .helpers import API, Api, Org, assert_error, png_bytes

IMAGE_SPEC = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "kind", "type": "label", "options": ["cat", "dog"]}],
}


def upload(api: Api, org: Org, project_id: str, body: bytes, filename: str, **params: Any) -> Any:
    query = {"filename": filename, **params}
    return api.post(
        f"{API}/projects/{project_id}/imports",
        params=query,
        content=body,
        headers={"Content-Type": "application/octet-stream"},
        auth=org.owner,
    )


def run_jobs(db: Database, settings: Settings) -> None:
    Runner(db, kinds=["import"], settings=settings).run_until_idle()


def imported(api: Api, org: Org, project_id: str, body: bytes, filename: str, **params: Any) -> dict[str, Any]:
    """Upload, run the job, and return it as the API shows it at the end."""
    response = upload(api, org, project_id, body, filename, **params)
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "import" and response.json()["status"] == "queued"
    run_jobs(org.db, api.app.state.settings)
    return api.get(f"{API}/jobs/{response.json()['id']}", auth=org.owner).json()


def tasks_of(api: Api, org: Org, project_id: str) -> list[dict[str, Any]]:
    page = api.get(f"{API}/tasks", params={"project_id": project_id, "limit": 1000}, auth=org.owner).json()
    return page["items"]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def test_jsonl_import_runs_as_a_job_and_a_second_run_adds_nothing(api: Api, org: Org) -> None:
    project = org.make_project()
    body = jsonl([{"data": {"text": f"t{n}"}} for n in range(5)] + [{"data": {"text": "u"}, "unique_id": "u1"}])
    job = imported(api, org, project["id"], body, "tasks.jsonl")
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 6 and job["result"]["invalid"] == 0
    assert job["progress"] == {"done": 6, "total": 6}
    again = imported(api, org, project["id"], body, "tasks.jsonl")
    assert again["result"]["created"] == 0 and again["result"]["existing"] == 6
    assert len(tasks_of(api, org, project["id"])) == 6

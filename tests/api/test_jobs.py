"""The jobs API: list with filters, one job, cancel; progress of a running job is visible."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from truthset.jobs import Runner, register, unregister
from truthset.services import jobs
from truthset.services.jobs import JobContext
from truthset.storage import Database

from .helpers import API, Api, Org, assert_error

DEADLINE_S = 30.0


def add_job(org: Org, kind: str, created_by: str | None = None, **options: Any) -> dict[str, Any]:
    with org.db.write() as conn:
        return jobs.enqueue(conn, org.id, kind, {"n": 1}, created_by=created_by or org.owner.id, **options)


def poll(api: Api, url: str, org: Org, until: Any) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while not until(body := api.get(url, auth=org.owner).json()):
        assert time.monotonic() < deadline, f"timed out: {body}"
        time.sleep(0.01)
    return body


@pytest.fixture
def gated_kind() -> Iterator[tuple[str, threading.Event]]:
    """A kind whose handler reports 3 of 10, then waits for the event, then finishes with 10 of 10."""
    release = threading.Event()

    def handler(_db: Database, context: JobContext) -> dict[str, int]:
        context.progress(3, 10)
        assert release.wait(DEADLINE_S)
        context.progress(10, 10)
        return {"rows": 10}

    register("test.api-gated", handler)
    yield "test.api-gated", release
    release.set()
    unregister("test.api-gated")


def test_progress_of_a_running_job_is_visible_through_the_api(
    api: Api, org: Org, db: Database, gated_kind: tuple[str, threading.Event]
) -> None:
    kind, release = gated_kind
    job = add_job(org, kind)
    runner = Runner(db, kinds=[kind], poll_seconds=0.05)
    runner.start()
    try:
        url = f"{API}/jobs/{job['id']}"
        running = poll(api, url, org, lambda body: body["progress"]["done"] == 3)
        assert running["status"] == "running" and running["progress"] == {"done": 3, "total": 10}
        assert running["locked_by"].startswith(runner.name) and running["attempts"] == 1
        assert running["locked_until"].endswith("Z") or "+00:00" in running["locked_until"]
        listed = api.get(f"{API}/jobs", auth=org.owner, params={"status": "running"}).json()["items"]
        assert [item["id"] for item in listed] == [job["id"]]
        release.set()
        done = poll(api, url, org, lambda body: body["status"] == "succeeded")
    finally:
        assert runner.stop()
    assert done["result"] == {"rows": 10} and done["progress"] == {"done": 10, "total": 10}
    assert done["finished_at"] is not None and done["locked_by"] is None


def test_list_filters_and_pages_newest_first(api: Api, org: Org) -> None:
    first = add_job(org, "test.a", dedupe_key="refit:1")
    second = add_job(org, "test.b")
    third = add_job(org, "test.a")
    body = api.get(f"{API}/jobs", auth=org.owner, params={"limit": 2}).json()
    assert [j["id"] for j in body["items"]] == [third["id"], second["id"]]
    rest = api.get(f"{API}/jobs", auth=org.owner, params={"cursor": body["next_cursor"]}).json()
    assert [j["id"] for j in rest["items"]] == [first["id"]] and rest["next_cursor"] is None
    assert rest["items"][0]["dedupe_key"] == "refit:1" and rest["items"][0]["status"] == "queued"
    kinds = api.get(f"{API}/jobs", auth=org.owner, params={"kind": "test.a"}).json()["items"]
    assert [j["id"] for j in kinds] == [third["id"], first["id"]]
    error = assert_error(api.get(f"{API}/jobs", auth=org.owner, params={"status": "done"}), 422, "invalid_input")
    assert error["details"]["field"] == "query.status"


def test_cancel_then_cancel_again_and_a_finished_job_is_a_conflict(api: Api, org: Org, db: Database) -> None:
    job = add_job(org, "test.cancel")
    canceled = api.post(f"{API}/jobs/{job['id']}/cancel", auth=org.owner)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert api.post(f"{API}/jobs/{job['id']}/cancel", auth=org.owner).json()["status"] == "canceled"
    register("test.quick", lambda _db, _context: None)
    try:
        quick = add_job(org, "test.quick")
        Runner(db, kinds=["test.quick"]).run_until_idle()
    finally:
        unregister("test.quick")
    error = assert_error(api.post(f"{API}/jobs/{quick['id']}/cancel", auth=org.owner), 409, "job_finished")
    assert "succeeded" in error["message"] and error["details"] == {"status": "succeeded"}


def test_members_below_manager_see_only_the_jobs_they_started(api: Api, org: Org, other_org: Org) -> None:
    owners = add_job(org, "test.owner")
    reviewer = org.actor("reviewer")
    theirs = add_job(org, "test.export", created_by=reviewer.id)
    listed = api.get(f"{API}/jobs", auth=reviewer).json()["items"]
    assert [j["id"] for j in listed] == [theirs["id"]]
    assert api.get(f"{API}/jobs/{theirs['id']}", auth=reviewer).status_code == 200
    assert_error(api.get(f"{API}/jobs/{owners['id']}", auth=reviewer), 403, "forbidden")
    assert_error(api.post(f"{API}/jobs/{owners['id']}/cancel", auth=reviewer), 403, "forbidden")
    manager = org.actor("manager")
    assert {j["id"] for j in api.get(f"{API}/jobs", auth=manager).json()["items"]} == {owners["id"], theirs["id"]}
    assert_error(api.get(f"{API}/jobs/{owners['id']}", auth=other_org.owner), 404, "not_found")
    assert api.get(f"{API}/jobs", auth=other_org.owner).json()["items"] == []

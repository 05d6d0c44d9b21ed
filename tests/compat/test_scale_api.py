"""``/scale/v1`` in-process (SQLite, and PostgreSQL when configured): tenant isolation, roles,
Scale's error body, what truthset's own objects look like to it, and when a callback is due."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import anyio.from_thread
import httpx
import pytest
from sqlalchemy import select

from truthset.api import create_app
from truthset.compat.scale import deliver_callback
from truthset.config import Settings
from truthset.errors import Busy, StorageFull
from truthset.schemas import ProjectUpdate, QualityPolicy, ResponseCreate, ReviewPolicy
from truthset.services import jobs, projects, queue, review
from truthset.services.jobs import JobContext, JobFailed
from truthset.storage import Database
from truthset.storage import tables as t

BASE = "http://testserver/scale/v1"


class Scale:
    """A synchronous client of the in-process app, authenticating as the Scale client does."""

    def __init__(self, db: Database, settings: Settings, portal: anyio.from_thread.BlockingPortal) -> None:
        self.portal = portal
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, db=db)), base_url=BASE)

    def call(
        self, method: str, path: str, key: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        basic = base64.b64encode(f"{key}:".encode()).decode()
        headers = {**(headers or {}), "Authorization": f"Basic {basic}"}
        return self.portal.call(lambda: self.client.request(method, f"{BASE}/{path}", headers=headers, **kw))


@pytest.fixture
def scale(db: Database, tmp_path: Any) -> Iterator[Scale]:
    with anyio.from_thread.start_blocking_portal() as portal:
        client = Scale(db, Settings(data_dir=tmp_path / "data"), portal)
        try:
            yield client
        finally:
            portal.call(client.client.aclose)


def _project_with_task(scale: Scale, key: str, *, callback_url: str | None = None) -> dict[str, Any]:
    made = scale.call("POST", "projects", key, json={"type": "categorization", "name": "Sentiment", "params": {}})
    assert made.status_code == 200, made.text
    body = {"project": "Sentiment", "attachment": "so good", "categories": ["good", "bad"], "unique_id": "u1"}
    if callback_url:
        body["callback_url"] = callback_url
    created = scale.call("POST", "task/categorization", key, json=body)
    assert created.status_code == 200, created.text
    return created.json()


def test_another_organization_sees_nothing(scale: Scale, make_org: Any) -> None:
    acme, other = make_org("Acme"), make_org("Other")
    task = _project_with_task(scale, acme.owner.api_key)
    assert (
        scale.call("POST", "batches", acme.owner.api_key, json={"project": "Sentiment", "name": "b1"}).status_code
        == 200
    )
    key = other.owner.api_key
    for method, path in (
        ("GET", f"task/{task['task_id']}"),
        ("POST", f"task/{task['task_id']}/cancel"),
        ("POST", f"task/{task['task_id']}/setMetadata"),
        ("GET", "projects/Sentiment"),
        ("GET", "batches/b1"),
        ("GET", "tasks?project=Sentiment"),
        ("POST", "batches/b1/finalize"),
    ):
        answer = scale.call(method, path, key, json={} if method == "POST" else None)
        assert answer.status_code == 404, (method, path, answer.text)
    assert scale.call("GET", "projects", key).json() == []
    # the same names are free in the other organization, unique_id included
    assert _project_with_task(scale, key)["unique_id"] == "u1"


def test_roles_are_truthsets(scale: Scale, org: Any) -> None:
    task = _project_with_task(scale, org.owner.api_key)
    annotator, reviewer = org.actor("annotator"), org.actor("reviewer")
    made = scale.call("POST", "projects", annotator.api_key, json={"type": "categorization", "name": "Mine"})
    assert made.status_code == 403
    assert scale.call("GET", "tasks?project=Sentiment", annotator.api_key).status_code == 403
    assert scale.call("GET", f"task/{task['task_id']}", reviewer.api_key).status_code == 200
    assert scale.call("POST", f"task/{task['task_id']}/cancel", reviewer.api_key).status_code == 403
    # the callback key is a manager's secret
    assert "callback_auth_key" not in scale.call("GET", "projects/Sentiment", reviewer.api_key).json()
    assert "callback_auth_key" in scale.call("GET", "projects/Sentiment", org.owner.api_key).json()


def test_errors_have_scales_body(scale: Scale, org: Any) -> None:
    wrong = scale.call("GET", "projects", "ts_wrong")
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert set(wrong.json()) == {"status_code", "error"}
    anonymous = scale.portal.call(lambda: scale.client.post(f"{BASE}/projects", content=b"{not json"))
    assert anonymous.status_code == 401 and "API key is required" in anonymous.json()["error"]
    _project_with_task(scale, org.owner.api_key)
    other = {"project": "Sentiment", "attachment": "meh", "categories": ["yes", "no"]}
    mismatch = scale.call("POST", "task/categorization", org.owner.api_key, json=other)
    assert mismatch.status_code == 400
    assert "create another project" in mismatch.json()["error"]
    missing = scale.call("POST", "task/categorization", org.owner.api_key, json={"project": "Sentiment"})
    assert missing.json() == {"status_code": 400, "error": "attachment: is required (a string: an image URL or text)"}
    assert scale.call("GET", "nothing/here", org.owner.api_key).status_code == 404


def test_truthsets_own_projects_and_tasks_are_not_scale_objects(scale: Scale, org: Any) -> None:
    project = org.make_project(name="Native")
    task = org.make_task(project["id"])
    assert scale.call("GET", "projects/Native", org.owner.api_key).status_code == 404
    assert scale.call("GET", f"task/{task['id']}", org.owner.api_key).status_code == 404
    assert scale.call("GET", "projects", org.owner.api_key).json() == []


def _jobs(db: Database, kind: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(r) for r in conn.execute(select(t.jobs).where(t.jobs.c.kind == kind)).mappings()]


def _answer(org: Any, project_id: str) -> None:
    worker = org.actor("annotator").principal
    assignment = queue.next_assignment(org.db, worker, project_id)
    answer = ResponseCreate(answer={"category": "good"}, assignment_id=assignment["id"])
    queue.submit(org.db, worker, assignment["task"]["id"], answer)


def test_a_callback_is_due_when_a_task_with_a_callback_url_completes(scale: Scale, org: Any, db: Database) -> None:
    task = _project_with_task(scale, org.owner.api_key, callback_url="https://example.com/hook")
    assert _jobs(db, "scale.callback") == []  # not before it completes
    _answer(org, task["truthset"]["project_id"])
    jobs = _jobs(db, "scale.callback")
    assert [j["payload"] for j in jobs] == [{"task_id": task["task_id"]}]
    assert jobs[0]["organization_id"] == org.id


def test_no_callback_without_a_callback_url(scale: Scale, org: Any, db: Database) -> None:
    task = _project_with_task(scale, org.owner.api_key)
    _answer(org, task["truthset"]["project_id"])
    assert scale.call("GET", f"task/{task['task_id']}", org.owner.api_key).json()["status"] == "completed"
    assert _jobs(db, "scale.callback") == []


def test_filters_on_the_scale_record_work_on_every_database(scale: Scale, org: Any) -> None:
    key = org.owner.api_key
    _project_with_task(scale, key)
    for i, tags in enumerate((["red"], ["red", "blue"], [])):
        body = {"project": "Sentiment", "attachment": f"t{i}", "categories": ["good", "bad"], "tags": tags}
        assert scale.call("POST", "task/categorization", key, json=body).status_code == 200

    def total(query: str) -> int:
        answer = scale.call("GET", f"tasks?project=Sentiment&limit=1&{query}", key)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["total"])

    assert total("tags=red") == 2
    assert total("tags=red&tags=blue") == 1
    assert total("tags=green") == 0
    assert total("type=categorization") == 4
    assert total("type=imageannotation") == 0
    assert total("status=pending") == 4
    quoted = {"project": "Sentiment", "attachment": "q", "categories": ["good", "bad"], "tags": ['say "hi"']}
    assert "is not a tag" in scale.call("POST", "task/categorization", key, json=quoted).json()["error"]
    filtered = scale.call("GET", 'tasks?project=Sentiment&tags=say "hi"', key)
    assert filtered.status_code == 400 and "is not a tag" in filtered.json()["error"]
    bad = scale.call("GET", "tasks?project=Sentiment&colour=red", key)
    assert bad.status_code == 400 and "'colour' is not supported" in bad.json()["error"]


def test_the_first_task_sets_the_projects_spec(scale: Scale, org: Any) -> None:
    made = scale.call("POST", "projects", org.owner.api_key, json={"type": "imageannotation", "name": "Cars"})
    assert made.json()["truthset"]["spec_pending"] is True
    body = {
        "project": "Cars",
        "attachment": "https://example.com/a.jpg",
        "geometries": {"box": {"objects_to_annotate": ["car", "bus"]}},
    }
    task = scale.call("POST", "task/imageannotation", org.owner.api_key, json=body).json()
    project = projects.get_project(org.db, org.owner.principal, task["truthset"]["project_id"])
    assert project["spec"]["fields"] == [
        {"name": "attachment", "type": "image", "label": "Attachment", "required": True, "count": None}
    ]
    assert [(q["name"], q["type"], [o["value"] for o in q["labels"]]) for q in project["spec"]["questions"]] == [
        ("box", "boxes", ["car", "bus"])
    ]
    assert scale.call("GET", "projects/Cars", org.owner.api_key).json()["truthset"]["spec_pending"] is False


def test_the_outer_guards_answer_in_scales_shape(scale: Scale, org: Any) -> None:
    """A body over the size limit and a NUL in the query are refused by truthset's guards before
    the request reaches /scale/v1: the answer still has Scale's body (a NUL is a 400 here)."""
    key = org.owner.api_key
    nul = scale.call("GET", "tasks?project=%00", key)
    assert nul.json() == {"status_code": 400, "error": "the query must not contain NUL characters"}
    assert nul.status_code == 400
    limit = Settings().max_body_bytes
    huge = scale.call("POST", "projects", key, content=b" " * (limit + 1), headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    assert huge.json() == {"status_code": 413, "error": f"the request body is larger than {limit} bytes"}
    # truthset's own API keeps its own shape
    bearer = {"Authorization": f"Bearer {key}"}
    own = scale.portal.call(lambda: scale.client.get("http://testserver/api/v1/projects?x=%00", headers=bearer))
    assert own.status_code == 422 and own.json()["error"]["code"] == "invalid_input"


def test_a_full_disk_and_a_busy_database_say_when_to_retry(
    scale: Scale, org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Retry-After of truthset's own API (api/errors.py): 60 s for a full disk, 1 s when busy."""
    from truthset.compat.scale import _store

    for exc, status, retry_after in ((StorageFull("the disk is full"), 507, "60"), (Busy("busy"), 503, "1")):

        def refuse(*_args: Any, exc: Exception = exc) -> None:
            raise exc

        monkeypatch.setattr(_store, "scale_projects", refuse)
        answer = scale.call("GET", "projects", org.owner.api_key)
        assert (answer.status_code, answer.headers["Retry-After"]) == (status, retry_after)
        assert answer.json() == {"status_code": status, "error": str(exc.message)}


def test_review_statuses_read_and_filter_as_scales(scale: Scale, org: Any) -> None:
    """truthset's review queue as Scale's ``customer_review_status``: a task a reviewer holds is
    still "pending" to Scale; a verdict shows under Scale's word for it."""
    key = org.owner.api_key
    task = _project_with_task(scale, key)
    project_id = task["truthset"]["project_id"]
    policy = QualityPolicy(review=ReviewPolicy(sample_rate=1.0))  # every completed task goes to review
    projects.update_project(org.db, org.owner.principal, project_id, ProjectUpdate(quality=policy))
    _answer(org, project_id)

    def seen() -> str:
        return scale.call("GET", f"task/{task['task_id']}", key).json()["customer_review_status"]

    def total(statuses: str) -> int:
        return int(scale.call("GET", f"tasks?project=Sentiment&customer_review_status={statuses}", key).json()["total"])

    assert (seen(), total("pending"), total("accepted")) == ("pending", 1, 0)
    reviewer = org.actor("reviewer").principal
    assert review.next_review(org.db, reviewer, project_id) is not None  # claimed: "reviewing" in truthset
    assert (seen(), total("pending")) == ("pending", 1)
    review.submit_review(org.db, reviewer, task["task_id"], "accept")
    assert (seen(), total("accepted"), total("pending"), total("pending,accepted"), total("commented")) == (
        "accepted",
        1,
        0,
        1,
        0,
    )


def test_a_callback_to_a_private_address_is_refused_and_recorded(
    scale: Scale, org: Any, db: Database, tmp_path: Any
) -> None:
    """The callback passes the webhooks' network guard: a private address is never called, the job
    fails at once (no retry can help) and the task records ``callback_succeeded: false``."""
    task = _project_with_task(scale, org.owner.api_key, callback_url="http://10.1.2.3/hook")
    _answer(org, task["truthset"]["project_id"])
    job = jobs.claim(db, "manual", ["scale.callback"], 60)
    assert job is not None and job["payload"] == {"task_id": task["task_id"]}
    with pytest.raises(JobFailed, match="refused"):
        deliver_callback(db, JobContext(db, job, "manual", settings=Settings(data_dir=tmp_path / "guarded")))
    assert scale.call("GET", f"task/{task['task_id']}", org.owner.api_key).json()["callback_succeeded"] is False


def test_a_callback_for_a_task_deleted_with_its_project_fails_saying_so(
    scale: Scale, org: Any, db: Database, tmp_path: Any
) -> None:
    """Deleting a project with its data removes a completed task whose callback is still waiting:
    the job then fails naming the deletion, not calling the task 'not a Scale task'."""
    from truthset.jobs import Runner
    from truthset.services import project_deletion

    task = _project_with_task(scale, org.owner.api_key, callback_url="https://example.com/hook")
    _answer(org, task["truthset"]["project_id"])
    project_deletion.start(db, org.owner.principal, task["truthset"]["project_id"], "Sentiment")
    settings = Settings(data_dir=tmp_path / "data")
    Runner(db, kinds=[project_deletion.JOB_KIND], poll_seconds=0.02, settings=settings).run_until_idle()
    job = jobs.claim(db, "manual", ["scale.callback"], 60)
    assert job is not None and job["payload"] == {"task_id": task["task_id"]}
    with pytest.raises(JobFailed, match=f"task {task['task_id']} was deleted before its callback was sent"):
        deliver_callback(db, JobContext(db, job, "manual", settings=settings))

"""API test helpers: a synchronous client over the in-process app, a "world" of objects, the route walk.

The client is an ``httpx.AsyncClient`` on ``httpx.ASGITransport`` driven from synchronous tests
through an anyio blocking portal (starlette's TestClient warns under this starlette version, and
warnings are errors). App exceptions are re-raised, so a 500 fails the test with its traceback.

``ROUTE_CALLS`` is the one table of "a plausible valid request for every operation", keyed by
``operation_id``: the tenant-isolation and permission walks use it, and fail when a route has no
entry, so a new route forces a decision.
"""

from __future__ import annotations

import functools
import struct
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from fastapi import FastAPI
from sqlalchemy import select

from truthset.api import API_PREFIX
from truthset.config import Settings
from truthset.jobs import Runner
from truthset.schemas import ApiKeyCreate, ResponseCreate, TaskCreate, WebhookCreate
from truthset.services import accounts, export, export_jobs, jobs, media, projects, queue, tasks, webhooks
from truthset.services.tasks import TaskFilter
from truthset.storage import Database
from truthset.storage import tables as t

API = API_PREFIX

#: A spec with every field type and every built-in question type.
FULL_SPEC: dict[str, Any] = {
    "fields": [
        {"name": "text", "type": "text"},
        {"name": "image", "type": "image", "required": False},
        {"name": "html", "type": "html", "required": False},
        {"name": "responses", "type": "responses", "required": False},
    ],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["positive", "negative", "neutral"]},
        {"name": "topics", "type": "labels", "options": ["sport", "politics", "tech"], "required": False},
        {"name": "stars", "type": "rating", "min": 1, "max": 5, "required": False},
        {"name": "summary", "type": "text", "required": False},
    ],
}

#: The default spec of tests/conftest.py's ``make_project`` (text field; sentiment label; optional stars).
SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["positive", "negative", "neutral"]},
        {"name": "stars", "type": "rating", "min": 1, "max": 5, "required": False},
    ],
}

ANSWER = {"sentiment": "positive"}

# ``Org`` and ``Actor`` come from tests/conftest.py (through its fixtures): typed loosely here.
Org = Any
Actor = Any


def png_bytes(width: int = 1, height: int = 1) -> bytes:
    """A real (tiny, grey) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG = png_bytes()


# --- the client ----------------------------------------------------------------------------------


Auth = Any  # an Actor (anything with .api_key), a raw key, or None


class Api:
    """A synchronous client for the in-process app. ``auth`` is an Actor, a raw key, or None."""

    def __init__(self, app: FastAPI, portal: anyio.from_thread.BlockingPortal) -> None:
        self.app = app
        self._portal = portal
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")

    def request(self, method: str, url: str, *, auth: Auth = None, headers: dict | None = None, **kw: Any):
        headers = dict(headers or {})
        key = auth if auth is None or isinstance(auth, str) else auth.api_key
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        call = functools.partial(self._client.request, method, url, headers=headers, **kw)
        return self._portal.call(call)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def close(self) -> None:
        self._portal.call(self._client.aclose)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape, with ``status`` (and ``code``); returns the ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


# --- snapshots -----------------------------------------------------------------------------------


def snapshot(db: Database, organization_id: str, media_dir: Path | None = None) -> dict[str, Any]:
    """Every row an organization owns (every tenant table), plus the media files on disk."""
    state: dict[str, Any] = {}
    with db.read() as conn:
        state["organizations"] = [
            dict(r)
            for r in conn.execute(select(t.organizations).where(t.organizations.c.id == organization_id)).mappings()
        ]
        for table in t.TENANT_TABLES:
            query = select(table).where(table.c.organization_id == organization_id).order_by(table.c.id)
            state[table.name] = [dict(r) for r in conn.execute(query).mappings()]
    if media_dir is not None:
        state["media files"] = sorted(str(p) for p in media_dir.rglob("*")) if media_dir.exists() else []
    return state


def ids_in(state: dict[str, Any]) -> set[str]:
    """Every object id in a snapshot."""
    return {row["id"] for rows in state.values() if isinstance(rows, list) for row in rows if isinstance(row, dict)}


# --- a world of objects, and a plausible request for every operation -----------------------------


@dataclass
class World:
    """One organization's objects, enough for every route to succeed once for ``worker``."""

    org: Org
    worker: Actor
    project: dict[str, Any]
    batch: dict[str, Any]  # finalized, with pending tasks
    open_batch: dict[str, Any]  # open, with a staged task: to finalize
    doomed_batch: dict[str, Any]  # open: to cancel
    task: dict[str, Any]  # pending, answered once by the owner
    doomed_task: dict[str, Any]  # pending: to cancel
    answer_task: dict[str, Any]  # pending, overlap 10: for the worker to answer
    skip_assignment: dict[str, Any]  # the worker's active lease
    release_assignment: dict[str, Any]  # the worker's other active lease
    member: Actor  # an annotator other than the worker
    member_key: dict[str, Any]  # a second key of ``member``: to revoke
    media: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.org.id


def _with_a_task(org: Org, project: dict[str, Any]) -> dict[str, Any]:
    org.make_task(project["id"], "to be deleted with its project")
    return project


def build_world(org: Org, settings: Settings, worker: Actor | None = None) -> World:
    """Objects in ``org`` (made by its owner through the services); ``worker`` holds two leases."""
    db, owner = org.db, org.owner.principal
    worker = worker or org.owner
    project = org.make_project(overlap=3, name="world project")
    batch = org.make_batch(project["id"], name="main")
    org.make_task(project["id"], "first", batch_id=batch["id"])
    org.make_task(project["id"], "doomed", batch_id=batch["id"])
    org.make_task(project["id"], "answer me", batch_id=batch["id"], overlap=10)
    projects.finalize_batch(db, owner, batch["id"])
    task, doomed_task, answer_task = _batch_tasks(org, batch["id"])
    queue.submit(db, owner, task["id"], ResponseCreate(answer=ANSWER))
    open_batch = org.make_batch(project["id"], name="to finalize")
    org.make_task(project["id"], "staged", batch_id=open_batch["id"])
    doomed_batch = org.make_batch(project["id"], name="to cancel")
    queue_project = org.make_project(overlap=1, name="leases")
    org.make_tasks(queue_project["id"], 2)
    skip_assignment = queue.next_assignment(db, worker.principal, queue_project["id"])
    release_assignment = queue.next_assignment(db, worker.principal, queue_project["id"])
    assert skip_assignment and release_assignment
    member = org.add_member("annotator")
    member_key = accounts.create_key(db, owner, ApiKeyCreate(name="to revoke", member_id=member.id))
    # two completed tasks waiting for review, answered by ``member``: one to skip, one to accept
    review_project = org.make_project(quality={"overlap": 1, "review": {"sample_rate": 1.0}}, name="review")
    to_skip, to_review = org.make_tasks(review_project["id"], 2)
    for review_task in (to_skip, to_review):
        queue.submit(db, member.principal, review_task["id"], ResponseCreate(answer=ANSWER))
    image = media.store(
        db, owner, [PNG], filename="dot.png", media_dir=settings.media_dir, max_bytes=settings.max_upload_bytes
    )
    # named by a task, so a prune the walk starts (POST /media/pruning, any age) keeps it for get_media
    image_spec = {"fields": [{"name": "photo", "type": "image"}], "questions": [{"name": "q", "type": "text"}]}
    image_project = org.make_project(spec=image_spec, name="images")
    tasks.create_task(db, owner, image_project["id"], TaskCreate(data={"photo": f"media:{image['id']}"}))
    # an image no task names: the one deleted by DELETE /media/{id}
    unnamed_image = media.store(
        db, owner, [png_bytes(2, 2)], filename="spare.png", media_dir=settings.media_dir,
        max_bytes=settings.max_upload_bytes,
    )  # fmt: skip
    # a project of its own for pausing and resuming batches (a paused batch's tasks leave the queue)
    pausing_project = org.make_project(name="pausing")
    to_pause = org.make_batch(pausing_project["id"], name="to pause")
    to_resume = org.make_batch(pausing_project["id"], name="to resume")
    for pausing in (to_pause, to_resume):
        org.make_task(pausing_project["id"], "waiting", batch_id=pausing["id"])
        projects.finalize_batch(db, owner, pausing["id"])
    projects.pause_batch(db, owner, to_resume["id"])
    with db.write() as conn:  # queued jobs the owner started (no runner runs in these tests)
        job = jobs.enqueue(conn, org.id, "world.job", {"n": 1}, created_by=org.owner.id)
        doomed_job = jobs.enqueue(conn, org.id, "world.job", {"n": 2}, created_by=org.owner.id)
    # a finished export (its file in the data directory), run here by a runner of export jobs only
    export_job = export_jobs.start_export(db, owner, project["id"], "jsonl", export.ExportFilter(status=None))
    Runner(db, kinds=[export_jobs.KIND], settings=settings).run_until_idle()
    webhook, delivery = _world_webhook(db, settings, org, project)
    doomed = WebhookCreate(url=HOOK_URL, events=["batch.completed"])
    doomed_webhook = webhooks.create_webhook(db, settings, owner, doomed)
    return World(
        org=org,
        worker=worker,
        project=project,
        batch=batch,
        open_batch=open_batch,
        doomed_batch=doomed_batch,
        task=task,
        doomed_task=doomed_task,
        answer_task=answer_task,
        skip_assignment=skip_assignment,
        release_assignment=release_assignment,
        member=member,
        member_key=member_key,
        media=image,
        extra={
            "queue_project": queue_project,
            "gold_task": org.make_task(project["id"], "gold to be"),
            "job": job,
            "doomed_job": doomed_job,
            "export_job": export_job,
            "review_project": review_project,
            "skip_review_task": to_skip,
            "review_task": to_review,
            "webhook": webhook,
            "doomed_webhook": doomed_webhook,
            "delivery": delivery,
            "empty_project": org.make_project(name="to delete"),  # no tasks: may be deleted
            "doomed_project": _with_a_task(org, org.make_project(name="to delete with its data")),
            "pause_batch": to_pause,  # finalized, one task waiting
            "resume_batch": to_resume,  # paused
            "unnamed_media": unnamed_image,
        },
    )


#: A public address (no DNS needed, never contacted: no runner runs in these tests).
HOOK_URL = "https://93.184.216.34/truthset-hook"


def _world_webhook(db: Database, settings: Settings, org: Org, project: dict[str, Any]) -> tuple[dict, str]:
    """A webhook with one failed delivery (replayable)."""
    webhook = webhooks.create_webhook(
        db, settings, org.owner.principal, WebhookCreate(url=HOOK_URL, events=["task.completed", "export.ready"])
    )
    with db.write() as conn:
        [delivery_id] = webhooks.emit(conn, org.id, project["id"], "export.ready", {"export": {"id": "x"}})
        conn.execute(
            t.webhook_deliveries.update().where(t.webhook_deliveries.c.id == delivery_id).values(status="failed")
        )
    return webhook, delivery_id


def _batch_tasks(org: Org, batch_id: str) -> list[dict[str, Any]]:
    rows, _ = tasks.list_tasks(org.db, org.owner.principal, TaskFilter(batch_id=batch_id), cursor=None, limit=1000)
    return rows


@dataclass
class Call:
    """A request for one operation: path parameters, query, and a body of some kind."""

    path: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    files: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.json is not None:
            kw["json"] = self.json
        if self.content is not None:
            kw["content"] = self.content
        if self.files is not None:
            kw["files"] = self.files
        return kw


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


#: Path parameter names and the kind of object each one names. A route with a parameter that is
#: not here fails the walks: give the world an object of that kind and list it here.
PATH_PARAMS = {
    "project_id", "batch_id", "task_id", "assignment_id", "member_id", "key_id", "media_id", "worker_id", "job_id",
    "webhook_id", "delivery_id",
}

#: A plausible, valid request for every operation (keyed by operation_id), made from a World.
ROUTE_CALLS: dict[str, Callable[[World], Call]] = {
    "get_me": lambda w: Call(),
    "list_members": lambda w: Call(),
    "add_member": lambda w: Call(json={"email": f"{_unique('new')}@example.com", "role": "annotator"}),
    "get_member": lambda w: Call(path={"member_id": w.member.id}),
    "update_member": lambda w: Call(path={"member_id": w.member.id}, json={"name": "renamed"}),
    "reset_member_password": lambda w: Call(path={"member_id": w.member.id}),
    "change_my_password": lambda w: Call(
        json={"current_password": w.worker.password, "new_password": f"new-{_unique('password')}"}
    ),
    "create_organization": lambda w: Call(json={"name": "another organization"}),
    "list_keys": lambda w: Call(),
    "create_key": lambda w: Call(json={"name": "another key", "member_id": w.member.id}),
    "revoke_key": lambda w: Call(path={"key_id": w.member_key["id"]}),
    "list_workers": lambda w: Call(),
    "list_question_types": lambda w: Call(),
    "create_project": lambda w: Call(json={"name": "new project", "spec": SPEC}),
    "list_projects": lambda w: Call(params={"include_archived": "true"}),
    "get_project": lambda w: Call(path={"project_id": w.project["id"]}),
    "update_project": lambda w: Call(path={"project_id": w.project["id"]}, json={"description": "changed"}),
    "validate_spec": lambda w: Call(json={"spec": SPEC, "project_id": w.project["id"]}),
    "delete_project": lambda w: Call(path={"project_id": w.extra["empty_project"]["id"]}),
    "delete_project_with_data": lambda w: Call(
        path={"project_id": w.extra["doomed_project"]["id"]}, json={"confirm": w.extra["doomed_project"]["name"]}
    ),
    "create_batch": lambda w: Call(path={"project_id": w.project["id"]}, json={"name": _unique("batch")}),
    "list_batches": lambda w: Call(path={"project_id": w.project["id"]}),
    "get_batch": lambda w: Call(path={"batch_id": w.batch["id"]}),
    "finalize_batch": lambda w: Call(path={"batch_id": w.open_batch["id"]}),
    "cancel_batch": lambda w: Call(path={"batch_id": w.doomed_batch["id"]}),
    "pause_batch": lambda w: Call(path={"batch_id": w.extra["pause_batch"]["id"]}),
    "resume_batch": lambda w: Call(path={"batch_id": w.extra["resume_batch"]["id"]}),
    "export_project": lambda w: Call(path={"project_id": w.project["id"]}, params={"all_statuses": "true"}),
    "create_task": lambda w: Call(
        path={"project_id": w.project["id"]}, json={"data": {"text": "new"}, "unique_id": _unique("u")}
    ),
    "import_tasks": lambda w: Call(
        path={"project_id": w.project["id"]},
        content=b'{"data": {"text": "a"}}\n{"data": {"text": "b"}}\n',
        headers={"Content-Type": "application/x-ndjson"},
    ),
    "start_import": lambda w: Call(
        path={"project_id": w.project["id"]},
        params={"filename": "tasks.jsonl"},
        content=b'{"data": {"text": "imported"}}\n',
        headers={"Content-Type": "application/octet-stream"},
    ),
    "list_tasks": lambda w: Call(params={"project_id": w.project["id"]}),
    "get_task": lambda w: Call(path={"task_id": w.task["id"]}),
    "cancel_task": lambda w: Call(path={"task_id": w.doomed_task["id"]}),
    "bulk_task_action": lambda w: Call(
        path={"project_id": w.project["id"]}, json={"action": "set_priority", "ids": [w.task["id"]], "priority": 3}
    ),
    "list_task_responses": lambda w: Call(path={"task_id": w.task["id"]}),
    "submit_response": lambda w: Call(
        path={"task_id": w.answer_task["id"]}, json={"answer": ANSWER}, headers={"Idempotency-Key": _unique("k")}
    ),
    "next_task": lambda w: Call(path={"project_id": w.project["id"]}),
    "skip_assignment": lambda w: Call(path={"assignment_id": w.skip_assignment["id"]}),
    "release_assignment": lambda w: Call(path={"assignment_id": w.release_assignment["id"]}),
    "upload_media": lambda w: Call(files={"file": ("dot.png", PNG, "image/png")}),
    "get_media": lambda w: Call(path={"media_id": w.media["id"]}),
    "get_media_thumbnail": lambda w: Call(path={"media_id": w.media["id"]}),
    "list_media": lambda w: Call(params={"filename": "dot"}),
    "delete_media": lambda w: Call(path={"media_id": w.extra["unnamed_media"]["id"]}),
    "prune_media": lambda w: Call(json={"older_than_hours": 24}),
    "health": lambda w: Call(),
    "next_review": lambda w: Call(path={"project_id": w.extra["review_project"]["id"]}),
    "review_task": lambda w: Call(path={"task_id": w.extra["review_task"]["id"]}, json={"verdict": "accept"}),
    "skip_review": lambda w: Call(path={"task_id": w.extra["skip_review_task"]["id"]}),
    "list_task_reviews": lambda w: Call(path={"task_id": w.task["id"]}),
    "task_history": lambda w: Call(path={"task_id": w.task["id"]}),
    "project_agreement": lambda w: Call(path={"project_id": w.project["id"]}, params={"batch_id": w.batch["id"]}),
    "project_workers": lambda w: Call(path={"project_id": w.project["id"]}, params={"batch_id": w.batch["id"]}),
    "project_dashboard": lambda w: Call(path={"project_id": w.project["id"]}),
    "worker_stats": lambda w: Call(path={"worker_id": w.worker.worker_id}, params={"project_id": w.project["id"]}),
    "refit_project": lambda w: Call(path={"project_id": w.project["id"]}),
    "quality_models": lambda w: Call(path={"project_id": w.project["id"]}),
    "list_queue": lambda w: Call(path={"project_id": w.project["id"]}),
    "rerank_queue": lambda w: Call(path={"project_id": w.project["id"]}),
    "mark_gold": lambda w: Call(path={"task_id": w.extra["gold_task"]["id"]}, json={"answer": ANSWER}),
    "unmark_gold": lambda w: Call(path={"task_id": w.extra["gold_task"]["id"]}),
    "list_gold": lambda w: Call(path={"project_id": w.project["id"]}),
    "import_gold": lambda w: Call(
        path={"project_id": w.project["id"]},
        content=f"task_id,sentiment\n{w.extra['gold_task']['id']},negative\n".encode(),
        headers={"Content-Type": "text/csv"},
    ),
    "reinstate_worker": lambda w: Call(path={"project_id": w.project["id"], "worker_id": w.worker.worker_id}),
    "list_jobs": lambda w: Call(params={"status": "queued", "kind": "world.job"}),
    "get_job": lambda w: Call(path={"job_id": w.extra["job"]["id"]}),
    "cancel_job": lambda w: Call(path={"job_id": w.extra["doomed_job"]["id"]}),
    "create_export": lambda w: Call(path={"project_id": w.project["id"]}, json={"format": "csv"}),
    "download_export": lambda w: Call(path={"job_id": w.extra["export_job"]["id"]}),
    "create_webhook": lambda w: Call(json={"url": HOOK_URL, "events": ["review.done"]}),
    "list_webhooks": lambda w: Call(params={"project_id": w.project["id"]}),
    "get_webhook": lambda w: Call(path={"webhook_id": w.extra["webhook"]["id"]}),
    "update_webhook": lambda w: Call(path={"webhook_id": w.extra["webhook"]["id"]}, json={"description": "changed"}),
    "delete_webhook": lambda w: Call(path={"webhook_id": w.extra["doomed_webhook"]["id"]}),
    "rotate_webhook_secret": lambda w: Call(path={"webhook_id": w.extra["webhook"]["id"]}),
    "list_webhook_deliveries": lambda w: Call(
        path={"webhook_id": w.extra["webhook"]["id"]}, params={"status": "failed"}
    ),
    "get_webhook_delivery": lambda w: Call(path={"delivery_id": w.extra["delivery"]}),
    "replay_webhook_delivery": lambda w: Call(path={"delivery_id": w.extra["delivery"]}),
    "upload_predictions": lambda w: Call(
        path={"project_id": w.project["id"]},
        json={
            "model": "walk",
            "version": "1",
            "predictions": [{"task_id": w.task["id"], "question": "sentiment", "answer": "positive", "score": 0.5}],
        },
    ),
    "task_predictions": lambda w: Call(path={"task_id": w.task["id"]}),
    "train_model": lambda w: Call(path={"project_id": w.project["id"]}, json={"question": "sentiment"}),
    "list_models": lambda w: Call(path={"project_id": w.project["id"]}),
    "start_llm_labeling": lambda w: Call(
        path={"project_id": w.project["id"]},
        json={"question": "sentiment", "base_url": "https://93.184.216.34/v1", "model": "walk", "limit": 1},
    ),
    "start_model_server_predictions": lambda w: Call(
        path={"project_id": w.project["id"]},
        json={"question": "sentiment", "base_url": "https://93.184.216.34", "limit": 1},
    ),
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # a template: /api/v1/projects/{project_id}
    operation_id: str | None
    path_params: tuple[str, ...]

    def url(self, path_params: dict[str, str]) -> str:
        return self.path.format(**path_params)

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.operation_id})"


def app_routes(app: FastAPI) -> list[Route]:
    """Every (method, path) the app serves, from its own route table (HEAD aside)."""
    from fastapi import routing

    if hasattr(routing, "iter_route_contexts"):
        entries = [
            (c.path, c.methods or set(), getattr(c.route, "operation_id", None))
            for c in routing.iter_route_contexts(app.routes)
        ]
    else:  # older FastAPI: a flat list of routes
        entries = [(r.path, getattr(r, "methods", None) or set(), getattr(r, "operation_id", None)) for r in app.routes]
    routes = []
    for path, methods, operation_id in entries:
        if path is None:  # a mount (static files)
            continue
        params = tuple(part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}"))
        for method in sorted(set(methods) - {"HEAD"}):
            routes.append(Route(method, path, operation_id, params))
    return routes


def api_routes(app: FastAPI) -> list[Route]:
    """The REST API's routes (under /api/v1, plus /healthz); the web UI's pages are tested with the UI."""
    return [r for r in app_routes(app) if r.path.startswith(API + "/") or r.path == "/healthz"]


def call_for(route: Route, world: World) -> Call:
    """The table's request for ``route``; fails for an operation or path parameter nobody has decided on."""
    assert route.operation_id in ROUTE_CALLS, f"{route}: add it to ROUTE_CALLS in tests/api/conftest.py"
    call = ROUTE_CALLS[route.operation_id](world)
    unknown = set(route.path_params) - PATH_PARAMS
    assert not unknown, f"{route}: no fixture object for path parameter(s) {unknown}; add one to World"
    assert set(call.path) == set(route.path_params), f"{route}: ROUTE_CALLS fills {set(call.path)}"
    return call


def send(api: Api, route: Route, call: Call, auth: Auth) -> httpx.Response:
    return api.request(route.method, route.url(call.path), auth=auth, **call.kwargs())

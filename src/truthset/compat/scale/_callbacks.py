"""``scale.callback`` jobs: POST a completed task, in Scale's shape, to its ``callback_url``.

The job is enqueued in the transaction that completes the task (services/scale_callbacks.py); the
job runner runs it at least once and retries a failure with backoff. Each attempt records
``callback_succeeded`` on the task, as Scale reports it. The request carries the project's callback
key in the ``scale-callback-auth`` header, so the receiver can tell the POST comes from truthset.
"""

from __future__ import annotations

from typing import Any

import orjson

from truthset.compat.scale._shapes import task_json
from truthset.config import Settings, get_settings
from truthset.services import netguard, scale_callbacks
from truthset.services.jobs import JobContext, JobFailed
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024  # a receiver's answer is only read for its status
HEADER = "scale-callback-auth"


def _load(db: Database, organization_id: str, task_id: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    with db.read() as conn:
        task = repo.get(conn, t.tasks, organization_id, task_id)
        if task is None:  # its project was deleted with its data after the task completed
            raise JobFailed(f"task {task_id} was deleted before its callback was sent")
        if not task["scale"]:
            raise JobFailed(f"task {task_id} is not a Scale task")
        project = repo.get(conn, t.projects, organization_id, task["project_id"])
        batch = repo.get(conn, t.batches, organization_id, task["batch_id"]) if task["batch_id"] else None
    return task, project or {}, batch["name"] if batch else None


def _record(db: Database, task: dict[str, Any], succeeded: bool) -> None:
    scale_callbacks.record_outcome(db, task["organization_id"], task["id"], succeeded)


def _post(url: str, body: dict[str, Any], auth_key: str, settings: Settings) -> int:
    """POST the callback through the network guard, as webhook deliveries are sent; returns the
    receiver's status. Raises :class:`~truthset.services.netguard.OutboundRefused` for a URL that
    must never be called (loopback, private, link-local... unless the settings allow it: the job
    fails at once) and :class:`~truthset.services.netguard.FetchFailed` when no answer came (retried).
    Redirects are not followed: a receiver that moved must be given its new URL."""
    fetched = netguard.request(
        "POST",
        url,
        netguard.Guard.from_settings(settings, total_timeout=TIMEOUT_SECONDS),
        headers={HEADER: auth_key, "Content-Type": "application/json"},
        content=orjson.dumps(body),
        follow_redirects=False,
        max_bytes=MAX_ANSWER_BYTES,
    )
    return fetched.status_code


def deliver(db: Database, job: JobContext) -> dict[str, Any]:
    """Handler of ``scale.callback``, payload ``{"task_id": ...}``: raises on a failed POST (the
    runner retries it); returns the receiver's status once it answers 2xx."""
    task_id = job.payload.get("task_id")
    if not isinstance(task_id, str):
        raise JobFailed("the payload names no task_id")
    task, project, batch_name = _load(db, job.organization_id, task_id)
    url = task["scale"].get("callback_url")
    if not url:
        raise JobFailed(f"task {task_id} has no callback_url")
    shaped = task_json(task, project.get("name"), batch_name)
    # Scale's POST data: the task, its status and response, and its id (scale.com/docs/api-reference/callbacks)
    body = {"task": shaped, "status": shaped["status"], "response": shaped.get("response"), "task_id": task_id}
    auth_key = ((project.get("scale") or {}).get("callback_auth_key")) or ""
    job.check()
    try:
        status = _post(url, body, auth_key, job.settings or get_settings())
    except netguard.OutboundRefused as exc:  # a URL the network guard refuses: no retry can help
        _record(db, task, False)
        raise JobFailed(f"callback to {url} refused: {exc.message}") from None
    except netguard.FetchFailed as exc:  # no answer (connection, time limit): retried with backoff
        _record(db, task, False)
        raise RuntimeError(f"callback to {url} failed: {exc.message}") from None
    if not 200 <= status < 300:
        _record(db, task, False)
        raise RuntimeError(f"callback to {url} answered {status}")
    _record(db, task, True)
    return {"status_code": status}

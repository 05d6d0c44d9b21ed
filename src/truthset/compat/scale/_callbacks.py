"""``scale.callback`` jobs: POST a completed task, in Scale's shape, to its ``callback_url``.

The job is enqueued in the transaction that completes the task (services/scale_callbacks.py); the
job runner runs it at least once and retries a failure with backoff. Each attempt records
``callback_succeeded`` on the task, as Scale reports it. The request carries the project's callback
key in the ``scale-callback-auth`` header, so the receiver can tell the POST comes from truthset.
"""

from __future__ import annotations

from typing import Any

import httpx

from truthset.compat.scale._shapes import task_json
from truthset.errors import InvalidInput
from truthset.services.jobs import JobContext, JobFailed
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

TIMEOUT_SECONDS = 10.0
HEADER = "scale-callback-auth"


def _load(db: Database, organization_id: str, task_id: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    with db.read() as conn:
        task = repo.get(conn, t.tasks, organization_id, task_id)
        if task is None or not task["scale"]:
            raise JobFailed(f"task {task_id} is not a Scale task")
        project = repo.get(conn, t.projects, organization_id, task["project_id"])
        batch = repo.get(conn, t.batches, organization_id, task["batch_id"]) if task["batch_id"] else None
    return task, project or {}, batch["name"] if batch else None


def _record(db: Database, task: dict[str, Any], succeeded: bool) -> None:
    """``callback_succeeded`` on the task's Scale record (read again: tags may have changed since)."""
    with db.write() as conn:
        current = repo.get(conn, t.tasks, task["organization_id"], task["id"], lock=True)
        if current is not None and current["scale"]:
            scale = {**current["scale"], "callback_succeeded": succeeded}
            repo.change(conn, t.tasks, task["organization_id"], task["id"], scale=scale)


def _post(url: str, body: dict[str, Any], auth_key: str) -> int:
    """POST the callback; returns the receiver's status. Raises httpx.HTTPError when no answer came
    (retried), or InvalidInput for a URL that must never be called (the job fails at once)."""
    # TODO(netguard): post through services/netguard.py (being built on the webhooks branch) so that
    # a callback_url resolving to a loopback, private or link-local address is refused unless the
    # settings allow it, exactly like webhook deliveries:
    #     netguard.request("POST", url, Guard.from_settings(settings), headers=..., content=...,
    #                      follow_redirects=False).status_code
    # (OutboundRefused is an InvalidInput: it fails the job; FetchFailed should be retried). Until
    # the lead wires it in, this plain client follows no redirects and has a bounded timeout.
    with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
        return client.post(url, json=body, headers={HEADER: auth_key}).status_code


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
    body = {
        "task": task_json(task, project.get("name"), batch_name),
        "response": None,
        "task_id": task_id,
    }
    body["response"] = body["task"].get("response")
    auth_key = ((project.get("scale") or {}).get("callback_auth_key")) or ""
    job.check()
    try:
        status = _post(url, body, auth_key)
    except InvalidInput as exc:  # a URL the network guard refuses: no retry can help
        _record(db, task, False)
        raise JobFailed(f"callback to {url} refused: {exc.message}") from None
    except httpx.HTTPError as exc:
        _record(db, task, False)
        raise RuntimeError(f"callback to {url} failed: {exc}") from None
    if not 200 <= status < 300:
        _record(db, task, False)
        raise RuntimeError(f"callback to {url} answered {status}")
    _record(db, task, True)
    return {"status_code": status}

"""Webhooks: subscriptions to events, and signed deliveries through the job runner.

An organization subscribes a URL to events (``task.completed``, ``batch.completed``,
``response.created``, ``review.done``, ``export.ready``), for every project or for one. When an
event happens, :func:`emit` is called with the connection of the change's own transaction: it
writes one delivery per matching subscription and its ``webhook.deliver`` job (the outbox), so a
delivery exists exactly when its event does. The job POSTs the delivery (:func:`deliver`), signed
with the subscription's secret; a 2xx answer delivers it, anything else is retried with exponential
backoff for ``webhook_retry_window_seconds`` (24 h) after the event, then the delivery fails (a
manager may replay it). Every attempt is a row of ``webhook_attempts``. The target URL passes the
network guard when the subscription is made or changed and again at every attempt.

Secrets: the server makes them (``whsec_`` and 32 random bytes), shows them once, and must read
them again to sign, so they are stored encrypted with AES-GCM (the ``cryptography`` package) under
a key kept outside the database (``TRUTHSET_WEBHOOK_SECRET_KEY``, or a ``0600`` key file in the
data directory), bound to their organization and subscription: a database dump or backup alone
does not give them away, and a sealed secret copied to another row does not open.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, bindparam, delete, select

from truthset.config import Settings, get_settings
from truthset.domain import DeliveryStatus, JobStatus, Principal, WebhookEvent
from truthset.errors import Conflict, NotFound, TruthsetError
from truthset.schemas import WebhookCreate, WebhookUpdate
from truthset.services import jobs
from truthset.services.jobs import Backoff, JobContext, JobFailed, RetryLater
from truthset.services.netguard import FetchFailed, Guard, OutboundRefused, check_url, request
from truthset.services.policy import Action, require
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow
from truthset.storage.prepared import Prepared

__all__ = [
    "JOB_KIND",
    "SecretUnreadable",
    "create_webhook",
    "delete_webhook",
    "deliver",
    "emit",
    "get_delivery",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "replay",
    "rotate_secret",
    "sign",
    "update_webhook",
]

JOB_KIND = "webhook.deliver"
#: The job's own bound; the retry window (24 h) ends a delivery first (about 55 attempts at most).
MAX_JOB_ATTEMPTS = 100
#: Only the status of a receiver's answer counts: at most this much of its body is read.
_ANSWER_BYTES = 64 * 1024
KEY_FILE = "webhook-secret.key"
_SECRET_PREFIX = "whsec_"
_SEALED_PREFIX = "v1:"


class SecretUnreadable(TruthsetError):
    """This process's key does not open the stored secret (servers and workers with different keys)."""

    code = "webhook_secret_unreadable"


# --- secrets ---------------------------------------------------------------------------------------

_keys: dict[str, bytes] = {}
_keys_lock = threading.Lock()


def _key(settings: Settings) -> bytes:
    """The 32-byte key that seals secrets: from the settings, else the data directory's key file."""
    if settings.webhook_secret_key:
        return base64.b64decode(settings.webhook_secret_key)
    path = (settings.data_dir / KEY_FILE).resolve()
    with _keys_lock:
        if str(path) not in _keys:
            _keys[str(path)] = _key_file(path)
        return _keys[str(path)]


def _key_file(path: Path) -> bytes:
    """Read the key file, making it first if there is none (owner-only; two processes racing make one)."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".webhook-key-")  # mode 0600
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(base64.b64encode(os.urandom(32)) + b"\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                os.link(temporary, path)  # atomic
        finally:
            os.unlink(temporary)
    key = base64.b64decode(path.read_bytes().strip())
    if len(key) != 32:
        raise SecretUnreadable(f"{path} does not hold a 32-byte base64 key")
    return key


def _bound_to(organization_id: str, webhook_id: str) -> bytes:
    return f"{organization_id}/{webhook_id}".encode()


def seal(settings: Settings, organization_id: str, webhook_id: str, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(settings)).encrypt(nonce, secret.encode(), _bound_to(organization_id, webhook_id))
    return _SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(settings: Settings, organization_id: str, webhook_id: str, stored: str) -> str:
    raw = base64.b64decode(stored.removeprefix(_SEALED_PREFIX))
    try:
        return AESGCM(_key(settings)).decrypt(raw[:12], raw[12:], _bound_to(organization_id, webhook_id)).decode()
    except InvalidTag:
        raise SecretUnreadable(
            "the webhook's secret cannot be decrypted with this process's key: give every server and worker "
            "the same TRUTHSET_WEBHOOK_SECRET_KEY (or the same data directory)"
        ) from None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Truthset-Signature`` value: ``v1=`` and the hex HMAC-SHA256 of ``{timestamp}.{body}``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


# --- subscriptions ---------------------------------------------------------------------------------


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    """A subscription as the API shows it: never its secret."""
    return {key: value for key, value in row.items() if key != "secret"}


def _load(conn: Connection, principal: Principal, webhook_id: str, *, lock: bool = False) -> dict[str, Any]:
    row = repo.get(conn, t.webhook_subscriptions, principal.organization_id, webhook_id, lock=lock)
    if row is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return row


def _checked_url(url: str, settings: Settings) -> str:
    """The URL, if the network guard lets it through now (DNS is asked outside any transaction)."""
    check_url(url, Guard.from_settings(settings))
    return url


def create_webhook(db: Database, settings: Settings, principal: Principal, data: WebhookCreate) -> dict[str, Any]:
    """A new subscription, with its secret (shown this once)."""
    require(principal, Action.MANAGE_WEBHOOKS)
    url = _checked_url(data.url, settings)
    webhook_id, secret, now = new_id(), _SECRET_PREFIX + secrets.token_urlsafe(32), utcnow()
    row = {
        "id": webhook_id,
        "organization_id": principal.organization_id,
        "project_id": data.project_id,
        "url": url,
        "events": [str(event) for event in dict.fromkeys(data.events)],
        "description": data.description,
        "active": data.active,
        "secret": seal(settings, principal.organization_id, webhook_id, secret),
        "created_by": principal.member_id,
        "created_at": now,
        "updated_at": now,
        "secret_rotated_at": None,
    }
    with db.write() as conn:
        project_id = data.project_id
        if project_id is not None and repo.get(conn, t.projects, principal.organization_id, project_id) is None:
            raise NotFound(f"project {data.project_id} not found", details={"field": "project_id"})
        repo.add(conn, t.webhook_subscriptions, row)
        repo.forget(conn, _active_key(principal.organization_id))
    return {**public(row), "secret": secret}


def list_webhooks(
    db: Database, principal: Principal, *, project_id: str | None = None, cursor: str | None = None, limit: int = 100
) -> tuple[list[dict[str, Any]], str | None]:
    """The organization's subscriptions, oldest first (``project_id``: only those of that project)."""
    require(principal, Action.MANAGE_WEBHOOKS)
    query = repo.scoped(t.webhook_subscriptions, principal.organization_id)
    if project_id is not None:
        query = query.where(t.webhook_subscriptions.c.project_id == project_id)
    with db.read() as conn:
        rows, next_cursor = repo.page(conn, query, t.webhook_subscriptions, cursor=cursor, limit=limit)
    return [public(row) for row in rows], next_cursor


def get_webhook(db: Database, principal: Principal, webhook_id: str) -> dict[str, Any]:
    require(principal, Action.MANAGE_WEBHOOKS)
    with db.read() as conn:
        return public(_load(conn, principal, webhook_id))


def update_webhook(
    db: Database, settings: Settings, principal: Principal, webhook_id: str, data: WebhookUpdate
) -> dict[str, Any]:
    """Change the URL (checked again), events, description or active flag."""
    require(principal, Action.MANAGE_WEBHOOKS)
    values: dict[str, Any] = {}
    if data.url is not None:
        values["url"] = _checked_url(data.url, settings)
    if data.events is not None:
        values["events"] = [str(event) for event in dict.fromkeys(data.events)]
    if data.description is not None:
        values["description"] = data.description
    if data.active is not None:
        values["active"] = data.active
    with db.write() as conn:
        row = _load(conn, principal, webhook_id, lock=True)
        if values:
            values["updated_at"] = utcnow()
            repo.change(conn, t.webhook_subscriptions, principal.organization_id, webhook_id, **values)
            repo.forget(conn, _active_key(principal.organization_id))
    return public({**row, **values})


def rotate_secret(db: Database, settings: Settings, principal: Principal, webhook_id: str) -> dict[str, Any]:
    """A new secret (shown this once); deliveries from now on are signed with it, the old one is gone."""
    require(principal, Action.MANAGE_WEBHOOKS)
    secret, now = _SECRET_PREFIX + secrets.token_urlsafe(32), utcnow()
    with db.write() as conn:
        row = _load(conn, principal, webhook_id, lock=True)
        values = {
            "secret": seal(settings, principal.organization_id, webhook_id, secret),
            "secret_rotated_at": now,
            "updated_at": now,
        }
        repo.change(conn, t.webhook_subscriptions, principal.organization_id, webhook_id, **values)
    return {**public({**row, **values}), "secret": secret}


def delete_webhook(db: Database, principal: Principal, webhook_id: str) -> None:
    """Delete the subscription with its deliveries and their attempts (a queued delivery job then skips)."""
    require(principal, Action.MANAGE_WEBHOOKS)
    with db.write() as conn:
        _load(conn, principal, webhook_id, lock=True)
        deliveries = select(t.webhook_deliveries.c.id).where(
            t.webhook_deliveries.c.organization_id == principal.organization_id,
            t.webhook_deliveries.c.subscription_id == webhook_id,
        )
        conn.execute(delete(t.webhook_attempts).where(t.webhook_attempts.c.delivery_id.in_(deliveries)))
        conn.execute(delete(t.webhook_deliveries).where(t.webhook_deliveries.c.subscription_id == webhook_id))
        conn.execute(
            delete(t.webhook_subscriptions).where(
                t.webhook_subscriptions.c.organization_id == principal.organization_id,
                t.webhook_subscriptions.c.id == webhook_id,
            )
        )
        repo.forget(conn, _active_key(principal.organization_id))


# --- events (in the transaction of the change) ------------------------------------------------------

# Run on every submit: one indexed read, prepared (see storage/prepared.py), and nothing more for an
# organization without webhooks. Read in the change's own transaction, so a subscription made or
# disabled concurrently is seen exactly as that transaction sees it (no cache to invalidate).
_ACTIVE = Prepared(
    select(
        t.webhook_subscriptions.c.id,
        t.webhook_subscriptions.c.project_id,
        t.webhook_subscriptions.c.events,
    ).where(
        t.webhook_subscriptions.c.organization_id == bindparam("organization_id"),
        t.webhook_subscriptions.c.active.is_(True),
    )
)


def _active_key(organization_id: str) -> tuple[str, str]:
    return ("webhooks.active", organization_id)


def _active_subscriptions(conn: Connection, organization_id: str) -> list[dict[str, Any]]:
    """The organization's active subscriptions, read once per transaction: a submit emits two events,
    and on SQLite one transaction runs many submits (the writers of subscriptions forget it)."""
    memo = repo.transaction_memo(conn)
    key = _active_key(organization_id)
    if (rows := memo.get(key)) is None:
        rows = memo[key] = _ACTIVE.rows(conn, {"organization_id": organization_id})
    return rows


def emit(
    conn: Connection, organization_id: str, project_id: str | None, event: str, payload: Mapping[str, Any]
) -> list[str]:
    """Record ``event`` for every active subscription that wants it; returns the delivery ids.

    Call it inside the transaction of the change the event reports: each delivery and its
    ``webhook.deliver`` job commit (or roll back) with the change. ``payload`` (JSON: names, ids,
    ISO times) becomes the body's ``data``. ``project_id`` None: an organization-wide event, for
    subscriptions to every project only.
    """
    event = str(WebhookEvent(event))
    subscriptions = _active_subscriptions(conn, organization_id)
    wanted = [
        row["id"]
        for row in subscriptions
        if event in row["events"] and (row["project_id"] is None or row["project_id"] == project_id)
    ]
    return [_add_delivery(conn, organization_id, webhook_id, project_id, event, payload) for webhook_id in wanted]


def _add_delivery(
    conn: Connection,
    organization_id: str,
    webhook_id: str,
    project_id: str | None,
    event: str,
    payload: Mapping[str, Any],
) -> str:
    delivery_id, now = new_id(), utcnow()
    job = jobs.enqueue(conn, organization_id, JOB_KIND, {"delivery_id": delivery_id}, max_attempts=MAX_JOB_ATTEMPTS)
    repo.add(
        conn,
        t.webhook_deliveries,
        {
            "id": delivery_id,
            "organization_id": organization_id,
            "subscription_id": webhook_id,
            "project_id": project_id,
            "event": event,
            "payload": dict(payload),
            "status": str(DeliveryStatus.PENDING),
            "attempts": 0,
            "last_status_code": None,
            "last_error": None,
            "next_attempt_at": now,
            "window_started_at": now,
            "job_id": job["id"],
            "created_at": now,
            "updated_at": now,
            "delivered_at": None,
        },
    )
    return delivery_id


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def task_data(task: Mapping[str, Any]) -> dict[str, Any]:
    """A task as events carry it: ids, status, metadata and its result."""
    return {
        "id": task["id"],
        "unique_id": task.get("unique_id"),
        "project_id": task["project_id"],
        "batch_id": task.get("batch_id"),
        "status": task["status"],
        "review_status": task.get("review_status"),
        "metadata": task.get("metadata") or {},
        "answer": (task.get("result") or {}).get("answer"),
        "confidence": task.get("confidence"),
        "result": task.get("result"),
        "completed_at": _iso(task.get("completed_at")),
    }


def response_data(response: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": response["id"],
        "task_id": response["task_id"],
        "project_id": response["project_id"],
        "worker_id": response["worker_id"],
        "assignment_id": response.get("assignment_id"),
        "answer": response["answer"],
        "duration_ms": response.get("duration_ms"),
        "created_at": _iso(response["created_at"]),
    }


def review_data(review: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": review["id"],
        "task_id": review["task_id"],
        "verdict": review["verdict"],
        "reason": review["reason"],
        "reviewer_id": review["reviewer_id"],
        "response_id": review["response_id"],
        "created_at": _iso(review["created_at"]),
    }


def batch_data(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": batch["id"],
        "project_id": batch["project_id"],
        "name": batch["name"],
        "status": batch["status"],
        "metadata": batch.get("metadata") or {},
        "completed_at": _iso(batch.get("completed_at")),
    }


# --- delivery (the webhook.deliver job) -------------------------------------------------------------


def body_of(delivery: Mapping[str, Any]) -> bytes:
    """The POST body: the same bytes on every attempt (keys sorted), so a signature is reproducible."""
    envelope = {
        "id": delivery["id"],
        "event": delivery["event"],
        "created_at": _iso(delivery["created_at"]),
        "organization_id": delivery["organization_id"],
        "project_id": delivery["project_id"],
        "data": delivery["payload"],
    }
    return orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)


def deliver(db: Database, job: JobContext) -> dict[str, Any]:
    """``webhook.deliver``, payload ``{"delivery_id": ...}``: POST the delivery once.

    2xx: delivered. Otherwise :class:`RetryLater` with this delivery's backoff, or, past the retry
    window, :class:`JobFailed` (the delivery is failed). The network call happens outside any
    transaction; its outcome is recorded in one short one. At least once: a runner lost after the
    POST but before recording it leaves the job to another runner, which POSTs again with the same
    ``X-Truthset-Delivery`` (receivers dedupe on it).
    """
    settings = job.settings or get_settings()
    delivery_id = job.payload.get("delivery_id")
    if not isinstance(delivery_id, str):
        raise JobFailed("the payload names no delivery_id")
    with db.read() as conn:
        delivery = repo.get(conn, t.webhook_deliveries, job.organization_id, delivery_id)
        webhook = delivery and repo.get(conn, t.webhook_subscriptions, job.organization_id, delivery["subscription_id"])
    if delivery is None or webhook is None:
        return {"delivery_id": delivery_id, "skipped": "the delivery is gone (its webhook was deleted)"}
    if delivery["status"] != str(DeliveryStatus.PENDING) or delivery["job_id"] != job.id:
        return {"delivery_id": delivery_id, "skipped": f"the delivery is {delivery['status']}"}
    if not webhook["active"]:
        _give_up(db, job, delivery_id, "the webhook is inactive: not sent (replay it once active)")
        return {"delivery_id": delivery_id, "skipped": "the webhook is inactive"}
    secret = unseal(settings, job.organization_id, webhook["id"], webhook["secret"])
    job.check()  # canceled or stopping: do not POST
    started, clock = utcnow(), time.perf_counter()
    status_code, error = _post(webhook["url"], delivery, secret, settings)
    duration_ms = round((time.perf_counter() - clock) * 1000)
    outcome, delay = _record(db, job, delivery_id, status_code, error, started, duration_ms, settings)
    if outcome is DeliveryStatus.DELIVERED:
        return {"delivery_id": delivery_id, "status_code": status_code}
    if outcome is DeliveryStatus.FAILED:
        raise JobFailed(f"{error}; not retried: the retry window has ended (replay the delivery to try again)")
    if outcome is None:  # replayed, deleted or delivered meanwhile by another run: nothing more to do
        return {"delivery_id": delivery_id, "skipped": "the delivery changed meanwhile"}
    raise RetryLater(error or "failed", delay)


def _post(url: str, delivery: Mapping[str, Any], secret: str, settings: Settings) -> tuple[int | None, str | None]:
    """POST once through the guard (no redirects followed); (status code, error or None)."""
    body, timestamp = body_of(delivery), str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "truthset-webhooks",
        "X-Truthset-Event": delivery["event"],
        "X-Truthset-Delivery": delivery["id"],
        "X-Truthset-Timestamp": timestamp,
        "X-Truthset-Signature": sign(secret, timestamp, body),
    }
    guard = Guard.from_settings(
        settings,
        read_timeout=settings.webhook_timeout_seconds,
        total_timeout=settings.webhook_timeout_seconds,
        max_bytes=_ANSWER_BYTES,
    )
    try:
        answer = request("POST", url, guard, headers=headers, content=body, follow_redirects=False)
    except (OutboundRefused, FetchFailed) as exc:
        return None, exc.message.removeprefix("url: ")
    if 200 <= answer.status_code < 300:
        return answer.status_code, None
    return answer.status_code, f"the receiver answered {answer.status_code}"


def _record(
    db: Database,
    job: JobContext,
    delivery_id: str,
    status_code: int | None,
    error: str | None,
    started: datetime,
    duration_ms: int,
    settings: Settings,
) -> tuple[DeliveryStatus | None, float]:
    """Log the attempt and move the delivery on; (its status now, or None if it changed meanwhile; delay)."""
    now = utcnow()
    with db.write() as conn:
        delivery = repo.get(conn, t.webhook_deliveries, job.organization_id, delivery_id, lock=True)
        if delivery is None:
            return None, 0.0
        attempt = delivery["attempts"] + 1
        repo.add(
            conn,
            t.webhook_attempts,
            {
                "id": new_id(),
                "organization_id": job.organization_id,
                "delivery_id": delivery_id,
                "attempt": attempt,
                "status_code": status_code,
                "error": error,
                "duration_ms": duration_ms,
                "job_id": job.id,
                "created_at": started,
            },
        )
        values: dict[str, Any] = {"attempts": attempt}
        # a late attempt (its job replaced by a replay, or the delivery delivered by another run) is
        # logged above and changes nothing else
        current = delivery["status"] == str(DeliveryStatus.PENDING) and delivery["job_id"] == job.id
        status, delay = _next_step(delivery, job, error, now, settings) if current else (None, 0.0)
        if status is not None:
            values.update(status=str(status), last_status_code=status_code, last_error=error)
            values["next_attempt_at"] = now + timedelta(seconds=delay) if status is DeliveryStatus.PENDING else None
            if status is DeliveryStatus.DELIVERED:
                values["delivered_at"] = now
        values["updated_at"] = now
        repo.change(conn, t.webhook_deliveries, job.organization_id, delivery_id, **values)
    return status, delay


def _next_step(
    delivery: Mapping[str, Any], job: JobContext, error: str | None, now: datetime, settings: Settings
) -> tuple[DeliveryStatus, float]:
    if error is None:
        return DeliveryStatus.DELIVERED, 0.0
    backoff = Backoff(base=settings.webhook_retry_base_seconds, cap=settings.webhook_retry_max_seconds)
    delay = backoff.delay(delivery["attempts"] + 1)
    window_ends = delivery["window_started_at"] + timedelta(seconds=settings.webhook_retry_window_seconds)
    if now + timedelta(seconds=delay) > window_ends or job.attempt >= job.job["max_attempts"]:
        return DeliveryStatus.FAILED, 0.0
    return DeliveryStatus.PENDING, delay


def _give_up(db: Database, job: JobContext, delivery_id: str, error: str) -> None:
    with db.write() as conn:
        values = {"status": str(DeliveryStatus.FAILED), "last_error": error, "next_attempt_at": None}
        repo.change(conn, t.webhook_deliveries, job.organization_id, delivery_id, **values, updated_at=utcnow())


# --- deliveries (the API's side) --------------------------------------------------------------------


def delivery_public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "webhook_id": row["subscription_id"]}


def list_deliveries(
    db: Database,
    principal: Principal,
    webhook_id: str,
    *,
    status: DeliveryStatus | None = None,
    event: WebhookEvent | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """A subscription's deliveries, newest first."""
    require(principal, Action.MANAGE_WEBHOOKS)
    deliveries = t.webhook_deliveries
    query = repo.scoped(deliveries, principal.organization_id).where(deliveries.c.subscription_id == webhook_id)
    if status is not None:
        query = query.where(deliveries.c.status == str(status))
    if event is not None:
        query = query.where(deliveries.c.event == str(event))
    with db.read() as conn:
        _load(conn, principal, webhook_id)
        rows, next_cursor = repo.page(conn, query, deliveries, cursor=cursor, limit=limit, descending=True)
    return [delivery_public(row) for row in rows], next_cursor


def get_delivery(db: Database, principal: Principal, delivery_id: str) -> dict[str, Any]:
    """One delivery with every attempt (oldest first)."""
    require(principal, Action.MANAGE_WEBHOOKS)
    with db.read() as conn:
        delivery = repo.get(conn, t.webhook_deliveries, principal.organization_id, delivery_id)
        if delivery is None:
            raise NotFound(f"delivery {delivery_id} not found")
        attempts = t.webhook_attempts
        query = (
            repo.scoped(attempts, principal.organization_id)
            .where(attempts.c.delivery_id == delivery_id)
            .order_by(attempts.c.attempt, attempts.c.id)
        )
        history = [dict(row) for row in conn.execute(query).mappings()]
    return {**delivery_public(delivery), "history": history}


def _job_alive(conn: Connection, delivery: Mapping[str, Any]) -> bool:
    """Whether the delivery's job is queued or running (not canceled, failed or gone)."""
    query = select(t.jobs.c.status).where(
        t.jobs.c.organization_id == delivery["organization_id"], t.jobs.c.id == delivery["job_id"]
    )
    return conn.execute(query).scalar() in (str(JobStatus.QUEUED), str(JobStatus.RUNNING))


def replay(db: Database, principal: Principal, delivery_id: str) -> dict[str, Any]:
    """Send a delivered or failed delivery again, same id and body, with a new retry window.

    A delivery still pending is a conflict while its job is queued or running (its retries are
    under way); one whose job was canceled (``POST /jobs/{id}/cancel``) may be replayed.
    """
    require(principal, Action.MANAGE_WEBHOOKS)
    now = utcnow()
    with db.write() as conn:
        delivery = repo.get(conn, t.webhook_deliveries, principal.organization_id, delivery_id, lock=True)
        if delivery is None:
            raise NotFound(f"delivery {delivery_id} not found")
        if delivery["status"] == str(DeliveryStatus.PENDING) and _job_alive(conn, delivery):
            raise Conflict(
                f"delivery {delivery_id} is still pending: its next attempt is at "
                f"{_iso(delivery['next_attempt_at'])}; replay it once it has been delivered or has failed",
                details={"status": delivery["status"]},
                code="delivery_pending",
            )
        payload = {"delivery_id": delivery_id}
        job = jobs.enqueue(
            conn, principal.organization_id, JOB_KIND, payload, created_by=principal.member_id, max_attempts=100
        )
        values = {
            "status": str(DeliveryStatus.PENDING),
            "job_id": job["id"],
            "next_attempt_at": now,
            "window_started_at": now,
            "updated_at": now,
        }
        repo.change(conn, t.webhook_deliveries, principal.organization_id, delivery_id, **values)
    return delivery_public({**delivery, **values})

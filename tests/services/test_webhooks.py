"""Webhooks: events written with the change that causes them, signed deliveries to a real receiver
on 127.0.0.1 (tests/receiver.py), retries after a 500, at least once after a lost runner, the
guard at every attempt, replay, secrets sealed at rest, and isolation between organizations.

SQLite always, PostgreSQL when configured. Nothing sleeps for timing: tests wait on the receiver's
requests, or for a stored state, with a deadline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from receiver import Reply, Request, running
from truthset.config import Settings
from truthset.domain import JobStatus, Role
from truthset.errors import Conflict, Forbidden, NotFound
from truthset.jobs import Runner
from truthset.schemas import ResponseCreate, WebhookCreate, WebhookUpdate
from truthset.services import jobs, projects, queue, review, webhooks
from truthset.services.jobs import JobContext, JobFailed, RetryLater
from truthset.services.netguard import OutboundRefused
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

if TYPE_CHECKING:
    from conftest import Org

DEADLINE_S = 30.0
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
PUBLIC_URL = "https://93.184.216.34/hook"  # passes the guard without DNS; never contacted here
EVERY_EVENT = ["task.completed", "batch.completed", "response.created", "review.done", "export.ready"]
ANSWER = {"sentiment": "positive"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """127.0.0.1 allowed (the receiver), retries a hundredth of a second apart."""
    return Settings(
        data_dir=tmp_path / "data",
        outbound_allow="127.0.0.1",
        webhook_retry_base_seconds=0.01,
        webhook_retry_max_seconds=0.02,
        webhook_timeout_seconds=10,
    )


def subscribe(org: Org, settings: Settings, url: str = PUBLIC_URL, **fields: Any) -> dict[str, Any]:
    data = WebhookCreate.model_validate({"url": url, "events": fields.pop("events", EVERY_EVENT), **fields})
    return webhooks.create_webhook(org.db, settings, org.owner.principal, data)


def deliveries(db: Database, organization_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        query = select(t.webhook_deliveries).where(t.webhook_deliveries.c.organization_id == organization_id)
        return [dict(row) for row in conn.execute(query.order_by(t.webhook_deliveries.c.id)).mappings()]


def delivery_jobs(db: Database, organization_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        query = select(t.jobs).where(t.jobs.c.organization_id == organization_id, t.jobs.c.kind == webhooks.JOB_KIND)
        return [dict(row) for row in conn.execute(query.order_by(t.jobs.c.id)).mappings()]


def wait_until(check: Callable[[], Any], timeout: float = DEADLINE_S) -> Any:
    """Poll ``check`` until it returns something truthy (bounded waits on an event, no timing asserted)."""
    pause, deadline = threading.Event(), time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "the expected state was not reached in time"
        pause.wait(0.02)


def verify(request: Request, secret: str, tolerance_s: int = 300) -> dict[str, Any]:
    """What a receiver does (the docs' snippet, independently of truthset's code): check the HMAC."""
    timestamp = request.headers["x-truthset-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-truthset-signature"], f"v1={expected}")
    assert abs(time.time() - int(timestamp)) < tolerance_s
    return json.loads(request.body)


@pytest.fixture
def runner(db: Database, settings: Settings) -> Iterator[Runner]:
    started = Runner(db, kinds=[webhooks.JOB_KIND], poll_seconds=0.02, settings=settings, name="test-runner")
    yield started
    started.stop()


def run_handler(db: Database, settings: Settings, runner_id: str = "manual", **claim: Any) -> Any:
    """Claim the next delivery job as ``runner_id`` and run the handler in this thread; its outcome."""
    job = jobs.claim(db, runner_id, [webhooks.JOB_KIND], 60, **claim)
    assert job is not None
    try:
        return webhooks.deliver(db, JobContext(db, job, runner_id, settings=settings))
    except (RetryLater, JobFailed) as exc:
        return exc


# --- events ----------------------------------------------------------------------------------------


def test_events_from_the_real_flows(org: Org, settings: Settings) -> None:
    project = org.make_project(overlap=1)
    batch = org.make_batch(project["id"])
    [task] = org.make_tasks(project["id"], 1, batch_id=batch["id"])
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    webhook = subscribe(org, settings)
    annotator = org.actor(Role.ANNOTATOR)
    queue.submit(org.db, annotator.principal, task["id"], ResponseCreate(answer=ANSWER))
    review.submit_review(org.db, org.owner.principal, task["id"], "accept")
    with org.db.write() as conn:  # what the export job calls when its file is ready
        webhooks.emit(conn, org.id, project["id"], "export.ready", {"export": {"job_id": "j1", "format": "jsonl"}})
    found = deliveries(org.db, org.id)
    assert [d["event"] for d in found] == [
        "response.created",
        "task.completed",
        "batch.completed",
        "review.done",
        "export.ready",
    ]
    by_event = {d["event"]: d for d in found}
    assert by_event["response.created"]["payload"]["response"]["answer"] == ANSWER
    assert by_event["response.created"]["payload"]["response"]["worker_id"] == annotator.worker_id
    completed = by_event["task.completed"]["payload"]["task"]
    assert (completed["id"], completed["status"], completed["answer"]) == (task["id"], "completed", ANSWER)
    assert by_event["batch.completed"]["payload"]["batch"]["id"] == batch["id"]
    assert by_event["review.done"]["payload"]["review"]["verdict"] == "accept"
    assert {d["subscription_id"] for d in found} == {webhook["id"]}
    assert all(d["status"] == "pending" and d["project_id"] == project["id"] for d in found)
    # one delivery job each, in the outbox
    queued = delivery_jobs(org.db, org.id)
    assert sorted(job["payload"]["delivery_id"] for job in queued) == sorted(d["id"] for d in found)
    assert {d["job_id"] for d in found} == {job["id"] for job in queued}


def test_a_webhook_gets_only_its_events_and_its_project(org: Org, settings: Settings) -> None:
    mine, other = org.make_project(overlap=1), org.make_project(overlap=1)
    only_mine = subscribe(org, settings, events=["task.completed"], project_id=mine["id"])
    responses_only = subscribe(org, settings, events=["response.created"])
    inactive = subscribe(org, settings, events=EVERY_EVENT, active=False)
    for project in (mine, other):
        [task] = org.make_tasks(project["id"], 1)
        queue.submit(org.db, org.owner.principal, task["id"], ResponseCreate(answer=ANSWER))
    got = [(d["subscription_id"], d["event"], d["project_id"]) for d in deliveries(org.db, org.id)]
    assert sorted(got) == sorted(
        [
            (responses_only["id"], "response.created", mine["id"]),
            (only_mine["id"], "task.completed", mine["id"]),
            (responses_only["id"], "response.created", other["id"]),
        ]
    )
    assert inactive["id"] not in {row[0] for row in got}


def test_an_event_rolled_back_with_its_change_leaves_no_delivery(org: Org, settings: Settings) -> None:
    project = org.make_project()
    subscribe(org, settings)
    with pytest.raises(RuntimeError), org.db.write() as conn:
        webhooks.emit(conn, org.id, project["id"], "export.ready", {"export": {}})
        raise RuntimeError("the change failed")
    assert deliveries(org.db, org.id) == [] and delivery_jobs(org.db, org.id) == []


def test_an_organization_without_webhooks_writes_nothing(org: Org) -> None:
    project = org.make_project(overlap=1)
    [task] = org.make_tasks(project["id"], 1)
    queue.submit(org.db, org.owner.principal, task["id"], ResponseCreate(answer=ANSWER))
    assert deliveries(org.db, org.id) == [] and delivery_jobs(org.db, org.id) == []


# --- subscriptions ---------------------------------------------------------------------------------


def test_the_url_passes_the_guard_when_made_and_changed(org: Org, settings: Settings) -> None:
    strict = Settings(data_dir=settings.data_dir)
    with pytest.raises(OutboundRefused) as caught:
        subscribe(org, strict, url="http://127.0.0.1:9/hook")
    assert caught.value.details["rule"] == "loopback"
    webhook = subscribe(org, strict)
    with pytest.raises(OutboundRefused, match="link-local"):
        webhooks.update_webhook(
            org.db, strict, org.owner.principal, webhook["id"], WebhookUpdate(url="http://[fe80::1]/x")
        )
    assert webhooks.get_webhook(org.db, org.owner.principal, webhook["id"])["url"] == PUBLIC_URL


def test_the_secret_is_shown_once_and_stored_sealed(org: Org, settings: Settings) -> None:
    webhook = subscribe(org, settings)
    secret = webhook["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert "secret" not in webhooks.get_webhook(org.db, org.owner.principal, webhook["id"])
    assert all("secret" not in w for w in webhooks.list_webhooks(org.db, org.owner.principal)[0])
    with org.db.read() as conn:
        stored = repo_row(conn, webhook["id"])["secret"]
    assert secret not in stored and stored.startswith("v1:")
    assert webhooks.unseal(settings, org.id, webhook["id"], stored) == secret
    # bound to its row: the same sealed value does not open as another webhook's
    with pytest.raises(webhooks.SecretUnreadable):
        webhooks.unseal(settings, org.id, "f" * 24, stored)
    # and to the key: another key file does not open it
    with pytest.raises(webhooks.SecretUnreadable):
        webhooks.unseal(Settings(data_dir=settings.data_dir / "elsewhere"), org.id, webhook["id"], stored)
    key_file = settings.data_dir / "webhook-secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    rotated = webhooks.rotate_secret(org.db, settings, org.owner.principal, webhook["id"])
    assert rotated["secret"] != secret and rotated["secret_rotated_at"] is not None


def repo_row(conn: Any, webhook_id: str) -> dict[str, Any]:
    query = select(t.webhook_subscriptions).where(t.webhook_subscriptions.c.id == webhook_id)
    return dict(conn.execute(query).mappings().one())


def test_only_managers_and_up_manage_webhooks(org: Org, settings: Settings) -> None:
    webhook = subscribe(org, settings)
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        principal = org.principal_for(role)
        with pytest.raises(Forbidden):
            webhooks.list_webhooks(org.db, principal)
        with pytest.raises(Forbidden):
            webhooks.get_webhook(org.db, principal, webhook["id"])
    assert webhooks.get_webhook(org.db, org.principal_for(Role.MANAGER), webhook["id"])["id"] == webhook["id"]


def test_another_organization_never_sees_webhooks_or_deliveries(org: Org, other_org: Org, settings: Settings) -> None:
    project = org.make_project(overlap=1)
    webhook = subscribe(org, settings)
    with org.db.write() as conn:
        [delivery_id] = webhooks.emit(conn, org.id, project["id"], "export.ready", {"export": {}})
    intruder = other_org.owner.principal
    attempts: list[Callable[[], Any]] = [
        lambda: webhooks.get_webhook(org.db, intruder, webhook["id"]),
        lambda: webhooks.update_webhook(org.db, settings, intruder, webhook["id"], WebhookUpdate(active=False)),
        lambda: webhooks.rotate_secret(org.db, settings, intruder, webhook["id"]),
        lambda: webhooks.delete_webhook(org.db, intruder, webhook["id"]),
        lambda: webhooks.list_deliveries(org.db, intruder, webhook["id"]),
        lambda: webhooks.get_delivery(org.db, intruder, delivery_id),
        lambda: webhooks.replay(org.db, intruder, delivery_id),
        # a webhook of the other organization cannot name this one's project
        lambda: subscribe(other_org, settings, project_id=project["id"]),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            attempt()
    assert webhooks.list_webhooks(org.db, intruder) == ([], None)
    # the other organization's events never reach this organization's webhooks
    other_project = other_org.make_project(overlap=1)
    [task] = other_org.make_tasks(other_project["id"], 1)
    queue.submit(other_org.db, intruder, task["id"], ResponseCreate(answer=ANSWER))
    assert [d["id"] for d in deliveries(org.db, org.id)] == [delivery_id]
    assert deliveries(org.db, other_org.id) == []
    assert webhooks.get_webhook(org.db, org.owner.principal, webhook["id"])["active"] is True


# --- deliveries to a real receiver -----------------------------------------------------------------


def test_the_receiver_verifies_signatures_and_sees_retries_after_500(
    org: Org, settings: Settings, runner: Runner
) -> None:
    project = org.make_project(overlap=1)
    with running(lambda request, n: Reply(500, b"busy") if n <= 2 else Reply(204, b"")) as receiver:
        webhook = subscribe(org, settings, url=f"{receiver.url}/hooks?team=1", events=["task.completed"])
        [task] = org.make_tasks(project["id"], 1)
        queue.submit(org.db, org.owner.principal, task["id"], ResponseCreate(answer=ANSWER))
        runner.start()
        seen = receiver.wait_for(3)
        [delivery] = wait_until(lambda: [d for d in deliveries(org.db, org.id) if d["status"] == "delivered"])
    for request in seen:
        body = verify(request, webhook["secret"])
        assert request.method == "POST" and request.path == "/hooks?team=1"
        assert request.headers["x-truthset-event"] == "task.completed"
        assert request.headers["x-truthset-delivery"] == delivery["id"]  # the same on every attempt
        assert request.headers["content-type"] == "application/json"
        assert body["id"] == delivery["id"] and body["event"] == "task.completed"
        assert body["data"]["task"]["id"] == task["id"] and body["data"]["task"]["answer"] == ANSWER
        assert body["organization_id"] == org.id and body["project_id"] == project["id"]
    assert len({request.body for request in seen}) == 1  # the same body on every attempt
    detail = webhooks.get_delivery(org.db, org.owner.principal, delivery["id"])
    assert [(a["attempt"], a["status_code"]) for a in detail["history"]] == [(1, 500), (2, 500), (3, 204)]
    assert [a["error"] for a in detail["history"]] == ["the receiver answered 500"] * 2 + [None]
    assert detail["attempts"] == 3 and detail["last_status_code"] == 204 and detail["delivered_at"] is not None
    [job] = delivery_jobs(org.db, org.id)
    assert job["attempts"] == 3
    wait_until(lambda: delivery_jobs(org.db, org.id)[0]["status"] == str(JobStatus.SUCCEEDED))


def test_past_the_retry_window_a_delivery_fails_and_a_replay_sends_it_again(org: Org, settings: Settings) -> None:
    no_window = settings.model_copy(update={"webhook_retry_window_seconds": 0})
    project = org.make_project()
    with running(lambda request, n: Reply(503) if n == 1 else Reply(200)) as receiver:
        webhook = subscribe(org, settings, url=receiver.url, events=["export.ready"])
        with org.db.write() as conn:
            [delivery_id] = webhooks.emit(conn, org.id, project["id"], "export.ready", {"export": {"n": 1}})
        failed = run_handler(org.db, no_window)
        assert isinstance(failed, JobFailed) and "retry window has ended" in str(failed)
        assert webhooks.get_delivery(org.db, org.owner.principal, delivery_id)["status"] == "failed"
        replayed = webhooks.replay(org.db, org.owner.principal, delivery_id)
        assert replayed["status"] == "pending"
        with pytest.raises(Exception, match="still pending"):
            webhooks.replay(org.db, org.owner.principal, delivery_id)
        assert run_handler(org.db, no_window)["status_code"] == 200
        first, second = receiver.wait_for(2)
    assert first.headers["x-truthset-delivery"] == second.headers["x-truthset-delivery"] == delivery_id
    assert first.body == second.body
    verify(second, webhook["secret"])
    detail = webhooks.get_delivery(org.db, org.owner.principal, delivery_id)
    assert detail["status"] == "delivered"
    assert [(a["attempt"], a["status_code"]) for a in detail["history"]] == [(1, 503), (2, 200)]


def test_a_runner_lost_mid_delivery_is_followed_by_a_second_post_with_the_same_delivery_id(
    org: Org, settings: Settings
) -> None:
    """At least once: the first runner's POST is under way when its lease runs out; another runner
    takes the job and delivers; the receiver sees two POSTs with one delivery id, and dedupes."""
    release_first = threading.Event()

    def answer(request: Request, n: int) -> Reply:
        if n == 1:
            release_first.wait(DEADLINE_S)  # the first runner hangs here (as good as killed)
        return Reply(200)

    project = org.make_project()
    with running(answer) as receiver:
        webhook = subscribe(org, settings, url=receiver.url, events=["export.ready"])
        with org.db.write() as conn:
            [delivery_id] = webhooks.emit(conn, org.id, project["id"], "export.ready", {"export": {"n": 1}})
        outcomes: list[Any] = []
        lost = threading.Thread(target=lambda: outcomes.append(run_handler(org.db, settings, "runner-1")))
        lost.start()
        receiver.wait_for(1)
        later = utcnow() + timedelta(seconds=120)  # its 60 s lease has run out
        assert run_handler(org.db, settings, "runner-2", now=later)["status_code"] == 200
        release_first.set()
        lost.join(DEADLINE_S)
        first, second = receiver.wait_for(2)
    assert first.headers["x-truthset-delivery"] == second.headers["x-truthset-delivery"] == delivery_id
    for request in (first, second):
        verify(request, webhook["secret"])
    detail = webhooks.get_delivery(org.db, org.owner.principal, delivery_id)
    assert detail["status"] == "delivered" and detail["attempts"] == 2
    # the lost runner's late answer is logged, and changes nothing
    assert outcomes == [{"delivery_id": delivery_id, "skipped": "the delivery changed meanwhile"}]
    [job] = delivery_jobs(org.db, org.id)
    assert job["attempts"] == 2


def test_the_guard_is_asked_again_at_every_attempt(org: Org, settings: Settings) -> None:
    project = org.make_project()
    with running() as receiver:
        subscribe(org, settings, url=receiver.url, events=["export.ready"])
        with org.db.write() as conn:
            [delivery_id] = webhooks.emit(conn, org.id, project["id"], "export.ready", {})
        refused = run_handler(org.db, Settings(data_dir=settings.data_dir, webhook_retry_base_seconds=0.01))
        assert isinstance(refused, RetryLater)
        assert receiver.requests == []
    [attempt] = webhooks.get_delivery(org.db, org.owner.principal, delivery_id)["history"]
    assert attempt["status_code"] is None and "127.0.0.1 is a loopback address" in attempt["error"]


def test_a_redirect_is_a_failed_attempt_not_followed(org: Org, settings: Settings) -> None:
    project = org.make_project()
    with running(lambda request, n: Reply(307, b"", {"Location": "/elsewhere"})) as receiver:
        subscribe(org, settings, url=receiver.url, events=["export.ready"])
        with org.db.write() as conn:
            webhooks.emit(conn, org.id, project["id"], "export.ready", {})
        assert isinstance(run_handler(org.db, settings), RetryLater)
        assert [r.path for r in receiver.requests] == ["/"]


def test_inactive_and_deleted_webhooks_send_nothing(org: Org, settings: Settings) -> None:
    project = org.make_project()
    with running() as receiver:
        kept = subscribe(org, settings, url=receiver.url, events=["export.ready"])
        doomed = subscribe(org, settings, url=receiver.url, events=["export.ready"])
        with org.db.write() as conn:
            first, second = webhooks.emit(conn, org.id, project["id"], "export.ready", {})
        webhooks.update_webhook(org.db, settings, org.owner.principal, kept["id"], WebhookUpdate(active=False))
        webhooks.delete_webhook(org.db, org.owner.principal, doomed["id"])
        outcomes = [run_handler(org.db, settings), run_handler(org.db, settings)]
        assert receiver.requests == []
    assert {o["skipped"] for o in outcomes} == {
        "the webhook is inactive",
        "the delivery is gone (its webhook was deleted)",
    }
    assert webhooks.get_delivery(org.db, org.owner.principal, first)["status"] == "failed"
    with pytest.raises(NotFound):
        webhooks.get_delivery(org.db, org.owner.principal, second)


def test_the_verification_snippet_in_the_docs_accepts_a_real_delivery_and_nothing_else(
    org: Org, settings: Settings
) -> None:
    [snippet] = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "docs/webhooks.md", "exec"), namespace)
    verify_truthset_webhook = namespace["verify_truthset_webhook"]
    project = org.make_project()
    with running() as receiver:
        webhook = subscribe(org, settings, url=receiver.url, events=["export.ready"])
        with org.db.write() as conn:
            webhooks.emit(conn, org.id, project["id"], "export.ready", {"export": {"format": "jsonl"}})
        assert run_handler(org.db, settings)["status_code"] == 200
        [request] = receiver.wait_for(1)
    event = verify_truthset_webhook(webhook["secret"], request.headers, request.body)
    assert event["event"] == "export.ready" and event["data"] == {"export": {"format": "jsonl"}}
    for secret, body in ((webhook["secret"], request.body.replace(b"jsonl", b"csv")), ("whsec_wrong", request.body)):
        with pytest.raises(ValueError, match="bad signature"):
            verify_truthset_webhook(secret, request.headers, body)
    stale = {**request.headers, "x-truthset-timestamp": str(int(request.headers["x-truthset-timestamp"]) - 3600)}
    with pytest.raises(ValueError, match="bad signature"):  # the timestamp is signed too
        verify_truthset_webhook(webhook["secret"], stale, request.body)
    old_timestamp = str(int(time.time()) - 3600)
    resigned = {**request.headers, "x-truthset-timestamp": old_timestamp}
    resigned["x-truthset-signature"] = webhooks.sign(webhook["secret"], old_timestamp, request.body)
    with pytest.raises(ValueError, match="timestamp too old"):
        verify_truthset_webhook(webhook["secret"], resigned, request.body)


def test_a_pending_delivery_is_replayed_only_once_its_job_is_over(org: Org, settings: Settings) -> None:
    project = org.make_project()
    subscribe(org, settings, events=["export.ready"])
    with org.db.write() as conn:
        [delivery_id] = webhooks.emit(conn, org.id, project["id"], "export.ready", {})
    with pytest.raises(Conflict) as conflict:
        webhooks.replay(org.db, org.owner.principal, delivery_id)
    assert conflict.value.code == "delivery_pending"
    [job] = delivery_jobs(org.db, org.id)
    jobs.cancel(org.db, org.owner.principal, job["id"])  # a manager canceled the delivery's job
    replayed = webhooks.replay(org.db, org.owner.principal, delivery_id)
    assert replayed["status"] == "pending" and replayed["job_id"] != job["id"]
    assert [j["status"] for j in delivery_jobs(org.db, org.id)] == ["canceled", "queued"]

"""Webhooks end to end: a real server (uvicorn on 127.0.0.1) whose in-process runner delivers to a
real receiver on 127.0.0.1; the SDK and `truthset webhooks` drive it; another organization sees
nothing of it."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import truthset
from receiver import Receiver, Reply, Request, running
from truthset import cli
from truthset.cli import app
from truthset.client import InvalidInputError, NotFoundError, PermissionDeniedError
from truthset.config import Settings
from truthset.services import accounts
from truthset.storage import Database, upgrade

from .conftest import LiveServer, serving

DEADLINE_S = 30.0
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}


@pytest.fixture(scope="module")
def answers() -> list[int]:
    """The statuses the receiver answers, in order (then 200): set by each test."""
    return []


@pytest.fixture(scope="module")
def receiver(answers: list[int]) -> Iterator[Receiver]:
    def answer(request: Request, n: int) -> Reply:
        return Reply(answers.pop(0) if answers else 200)

    with running(answer) as started:
        yield started


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A live server allowed to reach 127.0.0.1, delivering webhooks in process, retrying at once.
    Yields the server (owner's key) and a second organization's owner key."""
    data_dir = tmp_path_factory.mktemp("hooked")
    settings = Settings(
        data_dir=data_dir, outbound_allow="127.0.0.1", webhook_retry_base_seconds=0.01, webhook_retry_max_seconds=0.02
    )
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    created = accounts.init_organization(db, "Acme", "owner@acme.example")
    other = accounts.init_organization(db, "Globex", "owner@globex.example")
    try:
        with serving(settings, db, ["webhook.deliver"], "hooked") as url:
            yield LiveServer(url=url, api_key=created["api_key"], data_dir=data_dir), other["api_key"]
    finally:
        db.dispose()


def _verified(request: Request, secret: str) -> dict[str, Any]:
    timestamp = request.headers["x-truthset-timestamp"]
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-truthset-signature"] == f"v1={digest}"
    return json.loads(request.body)


def _cli(live: LiveServer, *args: str, api_key: str | None = None) -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "console", Console(width=250))
        result = CliRunner().invoke(app, [*args, "--url", live.url, "--api-key", api_key or live.api_key])
    text = " ".join(result.output.split())
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += f" {type(result.exception).__name__}: {result.exception}"
    return result.exit_code, text


def test_sdk_submit_to_signed_delivery_with_a_retry(
    hooked: tuple[LiveServer, str], receiver: Receiver, answers: list[int]
) -> None:
    live, other_key = hooked
    answers[:] = [500]  # the first POST fails: the receiver sees it again
    before = len(receiver.requests)
    with live.client() as client:
        project = client.projects.create("hooked", SPEC, overlap=1)
        hook = client.webhooks.create(f"{receiver.url}/in", ["task.completed"], project_id=project.id)
        task = client.tasks.create(project.id, {"text": "lovely"})
        client.queue.submit(task.id, {"sentiment": "positive"})
        first, second = receiver.wait_for(before + 2)[before:]
        for request in (first, second):
            body = _verified(request, hook.secret)
            assert body["event"] == "task.completed" and body["data"]["task"]["id"] == task.id
            assert request.headers["x-truthset-delivery"] == body["id"]
        assert first.headers["x-truthset-delivery"] == second.headers["x-truthset-delivery"]
        [delivery] = _wait_delivered(client, hook.id)
        history = client.webhooks.delivery(delivery.id).history
        assert [(a.attempt, a.status_code) for a in history] == [(1, 500), (2, 200)]
        with pytest.raises(InvalidInputError) as refused:
            client.webhooks.create("http://10.0.0.5/hook", ["task.completed"])
        assert refused.value.code == "url_refused" and refused.value.details["rule"] == "private"
    # another organization: none of it exists
    with live.client(other_key) as intruder:
        assert list(intruder.webhooks.list()) == []
        for call in (
            lambda: intruder.webhooks.get(hook.id),
            lambda: intruder.webhooks.deliveries(hook.id).__next__(),
            lambda: intruder.webhooks.delivery(delivery.id),
            lambda: intruder.webhooks.replay(delivery.id),
            lambda: intruder.webhooks.delete(hook.id),
        ):
            with pytest.raises(NotFoundError):
                call()


def _wait_delivered(client: truthset.Client, webhook_id: str) -> list[Any]:
    pause = threading.Event()
    for _ in range(int(DEADLINE_S / 0.02)):
        found = list(client.webhooks.deliveries(webhook_id, status="delivered"))
        if found:
            return found
        pause.wait(0.02)
    raise AssertionError("no delivery was delivered in time")


def test_webhooks_commands(hooked: tuple[LiveServer, str], receiver: Receiver) -> None:
    live, other_key = hooked
    code, output = _cli(live, "webhooks", "create", f"{receiver.url}/cli", "--event", "review.done")
    assert code == 0, output
    webhook = json.loads(output[output.index("{") : output.rindex("}") + 1])
    assert webhook["secret"].startswith("whsec_") and webhook["events"] == ["review.done"]
    code, output = _cli(live, "webhooks", "list")
    assert code == 0 and webhook["id"] in output and "review.done" in output, output
    code, output = _cli(live, "webhooks", "create", "http://169.254.169.254/", "--event", "review.done")
    assert code == 1 and "url_refused" in output and "link-local" in output, output
    with live.client() as client:  # a review: its delivery goes out, then the CLI replays it
        project = client.projects.create("cli hooks", SPEC, overlap=1)
        task = client.tasks.create(project.id, {"text": "fine"})
        member = client.members.add("rev@acme.example", role="reviewer")
        key = client.keys.create("rev", member_id=member.id).key
        client.queue.submit(task.id, {"sentiment": "negative"})
        with live.client(key) as reviewer:
            reviewer.reviews.accept(task.id)
        [delivery] = _wait_delivered(client, webhook["id"])
        with live.client(key) as reviewer, pytest.raises(PermissionDeniedError):
            reviewer.webhooks.list().__next__()
    code, output = _cli(live, "webhooks", "deliveries", webhook["id"])
    assert code == 0 and delivery.id in output and "delivered" in output and "review.done" in output, output
    before = len(receiver.requests)
    code, output = _cli(live, "webhooks", "replay", delivery.id)
    assert code == 0 and "pending" in output, output
    replayed = receiver.wait_for(before + 1)[-1]
    assert replayed.headers["x-truthset-delivery"] == delivery.id
    assert _verified(replayed, webhook["secret"])["data"]["review"]["verdict"] == "accept"
    code, output = _cli(live, "webhooks", "replay", delivery.id, api_key=other_key)
    assert code == 1 and "404" in output, output
    code, output = _cli(live, "webhooks", "rotate-secret", webhook["id"])
    assert code == 0 and output.startswith("whsec_") and output != webhook["secret"], output
    code, output = _cli(live, "webhooks", "delete", webhook["id"])
    assert code == 0 and "deleted" in output, output
    with live.client() as client, pytest.raises(NotFoundError):
        client.webhooks.get(webhook["id"])

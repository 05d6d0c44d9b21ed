"""The webhook pages in a real browser against a real ``truthset serve`` (its in-process job runner
delivers): an owner subscribes a receiver on 127.0.0.1 from the project page, an export causes an
``export.ready`` event, the delivery and its attempt show, a replay sends it again; an annotator
gets a 403 page.

This module runs its own server: the shared one refuses 127.0.0.1 as a webhook target (as it should),
while this one allows it (``TRUTHSET_OUTBOUND_ALLOW``), as a test receiver needs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from receiver import running

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, log_in, outbound_server

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with outbound_server(tmp_path_factory.mktemp("e2e-webhooks"), "hooks-owner@example.com") as server:
        with server.api() as api:
            project = api.post("/projects", json={"name": "Hooked project", "spec": SPEC})
            assert project.status_code == 201, project.text
        yield {"url": server.url, "password": server.password, "key": server.key, "project_id": project.json()["id"]}


@pytest.fixture
def page(browser: Any, hooks_server: dict[str, Any]) -> Iterator[Any]:
    expect.set_options(timeout=10_000)
    context = browser.new_context(base_url=hooks_server["url"], viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _delivered(api: httpx.Client, webhook_id: str, attempts: int) -> dict[str, Any]:
    """The webhook's delivery once it is delivered after ``attempts`` attempts (the runner records the
    attempt just after the receiver answers): polled, bounded by a deadline, nothing timed."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        items = api.get(f"/webhooks/{webhook_id}/deliveries").json()["items"]
        if items and items[0]["status"] == "delivered" and items[0]["attempts"] >= attempts:
            return items[0]
        assert time.monotonic() < deadline, f"not delivered within {DEADLINE_S} s: {items}"
        time.sleep(0.1)


def test_an_owner_subscribes_sees_the_delivery_and_replays_it(page: Any, hooks_server: dict[str, Any]) -> None:
    project_id = hooks_server["project_id"]
    log_in(page, "hooks-owner@example.com", hooks_server["password"])
    page.goto(f"/projects/{project_id}")
    page.get_by_role("link", name="Webhooks", exact=True).last.click()
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Add a webhook for Hooked project")).to_be_visible()

    with running() as receiver:
        page.get_by_label("URL").fill(f"{receiver.url}/hook")
        page.get_by_label("task.completed").uncheck()
        page.get_by_label("export.ready").check()
        page.get_by_role("button", name="Add webhook").click()
        secret = page.get_by_role("textbox", name="Signing secret", exact=True)
        expect(secret).to_be_visible()
        assert secret.input_value().startswith("whsec_")
        row = page.locator("tr[data-webhook-id]")
        expect(row).to_have_count(1)
        webhook_id = row.get_attribute("data-webhook-id")

        headers = {"Authorization": f"Bearer {hooks_server['key']}"}
        with httpx.Client(base_url=f"{hooks_server['url']}/api/v1", headers=headers, timeout=10) as api:
            started = api.post(f"/projects/{project_id}/exports", json={"format": "jsonl"})
            assert started.status_code == 202, started.text
            receiver.wait_for(1)
            delivery = _delivered(api, str(webhook_id), 1)

            page.get_by_role("link", name=f"Deliveries of the webhook to {receiver.url}/hook").click()
            delivery_row = page.locator(f'tr[data-delivery-id="{delivery["id"]}"]')
            expect(delivery_row).to_contain_text("export.ready")
            expect(delivery_row).to_contain_text("delivered")
            expect(delivery_row).to_contain_text("200")

            page.get_by_role("button", name=f"Replay delivery {delivery['id']}").click()
            expect(page.get_by_text("The delivery is queued again")).to_be_visible()
            second = receiver.wait_for(2)[1]
            assert second.headers["x-truthset-delivery"] == delivery["id"]
            _delivered(api, str(webhook_id), 2)

        page.goto(f"/webhooks/deliveries/{delivery['id']}")
        attempts = page.locator("table.attempts-table tbody tr")
        expect(attempts).to_have_count(2)
        expect(attempts.nth(1)).to_contain_text("200")

    page.goto(f"/webhooks/{webhook_id}")
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.get_by_role("heading", name="Delete this webhook?")).to_be_visible()
    page.get_by_role("button", name="Delete webhook").click()
    expect(page.get_by_text("is deleted")).to_be_visible()
    expect(page.locator("tr[data-webhook-id]")).to_have_count(0)


def test_an_annotator_gets_a_403_page(page: Any, hooks_server: dict[str, Any]) -> None:
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks")).to_have_count(0)
    response = page.goto("/webhooks")
    assert response is not None and response.status == 403
    expect(page.get_by_text("Not allowed")).to_be_visible()

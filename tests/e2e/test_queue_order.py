"""The project page's Queue order card end to end (a real server with its job runner, a real
Chromium): a manager switches the ordering to model uncertainty, re-ranks, and the task the model is
least sure of heads the queue; stored state is checked through the REST API."""

from __future__ import annotations

import uuid

import pytest

from .support import Server, Tab, log_in

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}


def test_a_manager_orders_the_queue_by_uncertainty(tab: Tab, server: Server) -> None:
    page = tab.page
    with server.api() as client:
        made = client.post("/projects", json={"name": f"queue {uuid.uuid4().hex[:6]}", "spec": SPEC})
        assert made.status_code == 201, made.text
        pid = made.json()["id"]
        tasks = [{"data": {"text": f"animal {i}"}, "unique_id": f"q-{uuid.uuid4().hex[:8]}"} for i in range(3)]
        imported = client.post(f"/projects/{pid}/tasks/bulk", json=tasks)
        assert imported.status_code in (200, 201), imported.text
        listed = client.get("/tasks", params={"project_id": pid}).json()["items"]
        ids = sorted(task["id"] for task in listed)
        scores = dict(zip(ids, (0.95, 0.55, 0.8), strict=True))
        items = [{"task_id": i, "question": "animal", "answer": "cat", "score": s} for i, s in scores.items()]
        body = {"model": "clf", "version": "1", "predictions": items}
        assert client.post(f"/projects/{pid}/predictions", json=body).status_code in (200, 201)

    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{pid}")
    card = page.locator("#queue-card")
    expect(card).to_have_attribute("data-state", "ready")
    expect(page.get_by_label("Ordering")).to_have_value("priority")
    expect(page.locator("#queue-ordering-caution")).to_be_hidden()
    expect(card.locator("tbody tr")).to_have_count(3)
    page.get_by_label("Ordering").select_option("uncertainty")
    expect(page.locator("#queue-ordering-caution")).to_be_hidden()  # untouched tasks stay oldest first
    page.get_by_label("Ordering").select_option("model_uncertainty")
    expect(page.locator("#queue-ordering-caution")).to_contain_text("does not learn from this project")
    page.get_by_role("button", name="Save ordering").click()
    expect(page.locator("#queue-status")).to_contain_text("model_uncertainty")
    page.get_by_role("button", name="Re-rank now").click()
    expect(page.locator("#queue-status")).to_contain_text("Re-ranked", timeout=30_000)
    first = card.locator("tbody tr").first
    expect(first.locator("a")).to_have_attribute("href", f"/tasks/{ids[1]}")  # the least certain first
    with server.api() as client:
        assert client.get(f"/projects/{pid}").json()["quality"]["ordering"] == "model_uncertainty"
        queue = client.get(f"/projects/{pid}/queue").json()["items"]
        assert [task["id"] for task in queue] == [ids[1], ids[2], ids[0]]
    assert tab.script_errors() == []

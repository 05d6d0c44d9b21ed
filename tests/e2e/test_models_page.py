"""The Models page in a real browser against a real ``truthset serve`` (its in-process job runner):
a manager opens it from the project page, trains the built-in model with "Train now", follows the
job and sees the version with its metrics, the learning curve and the new model worker appear; an
annotator gets 403 on the page and sees no link to it. Stored state is checked through the API."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "a long models password 1"
SPEC = {
    "fields": [{"name": "review", "type": "text", "label": "Review"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
GOLD, WAITING = 40, 10
SCREENSHOTS = Path(os.environ["TRUTHSET_E2E_SCREENSHOTS"]) if os.environ.get("TRUTHSET_E2E_SCREENSHOTS") else None


def _words(i: int) -> tuple[str, str]:
    """A review whose words say its sentiment plainly (the model must be able to learn it)."""
    if i % 2 == 0:
        return f"lovely great wonderful soup, kind staff {i}", "positive"
    return f"awful terrible cold soup, rude staff {i}", "negative"


def _project(server: Server) -> str:
    """A project with GOLD gold tasks (the training labels) and WAITING tasks to predict."""
    with server.api() as owner:
        project = owner.post("/projects", json={"name": f"Models {uuid.uuid4().hex[:6]}", "spec": SPEC}).json()
        rows = [{"data": {"review": _words(i)[0]}, "unique_id": f"m-{i}"} for i in range(GOLD + WAITING)]
        imported = owner.post(f"/projects/{project['id']}/tasks/bulk", json=rows)
        assert imported.status_code in (200, 201), imported.text
        listed = owner.get("/tasks", params={"project_id": project["id"], "limit": 100}).json()["items"]
        by_unique = {task["unique_id"]: task["id"] for task in listed}
        for i in range(GOLD):
            answer = {"answer": {"sentiment": _words(i)[1]}}
            marked = owner.put(f"/tasks/{by_unique[f'm-{i}']}/gold", json=answer)
            assert marked.status_code == 200, marked.text
    return str(project["id"])


def _manager(server: Server) -> dict[str, Any]:
    email = f"manager-{uuid.uuid4().hex[:8]}@example.com"
    with server.api() as client:
        made = client.post("/members", json={"email": email, "role": "manager", "password": PASSWORD, "name": "Mo"})
        assert made.status_code == 201, made.text
    body = made.json()
    return body.get("member", body)


def test_a_manager_trains_from_the_models_page_and_an_annotator_is_refused(
    tab: Tab, server: Server, browser: Any
) -> None:
    page = tab.page
    project_id = _project(server)
    manager = _manager(server)
    log_in(page, manager["email"], PASSWORD)
    page.goto(f"/projects/{project_id}")
    page.get_by_role("link", name="Models").click()
    page.wait_for_url(f"**/projects/{project_id}/models")
    expect(page.locator("#versions-empty")).to_be_visible()

    page.get_by_role("region", name="Built-in text model").get_by_label("Question").select_option("sentiment")
    page.get_by_role("button", name="Train now").click()
    rows = page.locator("#versions-table tbody tr")
    expect(rows).to_have_count(1, timeout=60_000)  # the job ran, and the page reloaded with its version
    expect(rows.first.locator('[data-cell="accuracy"]')).to_have_text(re.compile(r"^\d+\.\d%$"))
    # every label is gold here: the accuracy on verified labels is measured on all of them
    expect(rows.first.locator('[data-cell="verified"]')).to_have_text(re.compile(rf"^\d+\.\d% on {GOLD}$"))
    expect(rows.first.locator('[data-cell="labels"]')).to_contain_text(f"{GOLD} (gold {GOLD}")
    expect(page.locator("#curve-charts canvas").first).to_be_visible()  # the learning curve, one point
    worker = page.locator("#model-workers tbody tr")
    expect(worker).to_have_count(1)
    expect(worker.first).to_contain_text("truthset-text@")
    # the waiting tasks' predictions, and each gold task's out-of-fold one: graded on gold, the
    # version's gold accuracy is what its evaluation measured on those tasks
    expect(worker.first.locator('[data-cell="answers"]')).to_have_text(str(GOLD + WAITING))
    verified = rows.first.locator('[data-cell="verified"]').inner_text().split(" on ")[0]
    gold_cell = worker.first.locator('[data-cell="gold"]')
    expect(gold_cell).to_have_text(re.compile(rf"^{re.escape(verified)} \(.*\) on {GOLD}$"))

    with server.api() as owner:
        (stored,) = owner.get(f"/projects/{project_id}/models").json()["items"]
    assert stored["metrics"]["n_examples"] == GOLD and stored["metrics"]["labels"]["gold"] == GOLD
    expect(rows.first).to_have_attribute("data-version", stored["version"])
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "models-page.png"), full_page=True)

    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800})
    try:
        annotator = context.new_page()
        log_in(annotator, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
        response = annotator.goto(f"/projects/{project_id}/models")
        assert response is not None and response.status == 403
        expect(annotator.get_by_role("heading", name="Not allowed")).to_be_visible()
        annotator.goto("/")
        expect(annotator.locator(f'a[href="/projects/{project_id}/models"]')).to_have_count(0)
    finally:
        context.close()
    assert tab.script_errors() == []

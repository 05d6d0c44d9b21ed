"""The task browser end to end (a real server, a real Chromium): a manager finds a task by a metadata
filter and by a search word, opens it, and sets the priority of a selection after confirming; an
annotator gets 403. Stored state is checked through the REST API."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in

#: Set TRUTHSET_E2E_SCREENSHOTS=<dir> to keep screenshots of the pages for a look.
SCREENSHOTS = Path(os.environ["TRUTHSET_E2E_SCREENSHOTS"]) if os.environ.get("TRUTHSET_E2E_SCREENSHOTS") else None

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "a long test password 1"
SPEC = {
    "fields": [{"name": "review", "type": "text", "label": "Review"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"tasks-{name}.png"), full_page=True)


def _manager(server: Server) -> str:
    email = f"manager-{uuid.uuid4().hex[:8]}@example.com"
    with server.api() as client:
        made = client.post("/members", json={"email": email, "role": "manager", "password": PASSWORD, "name": "Mona"})
        assert made.status_code == 201, made.text
    return email


def _project(server: Server) -> tuple[str, list[dict[str, Any]]]:
    """A project of 6 tasks: one in German with the word "zeppelin", the others in English."""
    texts = ["a sunny day", "rainy again", "the zeppelin flies", "cold coffee", "warm tea", "late train"]
    with server.api() as client:
        project = client.post("/projects", json={"name": f"Browser {uuid.uuid4().hex[:6]}", "spec": SPEC}).json()
        items = [
            {"data": {"review": text}, "unique_id": f"r{i}", "metadata": {"lang": "de" if i == 2 else "en"}}
            for i, text in enumerate(texts)
        ]
        made = client.post(f"/projects/{project['id']}/tasks/bulk", json=items)
        assert made.status_code == 200, made.text
        tasks = client.get("/tasks", params={"project_id": project["id"]}).json()["items"]
    return project["id"], tasks


def test_a_manager_filters_searches_opens_and_sets_priority(tab: Tab, server: Server) -> None:
    page = tab.page
    project_id, tasks = _project(server)
    log_in(page, _manager(server), PASSWORD)
    page.goto(f"/projects/{project_id}")
    page.get_by_role("link", name="Browse tasks").click()
    page.wait_for_url(f"**/projects/{project_id}/tasks")
    rows = page.locator("#task-table tbody tr")
    expect(rows).to_have_count(6)
    _shot(page, "all")

    # by metadata
    page.get_by_label("Metadata").fill("lang=de")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("zeppelin")

    # a malformed filter is refused next to its field
    page.get_by_label("Metadata").fill("lang")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#err-meta")).to_contain_text("key=value")
    expect(page.get_by_label("Metadata")).to_have_attribute("aria-invalid", "true")

    # by a search word, then open it: the task page, its data drawn as the worker saw it
    page.get_by_label("Metadata").fill("")
    page.get_by_label("Search the data").fill("zeppelin")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(1)
    _shot(page, "search")
    rows.first.get_by_role("link").click()
    page.wait_for_url(lambda url: "/tasks/" in url and "/projects/" not in url.split("?")[0])
    expect(page.locator('#task-data [data-field="review"]')).to_contain_text("the zeppelin flies")
    _shot(page, "task")
    page.locator('a[data-link="back"]').first.click()
    page.wait_for_url(lambda url: f"/projects/{project_id}/tasks?q=zeppelin" in url)
    expect(rows).to_have_count(1)

    # a selection's priority, after confirming (and nothing changes when the manager keeps them)
    page.goto(f"/projects/{project_id}/tasks?meta=lang%3Den")
    expect(rows).to_have_count(5)
    chosen = [rows.nth(0), rows.nth(1)]
    for row in chosen:
        row.get_by_role("checkbox").check()
    expect(page.locator("#selection-status")).to_have_text("2 tasks selected on this page.")
    page.get_by_label("Action", exact=True).select_option("set_priority")
    page.get_by_label("Priority", exact=True).fill("7")
    page.get_by_role("button", name="Apply…").click()
    dialog = page.locator("#bulk-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("2 selected tasks to 7")
    _shot(page, "confirm")
    dialog.get_by_role("button", name="Apply").click()
    expect(page.locator("#selection-status")).to_contain_text("2 priority set, 0 skipped")
    chosen_ids = {tasks[0]["id"], tasks[1]["id"]}
    with server.api() as client:
        stored = {
            t["id"]: t["priority"] for t in client.get("/tasks", params={"project_id": project_id}).json()["items"]
        }
    assert {task_id for task_id, priority in stored.items() if priority == 7} == chosen_ids
    page.get_by_label("Sort").select_option(label="Highest priority")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(lambda url: "sort=-priority" in url)
    expect(rows).to_have_count(5)
    assert {rows.nth(0).get_attribute("data-task-id"), rows.nth(1).get_attribute("data-task-id")} == chosen_ids

    # every task matching the filter: counted first
    page.get_by_role("button", name="Select all tasks matching the filter").click()
    expect(page.locator("#selection-status")).to_have_text("5 tasks matching the filter selected.")
    page.get_by_label("Action", exact=True).select_option("cancel")
    page.get_by_role("button", name="Apply…").click()
    dialog.get_by_role("button", name="Keep them as they are").click()
    with server.api() as client:
        assert {t["status"] for t in client.get("/tasks", params={"project_id": project_id}).json()["items"]} == {
            "pending"
        }
    assert tab.script_errors() == []


def test_an_annotator_gets_403_on_the_browser(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    response = page.goto(f"/projects/{server.demo_project_id}/tasks")
    assert response is not None and response.status == 403
    expect(page.locator("main")).to_contain_text("Not allowed")
    _shot(page, "annotator-403")

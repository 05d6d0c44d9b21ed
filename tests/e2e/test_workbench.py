"""The web UI end to end: a real server process, a real headless Chromium, keyboard only where a
worker would use the keyboard. Answers are checked through the REST API, not through the page."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in

#: Set TRUTHSET_E2E_SCREENSHOTS=<dir> to keep screenshots of the pages for a look.
SCREENSHOTS = Path(os.environ["TRUTHSET_E2E_SCREENSHOTS"]) if os.environ.get("TRUTHSET_E2E_SCREENSHOTS") else None

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def open_workbench(page: Any, project_id: str) -> str:
    """Open the workbench; return the id of the task on screen."""
    page.goto(f"/projects/{project_id}/label")
    form = page.locator("form#task")
    expect(form).to_be_visible()
    return str(form.get_attribute("data-task"))


def next_task_shown(page: Any, previous_task: str) -> str:
    form = page.locator("form#task")
    expect(form).to_be_visible()
    expect(form).not_to_have_attribute("data-task", previous_task)
    return str(form.get_attribute("data-task"))


def test_sign_in_failure_says_nothing_about_the_email(tab: Tab, server: Server) -> None:
    page = tab.page
    for email in (server.owner_email, "nobody@example.com"):
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("not the password")
        with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as sent:
            page.get_by_role("button", name="Sign in").click()
        assert sent.value.status == 401
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
        expect(page.get_by_label("Email")).to_have_value(email)
    assert tab.script_errors() == []


def test_pages_send_a_strict_content_security_policy(tab: Tab, server: Server) -> None:
    page = tab.page
    response = page.goto("/login")
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    log_in(page, server.owner_email, server.owner_password)
    response = page.goto(f"/projects/{server.demo_project_id}/label")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("form#task")).to_be_visible()
    # the Markdown instructions are rendered, and raw HTML in them is shown as text
    expect(page.locator(".instructions h1")).to_have_text("Tone and topics")
    assert tab.script_errors() == []


def test_annotator_labels_with_the_keyboard_skips_reloads_and_survives_going_offline(tab: Tab, server: Server) -> None:
    page, context = tab.page, tab.context
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    project = page.locator(f'li.project[data-project-id="{server.demo_project_id}"]')
    expect(project.get_by_role("link", name="Start labeling")).to_be_visible()
    expect(project.get_by_role("link", name="Export JSONL")).to_have_count(0)  # managers only

    first = open_workbench(page, server.demo_project_id)

    # 1. answer with the keyboard only: 1 = positive (then the next question), 1 toggles "quality",
    #    n moves on, 4 rates (then the next question: the summary box), type, Enter submits
    page.keyboard.press("1")
    page.keyboard.press("1")
    page.keyboard.press("n")
    page.keyboard.press("4")
    expect(page.locator('[data-question="summary"] input')).to_be_focused()
    page.keyboard.type("Loves it")
    page.keyboard.press("Enter")
    second = next_task_shown(page, first)
    expect(page.locator("#progress")).to_have_text("1 answered this session")
    expect(page.locator("#sync")).to_have_text("All answers saved")
    [stored] = server.responses(first)
    assert stored["answer"] == {
        "sentiment": "positive",
        "topics": ["economy"],
        "concreteness": 4,
        "summary": "Loves it",
    }

    # 2. skip with "s": nothing is stored, the next task comes
    page.keyboard.press("s")
    third = next_task_shown(page, second)
    expect(page.locator("#progress")).to_contain_text("1 skipped")
    assert server.responses(second) == []

    # 3. a draft survives a reload: the same task comes back with the answer so far
    page.keyboard.press("2")  # neutral
    expect(page.locator("#draft")).to_have_text("Draft saved in this browser")
    page.reload()
    expect(page.locator("form#task")).to_have_attribute("data-task", third)
    expect(page.locator('[data-question="sentiment"] input[value="neutral"]')).to_be_checked()
    expect(page.locator("#draft")).to_have_text("Draft restored")

    # 4. offline: the answer goes to the outbox, the (prefetched) next task is shown at once
    context.set_offline(True)
    expect(page.locator('[data-question="concreteness"]')).to_be_focused()  # the first unanswered question
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    next_task_shown(page, third)
    sync = page.locator("#sync")
    expect(sync).to_have_text("Offline — 1 answer waiting")
    assert server.responses(third) == []

    # 5. back online: the outbox flushes, and exactly one response is stored
    context.set_offline(False)
    expect(sync).to_have_text("All answers saved", timeout=20_000)
    [stored] = server.responses(third)
    assert stored["answer"]["sentiment"] == "neutral"
    assert stored["answer"]["concreteness"] == 3
    assert tab.script_errors() == []


def test_required_answers_and_api_validation_errors_show_next_to_the_question(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    task = open_workbench(page, server.demo_project_id)
    page.keyboard.press("Enter")  # nothing answered yet
    error = page.locator('[data-question="sentiment"] .q-error')
    expect(error).to_have_text("An answer is required.")
    expect(page.locator('[data-question="sentiment"]')).to_be_focused()
    # a 422 from the API lands next to its question: the single-line summary gets a line break
    page.keyboard.press("3")
    page.keyboard.press("n")
    page.keyboard.press("5")
    page.evaluate(
        """() => {
            const input = document.querySelector('[data-question="summary"] input');
            Object.defineProperty(input, 'value', { get: () => 'line one\\nline two', configurable: true });
        }"""
    )
    page.keyboard.press("Enter")
    expect(page.locator('[data-question="summary"] .q-error')).to_have_text("must be a single line")
    expect(page.locator("form#task")).to_have_attribute("data-task", task)
    assert server.responses(task) == []
    assert tab.script_errors() == []


def test_release_gives_the_task_back(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    task = open_workbench(page, server.demo_project_id)
    page.keyboard.press("r")
    expect(page.get_by_role("heading", name="Task given back")).to_be_visible()
    expect(page.get_by_role("button", name="Continue labeling")).to_be_focused()
    with server.api() as client:
        assert client.get(f"/tasks/{task}").json()["status"] == "pending"
    page.keyboard.press("Enter")
    expect(page.locator("form#task")).to_be_visible()
    assert tab.script_errors() == []


def test_every_field_type_is_shown_safely(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    task = open_workbench(page, server.fields_project_id)
    # text is text, never markup
    expect(page.locator('[data-field="title"] .text-value')).to_have_text("<img src=x onerror=alert(1)> & friends")
    expect(page.locator('[data-field="title"] img')).to_have_count(0)
    # the image loads (http URL)
    image = page.locator('[data-field="picture"] img')
    expect(image).to_have_attribute("src", f"{server.url}/static/favicon.svg")
    page.wait_for_function("() => document.querySelector('[data-field=\"picture\"] img').naturalWidth > 0")
    # html: in a sandboxed iframe, rendered, its script never runs
    frame = page.locator('[data-field="page"] iframe')
    expect(frame).to_have_attribute("sandbox", "")
    expect(page.frame_locator('[data-field="page"] iframe').locator("h1")).to_have_text("Hello")
    assert page.title() != "pwned"
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / "fields.png"), full_page=True)
    # responses: a list, with the model named
    expect(page.locator('[data-field="answers"] li')).to_have_count(2)
    expect(page.locator('[data-field="answers"] li').first).to_contain_text("model-a")
    # instructions: Markdown rendered, raw HTML escaped
    expect(page.locator(".instructions em")).to_have_text("everything")
    expect(page.locator(".instructions")).to_contain_text("<script>alert('instructions')</script>")
    # the question prompt is Markdown too
    expect(page.locator('[data-question="better"] .prompt strong')).to_have_text("better")
    # answering the project's only task empties the queue
    page.keyboard.press("2")
    # the multi-line box becomes the active question, but the caret does not jump in: Tab enters it
    expect(page.locator('[data-question="notes"]')).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator('[data-question="notes"] textarea')).to_be_focused()
    page.keyboard.type("Both say Paris.")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("heading", name="No more tasks")).to_be_visible()
    expect(page.get_by_role("button", name="Check again")).to_be_focused()
    [stored] = server.responses(task)
    assert stored["answer"] == {"better": "B", "notes": "Both say Paris."}
    # the sandbox refuses the iframe's script: that is the one console error expected here
    assert tab.script_errors(allow=("Blocked script execution",)) == []


def test_annotator_cannot_open_manager_pages(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    response = page.goto(f"/projects/{server.demo_project_id}")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    export = page.request.get(f"/api/v1/projects/{server.demo_project_id}/export")
    assert export.status == 403


def test_manager_sees_counts_batches_and_exports(tab: Tab, server: Server) -> None:
    page = tab.page
    with server.api() as client:
        batch = client.post(f"/projects/{server.demo_project_id}/batches", json={"name": "week 1"}).json()
        client.post(
            f"/projects/{server.demo_project_id}/tasks",
            json={"data": {"speech": "A speech", "excerpt": "Fine."}, "batch_id": batch["id"]},
        ).raise_for_status()
    log_in(page, server.owner_email, server.owner_password)
    project = page.locator(f'li.project[data-project-id="{server.demo_project_id}"]')
    expect(project.locator('[data-count="pending"]')).to_have_text(re.compile(r"^\d+$"))
    link = project.get_by_role("link", name="Export JSONL")
    href = link.get_attribute("href")
    assert href == f"/api/v1/projects/{server.demo_project_id}/export"
    exported = page.request.get(href)  # the session cookie authenticates the download
    assert exported.status == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    page.goto(f"/projects/{server.demo_project_id}")
    expect(page.get_by_role("row", name=re.compile("week 1"))).to_contain_text("open")
    assert tab.script_errors() == []


def test_session_cookie_is_httponly_and_api_writes_need_the_csrf_token(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    [cookie] = [c for c in tab.context.cookies() if c["name"] == "truthset_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("truthset_session") == -1
    without = page.request.post(f"/api/v1/projects/{server.demo_project_id}/next")
    assert without.status == 403
    assert without.json()["error"]["code"] == "csrf_failed"
    page.goto("/")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    with_token = page.request.post(f"/api/v1/projects/{server.demo_project_id}/next", headers={"X-CSRF-Token": token})
    assert with_token.status in (200, 204)
    # signing out ends the session everywhere
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.request.get("/api/v1/me").status == 401
    assert httpx.get(f"{server.url}/api/v1/me", cookies={"truthset_session": cookie["value"]}).status_code == 401

"""The reviewer workbench end to end: a real server process, a real headless Chromium, the keyboard.

Tasks are answered by the annotator through the REST API; the owner (reviewer and above) reviews them
in the browser; verdicts are checked through the REST API, not through the page.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "text", "type": "text", "label": "Text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}


def _annotator_client(server: Server, owner: httpx.Client) -> httpx.Client:
    members = owner.get("/members", params={"limit": 200}).json()["items"]
    (annotator,) = [m for m in members if m["email"] == ANNOTATOR_EMAIL]
    key = owner.post("/keys", json={"name": "e2e review", "member_id": annotator["id"]}).json()["key"]
    return httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _project_waiting_for_review(server: Server, texts: list[str]) -> dict[str, Any]:
    """A project sending every task to review, each task answered "positive" by the annotator."""
    with server.api() as owner:
        quality = {"overlap": 1, "review": {"sample_rate": 1.0}}
        project = owner.post("/projects", json={"name": f"Review {texts[0]}", "spec": SPEC, "quality": quality}).json()
        body = "".join(f'{{"data": {{"text": "{text}"}}}}\n' for text in texts)
        imported = owner.post(
            f"/projects/{project['id']}/tasks/bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        assert imported.json()["created"] == len(texts), imported.text
        with _annotator_client(server, owner) as annotator:
            for _ in texts:
                lease = annotator.post(f"/projects/{project['id']}/next").json()
                answer = {"answer": {"sentiment": "positive"}, "assignment_id": lease["id"]}
                assert annotator.post(f"/tasks/{lease['task']['id']}/responses", json=answer).status_code == 201
    return project


def _task_shown(page: Any, previous: str | None = None) -> str:
    task = page.locator("#task")
    expect(task).to_be_visible()
    if previous is not None:
        expect(task).not_to_have_attribute("data-task", previous)
    return str(task.get_attribute("data-task"))


def test_a_reviewer_accepts_and_fixes_with_the_keyboard(tab: Tab, server: Server) -> None:
    project = _project_waiting_for_review(server, ["great film", "awful film"])
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project['id']}")
    page.get_by_role("link", name="Review").click()
    first = _task_shown(page)
    # the item as the worker saw it, the response with its worker, the result with its confidence
    expect(page.locator("#fields")).to_contain_text("great film")
    expect(page.locator("#responses li")).to_have_count(1)
    expect(page.locator("#responses")).to_contain_text("Ann Otator")
    expect(page.locator("#responses")).to_contain_text("sentiment: positive")
    expect(page.locator('#result dd[data-question="sentiment"]')).to_contain_text("confidence")
    expect(page.locator(".keymap")).to_contain_text("accept the result")

    page.keyboard.press("a")
    second = _task_shown(page, first)
    expect(page.locator("#notice")).to_have_text("Accepted.")
    expect(page.locator("#fields")).to_contain_text("awful film")

    page.keyboard.press("f")
    expect(page.locator("#fix-form")).to_be_visible()
    expect(page.locator("#fix-form input[value=positive]")).to_be_checked()  # filled with the result
    page.keyboard.press("2")  # negative
    page.keyboard.press("Enter")
    expect(page.locator('[data-panel="empty"]')).to_be_visible()

    with server.api() as owner:
        accepted = owner.get(f"/tasks/{first}").json()
        fixed = owner.get(f"/tasks/{second}").json()
        assert [r["verdict"] for r in owner.get(f"/tasks/{first}/reviews").json()] == ["accept"]
    assert accepted["review_status"] == "accepted" and accepted["result"]["answer"] == {"sentiment": "positive"}
    assert fixed["review_status"] == "fixed" and fixed["result"]["answer"] == {"sentiment": "negative"}
    # the task's page: its result and its history, every step
    page.goto(f"/tasks/{second}")
    expect(page.locator('#task-result dd[data-question="sentiment"]')).to_contain_text("negative")
    expect(page.locator("#task-result")).to_contain_text("review_fix")
    kinds = page.locator("#history tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds[:3] == ["created", "leased", "response"] and kinds[-2:] == ["response", "reviewed"]
    assert "review_claimed" in kinds
    assert tab.script_errors() == []


def test_a_reject_asks_for_a_reason_and_n_leaves_the_task(tab: Tab, server: Server) -> None:
    project = _project_waiting_for_review(server, ["so-so film", "another film"])
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project['id']}/review")
    first = _task_shown(page)
    page.keyboard.press("n")  # leave it to another reviewer
    second = _task_shown(page, first)
    page.keyboard.press("r")
    expect(page.locator("#reason")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#reason-error")).to_contain_text("needs a reason")
    page.keyboard.type("sarcasm")
    page.keyboard.press("Enter")
    expect(page.locator('[data-panel="empty"]')).to_be_visible()  # the skipped one never comes back
    with server.api() as owner:
        rejected = owner.get(f"/tasks/{second}").json()
        assert owner.get(f"/tasks/{first}").json()["review_status"] == "pending"
        reviews = owner.get(f"/tasks/{second}/reviews").json()
    assert rejected["status"] == "pending" and rejected["review_status"] == "rejected"
    assert [(r["verdict"], r["reason"]) for r in reviews] == [("reject", "sarcasm")]
    assert tab.script_errors() == []


def test_an_annotator_never_sees_the_review_page(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    project = page.locator(f'li.project[data-project-id="{server.demo_project_id}"]')
    expect(project.get_by_role("link", name="Start labeling")).to_be_visible()
    expect(page.locator('[data-link="review"]')).to_have_count(0)
    response = page.goto(f"/projects/{server.demo_project_id}/review")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    with server.api() as owner:
        (task,) = owner.get("/tasks", params={"project_id": server.demo_project_id, "limit": 1}).json()["items"]
    response = page.goto(f"/tasks/{task['id']}")
    assert response is not None and response.status == 403

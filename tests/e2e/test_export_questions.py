"""The exports page's question picker in a real browser against a real server: a project with two
questions is exported as CSV with one of them ticked (the file has that question's columns only), and
JSONL with a question ticked is refused next to the picker, in words."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest

from .support import Server, Tab, log_in

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["positive", "negative"]},
        {"name": "topic", "type": "label", "options": ["sport", "news"]},
    ],
}


def _labeled_project(server: Server) -> str:
    with server.api() as client:
        project = client.post("/projects", json={"name": f"Two questions {uuid.uuid4().hex[:6]}", "spec": SPEC})
        assert project.status_code == 201, project.text
        project_id = project.json()["id"]
        task = client.post(f"/projects/{project_id}/tasks", json={"data": {"text": "the cup final"}}).json()
        answer = {"sentiment": "positive", "topic": "sport"}
        assert client.post(f"/tasks/{task['id']}/responses", json={"answer": answer}).status_code == 201
    return project_id


def test_a_manager_exports_the_questions_ticked(tab: Tab, server: Server) -> None:
    page = tab.page
    project_id = _labeled_project(server)
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project_id}/exports")

    page.get_by_label("Format").select_option("jsonl")
    page.get_by_role("checkbox", name="topic").check()
    page.get_by_role("button", name="Start export").click()
    expect(page.locator("#err-questions")).to_contain_text("jsonl format writes each task whole")
    expect(page.locator("#export-rows tr")).to_have_count(0)

    page.get_by_label("Format").select_option("csv")
    page.get_by_role("button", name="Start export").click()
    row = page.locator("#export-rows tr").first
    expect(row).to_have_attribute("data-status", "succeeded", timeout=20_000)
    expect(row).to_contain_text("questions topic")
    expect(page.locator("#err-questions")).to_be_hidden()
    with page.expect_download() as download:
        row.get_by_role("link", name="Download").click()
    (line,) = csv.DictReader(io.StringIO(Path(download.value.path()).read_text()))
    assert line["answer.topic"] == "sport" and "answer.sentiment" not in line
    page.reload()  # the server renders the same words for the finished job
    expect(page.locator("#export-rows tr").first).to_contain_text("questions topic")
    assert tab.script_errors() == []

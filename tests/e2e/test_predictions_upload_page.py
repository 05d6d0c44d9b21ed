"""Uploading a model's predictions from the Models page (a real server, a real Chromium): a wrong
line is named by its line number and nothing is stored; the corrected file stores them, and the
task's predictions say so. Predictions could be uploaded only through the API, SDK and CLI."""

from __future__ import annotations

import json
import uuid

import pytest

from .support import Server, Tab, log_in, new_project

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def test_a_manager_uploads_predictions_from_the_models_page(tab: Tab, server: Server) -> None:
    tag = uuid.uuid4().hex[:8]
    with server.api() as client:
        pid = new_project(
            client, SPEC, [{"data": {"text": f"animal {i}"}, "unique_id": f"p-{tag}-{i}"} for i in range(2)]
        )

    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{pid}/models")
    form = page.locator("#predictions-form")
    form.get_by_label("Model name").fill("clf")
    form.get_by_label("Model version").fill("1")
    wrong = [
        {"unique_id": f"p-{tag}-0", "question": "animal", "answer": "cat", "score": 0.9},
        {"unique_id": f"p-{tag}-1", "question": "animal", "answer": "horse", "score": 0.6},
    ]
    form.get_by_label("Predictions (.jsonl)").set_input_files(
        {"name": "preds.jsonl", "mimeType": "application/x-ndjson", "buffer": _jsonl(wrong)}
    )
    form.get_by_role("button", name="Upload predictions").click()
    expect(page.locator("#p-status")).to_have_text("Nothing was stored: these predictions are refused.")
    expect(page.locator("#p-errors li")).to_have_count(1)
    expect(page.locator("#p-errors li")).to_contain_text("line 2")

    right = [wrong[0], {**wrong[1], "answer": "dog"}]
    form.get_by_label("Predictions (.jsonl)").set_input_files(
        {"name": "preds.jsonl", "mimeType": "application/x-ndjson", "buffer": _jsonl(right)}
    )
    form.get_by_role("button", name="Upload predictions").click()
    expect(page.locator("#p-status")).to_contain_text("2 predictions for clf@1: 2 stored (2 tasks)")
    expect(page.locator("#p-errors")).to_be_hidden()
    with server.api() as client:
        tasks = client.get("/tasks", params={"project_id": pid}).json()["items"]
        task = next(t for t in tasks if t["unique_id"] == f"p-{tag}-1")
        predicted = client.get(f"/tasks/{task['id']}/predictions").json()
    assert [p["answer"] for p in predicted] == [{"animal": "dog"}], predicted
    assert tab.script_errors() == []

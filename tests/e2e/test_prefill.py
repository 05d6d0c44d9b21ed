"""Pre-fill in a real browser against a real server: a worker sees a model's predictions pre-filled,
keeps one and changes another; the stored response says exactly that, per question."""

from __future__ import annotations

from typing import Any

import pytest

from .support import Server, Tab, log_in

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["positive", "negative", "neutral"]},
        {"name": "stars", "type": "rating", "min": 1, "max": 5},
    ],
}


def _project_with_predictions(server: Server) -> tuple[str, str]:
    with server.api() as client:
        quality = {"overlap": 1, "prefill_predictions": True}
        created = client.post("/projects", json={"name": "Pre-filled reviews", "spec": SPEC, "quality": quality})
        assert created.status_code == 201, created.text
        project_id = str(created.json()["id"])
        task = client.post(f"/projects/{project_id}/tasks", json={"data": {"text": "Lovely, but slow."}})
        assert task.status_code == 201, task.text
        task_id = str(task.json()["id"])
        items = [
            {"task_id": task_id, "question": "sentiment", "answer": "positive", "score": 0.87},
            {"task_id": task_id, "question": "stars", "answer": 5, "score": 0.42},
        ]
        body = {"model": "review-clf", "version": "7", "predictions": items}
        uploaded = client.post(f"/projects/{project_id}/predictions", json=body)
        assert uploaded.status_code == 200 and uploaded.json()["stored"] == 2, uploaded.text
    return project_id, task_id


def test_a_worker_keeps_one_prediction_and_changes_another(tab: Tab, server: Server) -> None:
    project_id, task_id = _project_with_predictions(server)
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project_id}/label")
    form = page.locator("form#task")
    expect(form).to_be_visible()
    expect(form).to_have_attribute("data-task", task_id)
    sentiment = page.locator('[data-question="sentiment"]')
    stars = page.locator('[data-question="stars"]')
    # the form starts from the predictions, and says which model made them
    expect(sentiment.locator('input[value="positive"]')).to_be_checked()
    expect(stars.locator('input[value="5"]')).to_be_checked()
    expect(sentiment.locator(".q-prefill")).to_contain_text("Pre-filled by review-clf@7 (score 0.87)")
    expect(stars.locator(".q-prefill")).to_contain_text("review-clf@7")
    # keep the sentiment, change the stars, submit
    stars.locator('.scale-point:has(input[value="3"])').click()
    page.locator("#submit").click()
    expect(page.get_by_role("heading", name="No more tasks")).to_be_visible()
    [stored] = [r for r in server.responses(task_id) if r["scores"] is None]  # the person's, not the model's
    assert stored["answer"] == {"sentiment": "positive", "stars": 3}
    assert stored["prefill"]["sentiment"]["accepted"] is True
    assert stored["prefill"]["stars"]["accepted"] is False
    with server.api() as client:
        predictions = client.get(f"/tasks/{task_id}/predictions").json()
        assert stored["prefill"]["sentiment"]["response_id"] == predictions[0]["response_id"]
        figures = client.get(f"/projects/{project_id}/workers").json()["items"]
    (model,) = [f for f in figures if f["kind"] == "model"]
    assert (model["prefill_shown"], model["prefill_accepted"], model["acceptance_rate"]) == (2, 1, 0.5)
    assert tab.script_errors() == []

"""Labeling with a model from the Models page, in a real browser against a real ``truthset serve``
(its in-process job runner calls the model): a manager starts a run against a chat-completions
server, then one against a model server speaking truthset's protocol, each on 127.0.0.1 and
started by the test, follows it, and sees the run and the model worker; a bad model name is refused
next to its field. Both could only be started from the API, SDK or CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from receiver import Reply, Request, running

from .support import OutboundServer, new_project, outbound_server, signed_in_page

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "review", "type": "text", "label": "Review"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
TASKS = 3


def _completion(request: Request, n: int) -> Reply:
    """A chat-completions reply: "positive", with 40 prompt and 5 completion tokens."""
    body = {
        "id": f"c{n}",
        "object": "chat.completion",
        "model": json.loads(request.body)["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"answer": "positive"}'}}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45},
    }
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _model_server(request: Request, n: int) -> Reply:
    """truthset's model-server protocol: /health names the model, /train takes results, /predict answers."""
    if request.path == "/health":
        body: object = {"name": "clf", "version": "7"}
    elif request.path == "/train":
        body = {"accepted": len(json.loads(request.body)["results"])}
    else:
        body = {"predictions": [{"task": t["id"], "answer": "positive"} for t in json.loads(request.body)["tasks"]]}
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _project(server: OutboundServer) -> str:
    with server.api() as api:
        return new_project(api, SPEC, [{"data": {"review": f"lovely soup {i}"}} for i in range(TASKS)])


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutboundServer]:
    with outbound_server(tmp_path_factory.mktemp("e2e-llm"), "llm-owner@example.com") as server:
        yield server


def test_a_manager_labels_with_an_llm_from_the_models_page(browser: Any, llm_server: OutboundServer) -> None:
    project_id = _project(llm_server)
    with signed_in_page(browser, llm_server) as page:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"/projects/{project_id}/models")
        with running(_completion) as model:
            page.get_by_label("Endpoint").fill(f"{model.url}/v1")
            page.get_by_label("Model", exact=True).fill("tiny@1")
            page.get_by_role("button", name="Start labeling").click()
            expect(page.locator("#err-model")).to_contain_text("no '@'")  # refused by name, next to its field

            page.get_by_label("Model", exact=True).fill("tiny")
            page.get_by_label("API key (optional)").fill("sk-test")
            page.get_by_role("button", name="Start labeling").click()
            run = page.locator("#model-runs tbody tr")
            expect(run).to_have_count(1, timeout=30_000)  # the job ran, and the page reloaded with it
            requests = model.wait_for(TASKS)
        expect(run.first).to_contain_text("llm:tiny@")
        expect(run.first).to_contain_text("succeeded")
        expect(run.first.locator('[data-cell="tokens"]')).to_contain_text(f"{45 * TASKS}")
        expect(page.locator("#model-workers tbody tr").first).to_contain_text("llm:tiny@")
        assert requests[0].path == "/v1/chat/completions"
        assert requests[0].headers.get("authorization") == "Bearer sk-test"
        assert page.get_by_label("API key (optional)").input_value() == ""  # not kept in the page
        with llm_server.api() as api:
            (job,) = api.get("/jobs", params={"kind": "model.llm_label"}).json()["items"]
        assert job["status"] == "succeeded" and job["result"]["stored"] == TASKS
        assert "sk-test" not in json.dumps(job)  # sealed, never shown
        assert errors == []


def test_a_manager_asks_a_model_server_from_the_models_page(browser: Any, llm_server: OutboundServer) -> None:
    project_id = _project(llm_server)
    with signed_in_page(browser, llm_server) as page:
        page.goto(f"/projects/{project_id}/models")
        page.get_by_label("Kind").select_option("server")
        expect(page.get_by_label("Name (optional)")).to_be_visible()
        with running(_model_server) as model:
            page.get_by_label("Endpoint").fill(model.url)
            page.get_by_role("button", name="Start labeling").click()
            run = page.locator("#model-runs tbody tr")
            expect(run).to_have_count(1, timeout=30_000)
            paths = [request.path for request in model.requests]
        expect(run.first).to_contain_text("clf@7")  # named by the server's /health, nothing typed
        expect(run.first).to_contain_text("succeeded")
        expect(page.locator("#model-workers tbody tr").first).to_contain_text("clf@7")
        assert paths[0] == "/health" and "/predict" in paths

"""`client.start_llm_labeling` and `truthset models llm-label` against a live server (uvicorn on
127.0.0.1, allowed to reach 127.0.0.1, running LLM labeling jobs in process) and a real
chat-completions server started by the test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import pytest
from typer.testing import CliRunner

from receiver import Receiver, Reply, Request, running
from truthset.cli import app

from .conftest import LiveServer, live_server, project_with_texts

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["pos", "neg"]}],
}


def _answer(request: Request, n: int) -> Reply:
    prompt = json.loads(request.body)["messages"][-1]["content"]
    content = json.dumps({"answer": "neg" if "awful" in prompt else "pos"})
    body = {"choices": [{"message": {"content": content}}], "usage": {"prompt_tokens": 20, "completion_tokens": 3}}
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def llm() -> Iterator[Receiver]:
    with running(_answer) as started:
        yield started


@pytest.fixture(scope="module")
def allowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server allowed to reach 127.0.0.1 that runs LLM labeling jobs in process."""
    with live_server(tmp_path_factory.mktemp("llm"), ["model.llm_label"], "llm", outbound_allow="127.0.0.1") as server:
        yield server


_project = partial(project_with_texts, spec=SPEC)


def test_the_sdk_starts_a_job_whose_answers_become_predictions(allowed: LiveServer, llm: Receiver) -> None:
    project_id, (good, bad) = _project(allowed, "sdk", ["a fine film", "an awful film"])
    with allowed.client() as client:
        job = client.start_llm_labeling(
            project_id, question="sentiment", base_url=f"{llm.url}/v1", model="tiny", version="1", api_key="sk-sdk"
        )
        assert job.status == "queued" and "sk-sdk" not in job.model_dump_json()
        done = client.jobs.wait(job.id, timeout=60)
        assert done.status == "succeeded", done.error
        assert done.result["stored"] == 2 and done.result["usage"]["total_tokens"] == 46
        assert [(p.model, p.answer) for p in client.tasks.predictions(good)] == [("llm:tiny@1", {"sentiment": "pos"})]
        assert [(p.model, p.answer) for p in client.tasks.predictions(bad)] == [("llm:tiny@1", {"sentiment": "neg"})]
    assert any(r.headers.get("authorization") == "Bearer sk-sdk" for r in llm.requests)


def _cli(live: LiveServer, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--url", live.url, "--api-key", live.api_key], env=env)
    text = " ".join(result.output.split())
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += f" {type(result.exception).__name__}: {result.exception}"  # `truthset` (main) prints it so
    return result.exit_code, text


def test_the_cli_labels_and_waits_and_a_private_address_is_refused(allowed: LiveServer, llm: Receiver) -> None:
    project_id, _ = _project(allowed, "cli", ["one", "two", "three"])
    base = ("models", "llm-label", "--project", project_id, "--question", "sentiment", "--model", "tiny")
    code, output = _cli(
        allowed, *base, "--base-url", f"{llm.url}/v1", "--limit", "2", "--wait", env={"TRUTHSET_LLM_API_KEY": "sk-cli"}
    )
    assert code == 0, output
    assert "llm:tiny@" in output and "2 tasks asked: 2 predictions stored, 0 invalid answers, 0 failed calls" in output
    assert "tokens: 40 prompt + 6 completion" in output and "sk-cli" not in output
    assert any(r.headers.get("authorization") == "Bearer sk-cli" for r in llm.requests)
    code, output = _cli(allowed, *base, "--base-url", "http://169.254.169.254/v1")
    assert code == 1 and "url_refused" in output and "link-local" in output and "Traceback" not in output, output

"""`client.start_model_server_predictions` and `truthset models server-predict` against a live server
(uvicorn on 127.0.0.1, allowed to reach 127.0.0.1, running model-server jobs in process) and a real
model server started by the test."""

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
KIND = "model.server_predict"


def _answer(request: Request, n: int) -> Reply:
    if request.path == "/health":
        body: object = {"name": "clf", "version": "3"}
    elif request.path == "/train":
        body = {"accepted": len(json.loads(request.body)["results"])}
    else:
        tasks = json.loads(request.body)["tasks"]
        body = {
            "predictions": [
                {"task": t["id"], "answer": "neg" if "awful" in t["data"]["text"] else "pos", "score": 0.7}
                for t in tasks
            ]
        }
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def model_server() -> Iterator[Receiver]:
    with running(_answer) as started:
        yield started


@pytest.fixture(scope="module")
def allowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server allowed to reach 127.0.0.1 that runs model-server jobs in process."""
    data_dir = tmp_path_factory.mktemp("model-server")
    with live_server(data_dir, [KIND], "model-server", outbound_allow="127.0.0.1") as server:
        yield server


_project = partial(project_with_texts, spec=SPEC)


def test_the_sdk_starts_a_job_whose_answers_become_predictions(allowed: LiveServer, model_server: Receiver) -> None:
    project_id, (good, bad) = _project(allowed, "sdk", ["a fine film", "an awful film"])
    with allowed.client() as client:
        job = client.start_model_server_predictions(
            project_id, question="sentiment", base_url=model_server.url, api_key="sk-sdk", batch_size=1
        )
        assert job.status == "queued" and job.kind == KIND and "sk-sdk" not in job.model_dump_json()
        done = client.jobs.wait(job.id, timeout=60)
        assert done.status == "succeeded", done.error
        assert (done.result["model"], done.result["stored"], done.result["invalid"]) == ("clf@3", 2, 0)
        assert [(p.model, p.answer) for p in client.tasks.predictions(good)] == [("clf@3", {"sentiment": "pos"})]
        assert [(p.model, p.answer) for p in client.tasks.predictions(bad)] == [("clf@3", {"sentiment": "neg"})]
    assert any(r.headers.get("authorization") == "Bearer sk-sdk" for r in model_server.requests)


def _cli(live: LiveServer, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--url", live.url, "--api-key", live.api_key], env=env)
    text = " ".join(result.output.split())
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += f" {type(result.exception).__name__}: {result.exception}"
    return result.exit_code, text


def test_the_cli_asks_and_waits_and_a_private_address_is_refused(allowed: LiveServer, model_server: Receiver) -> None:
    project_id, _ = _project(allowed, "cli", ["one", "two", "three"])
    base = ("models", "server-predict", "--project", project_id, "--question", "sentiment")
    code, output = _cli(
        allowed, *base, "--base-url", model_server.url, "--name", "mine", "--limit", "2", "--wait",
        env={"TRUTHSET_MODEL_SERVER_API_KEY": "sk-cli"},
    )  # fmt: skip
    assert code == 0, output
    assert "mine@3: 0 results sent to /train (0 accepted); 2 tasks asked: 2 predictions stored" in output
    assert "sk-cli" not in output
    assert any(r.headers.get("authorization") == "Bearer sk-cli" for r in model_server.requests)
    code, output = _cli(allowed, *base, "--base-url", "http://169.254.169.254")
    assert code == 1 and "url_refused" in output and "link-local" in output and "Traceback" not in output, output

"""The protocol examples of docs/learners.md, played between the client and a real server."""

from __future__ import annotations

import json
import re
from pathlib import Path

from receiver import Reply, Request, running
from truthset.learners import Task
from truthset.learners.model_server import HttpxSend, ModelServerClient
from truthset.questions import FieldSpec, get

DOC = Path(__file__).parents[2] / "docs" / "learners.md"


def example(name: str) -> dict:
    (block,) = re.findall(rf"```json {name}\n(.*?)```", DOC.read_text(), flags=re.S)
    return json.loads(block)


def test_the_documented_exchange_is_what_the_client_sends_and_reads() -> None:
    request = example("predict-request")
    replies = {
        "/health": example("health-reply"),
        "/predict": example("predict-reply"),
        "/train": example("train-reply"),
    }

    def serve(incoming: Request, n: int) -> Reply:
        return Reply(200, json.dumps(replies[incoming.path]).encode(), {"Content-Type": "application/json"})

    question = get("label").config_model.model_validate(request["question"])
    fields = [FieldSpec.model_validate(f) for f in request["fields"]]
    tasks = [Task(t["id"], t["data"]) for t in request["tasks"]]
    send = HttpxSend(check_url=None)
    with running(serve) as server:
        client = ModelServerClient(server.url, send)
        assert client.health().name == "my-classifier"
        outcome = client.predict(question, tasks, fields=fields, instructions=request["instructions"])
        train = example("train-request")
        trained = client.train(
            get("label").config_model.model_validate(train["question"]),
            [Task(r["id"], r["data"]) for r in train["results"]],
            [r["answer"] for r in train["results"]],
        )
        sent = json.loads(server.wait_for(2)[1].body)
    send.close()
    assert sent == request  # the documented request is exactly what the client sends
    assert [(p.task_key, p.answer, p.score) for p in outcome.predictions] == [("t1", "pos", 0.97), ("t2", "neg", 0.88)]
    assert outcome.missing == ["t3"] and outcome.invalid == []
    assert outcome.model is not None and outcome.model.version == "2024-06-01"
    assert (trained.accepted, trained.version) == (1, "2024-06-02")

"""The model-server client against a real HTTP server on 127.0.0.1 that speaks the protocol."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from receiver import Reply, Request, running
from truthset.learners import Task
from truthset.learners.model_server import HttpxSend, ModelServerClient, RetryPolicy, ServerError
from truthset.questions import FieldSpec, get

QUESTION = get("label").config_model.model_validate({"name": "topic", "type": "label", "options": ["a", "b"]})
FIELDS = [FieldSpec(name="text", type="text")]
TASKS = [Task(f"t{i}", {"text": f"text {i}"}) for i in range(5)]


@pytest.fixture
def send() -> Iterator[HttpxSend]:
    sender = HttpxSend(check_url=None)  # tests only: the service layer passes the network guard's check
    yield sender
    sender.close()


def client(url: str, send: HttpxSend, **options: object) -> tuple[ModelServerClient, list[float]]:
    waits: list[float] = []
    options.setdefault("retry", RetryPolicy(attempts=3, base=0.01))
    return ModelServerClient(url, send, sleep=waits.append, **options), waits  # type: ignore[arg-type]


def ok(body: object, status: int = 200, **headers: str) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})


def predict_all(request: Request, _n: int) -> Reply:
    """A well-behaved server: answers `a` for even task numbers, `b` for odd ones."""
    if request.path == "/health":
        return ok({"name": "echo", "version": "1.2"})
    body = json.loads(request.body)
    predictions = [{"task": t["id"], "answer": "ab"[int(t["id"][1:]) % 2], "score": 0.75} for t in body["tasks"]]
    return ok({"model": {"name": "echo", "version": "1.2"}, "predictions": predictions})


def test_health_and_predict_in_batches(send: HttpxSend) -> None:
    with running(predict_all) as server:
        model, _ = client(server.url, send, batch_size=2, api_key="secret")
        assert model.health().version == "1.2"
        outcome = model.predict(QUESTION, TASKS, fields=FIELDS, instructions="Pick one.")
        requests = server.wait_for(4)
    assert [p.answer for p in outcome.predictions] == ["a", "b", "a", "b", "a"]
    assert [p.task_key for p in outcome.predictions] == [t.key for t in TASKS]
    assert {p.score for p in outcome.predictions} == {0.75}
    assert outcome.invalid == [] and outcome.missing == []
    assert outcome.model is not None and outcome.model.name == "echo"
    posts = [r for r in requests if r.method == "POST"]
    assert [r.path for r in posts] == ["/predict"] * 3  # 5 tasks in batches of 2
    first = json.loads(posts[0].body)
    assert first["question"]["options"][0]["value"] == "a"
    assert first["fields"] == [{"name": "text", "type": "text", "label": "", "required": True}]
    assert first["instructions"] == "Pick one."
    assert first["tasks"] == [{"id": "t0", "data": {"text": "text 0"}}, {"id": "t1", "data": {"text": "text 1"}}]
    assert posts[0].headers["authorization"] == "Bearer secret"


def test_invalid_answers_are_reported_never_predictions(send: HttpxSend) -> None:
    reply = {
        "predictions": [
            {"task": "t0", "answer": "a", "score": 0.9},
            {"task": "t0", "answer": "b", "score": 0.9},  # a second answer to one task
            {"task": "t1", "answer": "c", "score": 0.9},  # not an option
            {"task": "t2", "answer": "a", "score": 1.5},  # not a probability
            {"task": "zz", "answer": "a"},  # not in the batch
            {"answer": "a"},  # names no task
            {"task": "t3", "answer": "b"},  # no score: undeclared
        ]
    }
    with running(lambda request, n: ok(reply)) as server:
        outcome = client(server.url, send)[0].predict(QUESTION, TASKS)
    assert [(p.task_key, p.answer, p.score) for p in outcome.predictions] == [("t0", "a", 0.9), ("t3", "b", None)]
    reasons = [i.reason for i in outcome.invalid]
    assert reasons[0] == "predictions[1]: a second answer to task 't0'"
    assert reasons[1].startswith("predictions[2].answer: 'c' is not one of the options")
    assert reasons[2] == "predictions[3].score must be between 0 and 1 (got 1.5)"
    assert reasons[3] == "predictions[4].task: 'zz' was not in the batch"
    assert reasons[4] == "predictions[5].task: must be the id of a task sent"
    assert outcome.missing == ["t4"]  # the model abstained


def test_a_5xx_is_retried_with_backoff_then_succeeds(send: HttpxSend) -> None:
    def flaky(request: Request, n: int) -> Reply:
        if n == 1:
            return Reply(503, b"busy", {"Retry-After": "2"})
        if n == 2:
            return Reply(500, b"oops")
        return predict_all(request, n)

    with running(flaky) as server:
        model, waits = client(server.url, send)
        outcome = model.predict(QUESTION, TASKS[:2])
        assert len(server.wait_for(3)) == 3
    assert [p.answer for p in outcome.predictions] == ["a", "b"]
    assert waits[0] == 2.0  # Retry-After honoured
    assert 0.02 <= waits[1] <= 0.03  # then exponential backoff with jitter


def test_gives_up_after_the_attempts(send: HttpxSend) -> None:
    with running(lambda request, n: Reply(502, b"bad gateway")) as server:
        model, waits = client(server.url, send)
        with pytest.raises(ServerError, match="gave up after 3 attempts: the server answered 502: bad gateway"):
            model.health()
    assert len(waits) == 2


def test_a_4xx_is_not_retried(send: HttpxSend) -> None:
    with running(lambda request, n: Reply(422, b'{"detail": "bad question"}')) as server:
        model, waits = client(server.url, send)
        with pytest.raises(ServerError, match="answered 422") as caught:
            model.predict(QUESTION, TASKS[:1])
        assert len(server.requests) == 1
    assert caught.value.status == 422 and waits == []


def test_a_timeout_is_retried_then_reported(send: HttpxSend) -> None:
    with running(lambda request, n: Reply(200, b"{}", hold_before_body=True)) as server:
        model, waits = client(server.url, send, timeout=0.3, retry=RetryPolicy(attempts=2, base=0.01))
        with pytest.raises(ServerError, match=r"gave up after 2 attempts: timed out after 0\.3 s"):
            model.predict(QUESTION, TASKS[:1])
        assert len(server.wait_for(2)) == 2
    assert len(waits) == 1


def test_an_oversized_reply_is_refused_without_retry(send: HttpxSend) -> None:
    big = {"predictions": [{"task": "t0", "answer": "a", "pad": "x" * 5000}]}
    with running(lambda request, n: ok(big)) as server:
        model, waits = client(server.url, send, max_bytes=1000)
        with pytest.raises(ServerError, match="more than the 1000 allowed"):
            model.predict(QUESTION, TASKS[:1])
        assert len(server.requests) == 1
    assert waits == []


def test_a_reply_that_breaks_the_protocol(send: HttpxSend) -> None:
    with (
        running(lambda request, n: Reply(200, b"<html>")) as server,
        pytest.raises(ServerError, match="the reply is not JSON"),
    ):
        client(server.url, send)[0].predict(QUESTION, TASKS[:1])
    with (
        running(lambda request, n: ok({"answers": []})) as server,
        pytest.raises(ServerError, match="must be an object with a `predictions` list"),
    ):
        client(server.url, send)[0].predict(QUESTION, TASKS[:1])


def test_the_url_check_runs_before_any_request() -> None:
    def refuse(url: str) -> None:
        raise ValueError(f"{url} is a loopback address")

    sender = HttpxSend(check_url=refuse)
    with running() as server:
        model, _ = client(server.url, sender)
        with pytest.raises(ServerError, match=r"url refused: .* is a loopback address"):
            model.health()
        assert server.requests == []
    sender.close()


def test_train_sends_results_in_batches(send: HttpxSend) -> None:
    def train(request: Request, n: int) -> Reply:
        return ok({"accepted": len(json.loads(request.body)["results"]), "version": f"1.{n}"})

    with running(train) as server:
        model, _ = client(server.url, send, batch_size=3)
        outcome = model.train(QUESTION, TASKS, ["a", "b", "a", "b", "a"], fields=FIELDS)
        requests = server.wait_for(2)
    assert outcome.accepted == 5 and outcome.version == "1.2"
    assert json.loads(requests[0].body)["results"][1] == {"id": "t1", "data": {"text": "text 1"}, "answer": "b"}
    with pytest.raises(ValueError, match="answers: 1 answers for 5 tasks"):
        model.train(QUESTION, TASKS, ["a"])

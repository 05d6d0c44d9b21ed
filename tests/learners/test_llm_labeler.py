"""The LLM labeler against a real HTTP server on 127.0.0.1 speaking the chat-completions API."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator

import pytest

from receiver import Reply, Request, running
from truthset.learners import Task
from truthset.learners.llm_labeler import LLMConfig, LLMLabeler, answer_schema, logprob_score
from truthset.learners.model_server import HttpxSend, RetryPolicy
from truthset.questions import FieldSpec, get

SENTIMENT = get("label").config_model.model_validate(
    {
        "name": "sentiment",
        "type": "label",
        "prompt": "What is the **sentiment** of the review?",
        "options": [{"value": "pos", "label": "Positive"}, {"value": "neg", "label": "Negative"}],
    }
)
FIELDS = [FieldSpec(name="review", type="text", label="Customer review")]
TASKS = [Task(f"r{i}", {"review": f"review number {i}"}) for i in range(4)]


def completion(content: str, *, logprobs: list[tuple[str, float]] | None = None, usage=(50, 7)) -> Reply:
    choice: dict = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": t, "logprob": lp, "top_logprobs": []} for t, lp in logprobs]}
    body = {
        "id": "c1",
        "object": "chat.completion",
        "model": "tiny",
        "choices": [choice],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }
    return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture
def send() -> Iterator[HttpxSend]:
    sender = HttpxSend(check_url=None)  # tests only: the service layer passes the network guard's check
    yield sender
    sender.close()


def labeler(url: str, send: HttpxSend, **options: object) -> LLMLabeler:
    options.setdefault("retry", RetryPolicy(attempts=3, base=0.01))
    config = LLMConfig(base_url=f"{url}/v1", model="tiny", **options)  # type: ignore[arg-type]
    return LLMLabeler(config, send, sleep=lambda seconds: None)


def by_review(answer: Callable[[Request, str], Reply]) -> Callable[[Request, int], Reply]:
    def handle(request: Request, n: int) -> Reply:
        body = json.loads(request.body)
        return answer(request, body["messages"][-1]["content"])

    return handle


def test_structured_output_scored_from_logprobs(send: HttpxSend) -> None:
    tokens = [('{"', 0.0), ("answer", 0.0), ('":', 0.0), (' "', -0.01), ("pos", -0.2), ('"}', 0.0)]
    with running(lambda request, n: completion('{"answer": "pos"}', logprobs=tokens)) as server:
        outcome = labeler(server.url, send, api_key="k").label(
            SENTIMENT, TASKS, fields=FIELDS, instructions="Judge the *review* only."
        )
        requests = server.wait_for(4)
    assert [p.answer for p in outcome.predictions] == ["pos"] * 4
    assert outcome.predictions[0].score == pytest.approx(math.exp(-0.21))
    assert outcome.predictions[0].details["score_from"] == "logprobs"
    assert outcome.usage.calls == 4 and outcome.usage.prompt_tokens == 200 and outcome.usage.completion_tokens == 28
    assert outcome.usage_by_task["r2"].total_tokens == 57
    body = json.loads(requests[0].body)
    assert body["model"] == "tiny" and body["temperature"] == 0.0 and body["logprobs"] is True
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["answer"] == {
        "type": "string",
        "enum": ["pos", "neg"],
    }
    prompt = body["messages"][1]["content"]
    assert "Judge the *review* only." in prompt
    assert "What is the **sentiment** of the review?" in prompt
    assert '- "pos": Positive' in prompt and '- "neg": Negative' in prompt
    assert "## Customer review (`review`)" in prompt and "review number" in prompt
    assert requests[0].headers["authorization"] == "Bearer k"
    assert requests[0].path == "/v1/chat/completions"


def test_json_in_text_and_a_bare_option_are_read(send: HttpxSend) -> None:
    def answer(request: Request, prompt: str) -> Reply:
        if "review number 0" in prompt:
            return completion('Sure! Here it is:\n```json\n{"answer": "neg"}\n```')
        if "review number 1" in prompt:
            return completion("Negative.")  # an option's caption is not its value
        return completion("neg")

    with running(by_review(answer)) as server:
        outcome = labeler(server.url, send, default_score=0.6).label(SENTIMENT, TASKS[:3], fields=FIELDS)
    assert [(p.task_key, p.answer, p.score) for p in outcome.predictions] == [("r0", "neg", 0.6), ("r2", "neg", 0.6)]
    assert outcome.predictions[0].details["score_from"] == "default"
    assert [i.reason for i in outcome.invalid] == ["no JSON object with an `answer` in the reply"]


def test_an_invalid_answer_is_reported_not_predicted(send: HttpxSend) -> None:
    with running(lambda request, n: completion('{"answer": "neutral"}')) as server:
        outcome = labeler(server.url, send).label(SENTIMENT, TASKS[:1])
    assert outcome.predictions == []
    assert outcome.invalid[0].reason.startswith("answer: 'neutral' is not one of the options")
    assert outcome.invalid[0].raw == '{"answer": "neutral"}'
    assert outcome.usage.calls == 1  # the tokens were spent all the same


def test_a_server_without_json_schema_is_asked_again_more_simply(send: HttpxSend) -> None:
    def answer(request: Request, n: int) -> Reply:
        mode = json.loads(request.body).get("response_format", {}).get("type")
        if mode == "json_schema":
            return Reply(400, b'{"error": {"message": "response_format json_schema is not supported"}}')
        return completion('{"answer": "pos"}')

    with running(answer) as server:
        model = labeler(server.url, send, concurrency=1)
        outcome = model.label(SENTIMENT, TASKS[:2])
        modes = [json.loads(r.body).get("response_format", {}).get("type") for r in server.wait_for(3)]
    assert [p.answer for p in outcome.predictions] == ["pos", "pos"]
    assert modes == ["json_schema", "json_object", "json_object"]  # the downgrade is remembered
    assert model.structured == "json_object"


def test_a_5xx_then_success_and_a_timeout(send: HttpxSend) -> None:
    def answer(request: Request, n: int) -> Reply:
        if n == 1:
            return Reply(503, b"loading model")
        if "review number 1" in json.loads(request.body)["messages"][-1]["content"]:
            return Reply(200, b"{}", hold_before_body=True)  # never finishes: the time limit ends it
        return completion('{"answer": "neg"}')

    with running(answer) as server:
        model = labeler(server.url, send, concurrency=1, timeout=0.3, retry=RetryPolicy(attempts=2, base=0.01))
        outcome = model.label(SENTIMENT, TASKS[:2])
    assert [(p.task_key, p.answer) for p in outcome.predictions] == [("r0", "neg")]
    assert outcome.failed[0].task_key == "r1"
    assert outcome.failed[0].reason.startswith("no reply: gave up after 2 attempts: timed out after 0.3 s")


def test_an_oversized_reply_fails_that_task(send: HttpxSend) -> None:
    with running(lambda request, n: completion('{"answer": "pos"}' + " " * 5000)) as server:
        outcome = labeler(server.url, send, max_bytes=2000).label(SENTIMENT, TASKS[:1])
        assert len(server.requests) == 1  # not retried
    assert "more than the 2000 allowed" in outcome.failed[0].reason


def test_calls_run_concurrently_up_to_the_limit(send: HttpxSend) -> None:
    both_in = threading.Barrier(2, timeout=30)  # passes only when two calls are in flight at once
    lock = threading.Lock()
    in_flight, most = 0, 0

    def answer(request: Request, n: int) -> Reply:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        if n <= 2:
            both_in.wait()
        with lock:
            in_flight -= 1
        return completion('{"answer": "pos"}')

    tasks = [Task(f"r{i}", {"review": "x"}) for i in range(6)]
    with running(answer) as server:
        outcome = labeler(server.url, send, concurrency=2).label(SENTIMENT, tasks)
    assert len(outcome.predictions) == 6
    assert most == 2


def test_labels_and_rating_questions() -> None:
    tags = get("labels").config_model.model_validate({"name": "tags", "type": "labels", "options": ["a", "b"]})
    assert answer_schema(tags)["properties"]["answer"] == {
        "type": "array",
        "items": {"type": "string", "enum": ["a", "b"]},
    }
    rating = get("rating").config_model.model_validate({"name": "stars", "type": "rating"})
    assert answer_schema(rating)["properties"]["answer"] == {"type": "integer"}


def test_logprob_score_covers_only_the_answer() -> None:
    tokens = [("{", -0.5), ('"answer"', 0.0), (":", 0.0), (' ["a",', -0.1), (' "b"]', -0.2), ("}", -0.4)]
    content = {"content": [{"token": t, "logprob": lp} for t, lp in tokens]}
    assert logprob_score(content) == pytest.approx(math.exp(-0.3))
    assert logprob_score(None) is None
    assert logprob_score({"content": [{"token": "pos", "logprob": -0.1}]}) is None  # no "answer" key


def test_a_labels_question_about_one_candidate(send: HttpxSend) -> None:
    """A question asked `for_each` candidate shows that candidate only; a list answer is normalised."""
    spec = {
        "fields": [{"name": "answers", "type": "responses", "count": 2, "label": "Answers"}],
        "questions": [{"name": "flaws", "type": "labels", "for_each": "answers", "options": ["rude", "wrong"]}],
    }
    from truthset.questions import CompiledSpec

    compiled = CompiledSpec(spec)
    question = compiled.questions[1]  # flaws-1: about the second candidate
    data = {"answers": [{"text": "first answer"}, {"text": "second answer"}]}
    with running(lambda request, n: completion('{"answer": ["wrong", "rude"]}')) as server:
        outcome = labeler(server.url, send).label(question, [Task("c1", data)], fields=compiled.fields)
        prompt = json.loads(server.wait_for(1)[0].body)["messages"][1]["content"]
    assert [(p.question, p.answer) for p in outcome.predictions] == [("flaws-1", ["rude", "wrong"])]
    assert "second answer" in prompt and "first answer" not in prompt
    assert "Choose every option that applies (at least 0)" in prompt


def test_a_400_about_something_else_is_not_asked_again(send: HttpxSend) -> None:
    with running(lambda request, n: Reply(400, b'{"error": {"message": "unknown model tiny"}}')) as server:
        model = labeler(server.url, send)
        outcome = model.label(SENTIMENT, TASKS[:1])
        assert len(server.requests) == 1
    assert outcome.failed[0].reason.startswith("no reply: the server answered 400")
    assert model.structured == "json_schema"

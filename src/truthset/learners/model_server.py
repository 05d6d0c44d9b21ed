"""The client of an external model server, and the protocol it speaks (docs/learners.md).

A model server is any HTTP service with three endpoints, JSON in and out:

- ``GET /health`` -> ``{"name": "...", "version": "..."}``: who answers (the version names the
  model worker its answers are measured as);
- ``POST /predict`` with ``{"question", "fields", "instructions", "tasks": [{"id", "data"}]}`` ->
  ``{"model": {"name", "version"}, "predictions": [{"task", "answer", "score"}]}``; a task left out
  is one the model abstains on;
- ``POST /train`` with ``{"question", "fields", "results": [{"id", "data", "answer"}]}`` ->
  ``{"accepted": n, "version": "..."}``: new results to learn from (it may learn later, answering 202).

Each answer is validated against the question exactly like a person's; a bad one (an unknown task,
a second answer to a task, an answer the question refuses, a score outside [0, 1]) becomes an
:class:`~truthset.learners.InvalidAnswer`, never a prediction. Tasks go in batches of
``batch_size``; every call has a time limit, a reply-size limit, and retries with backoff on 5xx,
429 and connection errors (:mod:`truthset.learners._http`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from truthset.learners._http import (
    DEFAULT_MAX_BYTES,
    HttpxSend,
    RetryPolicy,
    Send,
    SendError,
    ServerError,
    json_request,
    send_json,
)
from truthset.learners._records import InvalidAnswer, Prediction, Task, check_answer, check_score
from truthset.questions import AnswerError, FieldSpec, QuestionConfig

__all__ = [
    "HttpxSend",
    "ModelServerClient",
    "PredictOutcome",
    "RetryPolicy",
    "Send",
    "SendError",
    "ServerError",
    "ServerInfo",
    "TrainOutcome",
]


@dataclass(frozen=True)
class ServerInfo:
    name: str
    version: str


@dataclass
class PredictOutcome:
    """What a model server said about a set of tasks: valid predictions, and what was refused."""

    predictions: list[Prediction] = field(default_factory=list)
    invalid: list[InvalidAnswer] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # task keys the model abstained on
    model: ServerInfo | None = None  # as the /predict reply named it


@dataclass(frozen=True)
class TrainOutcome:
    accepted: int
    version: str | None


class ModelServerClient:
    """Talks to one model server at ``base_url`` through ``send`` (see :mod:`truthset.learners._http`)."""

    def __init__(
        self,
        base_url: str,
        send: Send,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        batch_size: int = 64,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size: must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._send = send
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        request = json_request(
            method,
            f"{self.base_url}{path}",
            body,
            headers=self._headers,
            timeout=self._timeout,
            max_bytes=self._max_bytes,
        )
        _reply, payload = send_json(self._send, request, self._retry, self._sleep)
        return payload

    def health(self) -> ServerInfo:
        """The server's name and model version (``GET /health``)."""
        return _server_info(self._call("GET", "/health"), "health")

    def predict(
        self,
        question: QuestionConfig,
        tasks: Sequence[Task],
        *,
        fields: Sequence[FieldSpec] = (),
        instructions: str = "",
    ) -> PredictOutcome:
        """Predictions for ``tasks`` (in batches), each answer validated against ``question``."""
        outcome = PredictOutcome()
        head = {
            "question": question.model_dump(mode="json", exclude_none=True),
            "fields": [f.model_dump(mode="json", exclude_none=True) for f in fields],
            "instructions": instructions,
        }
        for start in range(0, len(tasks), self._batch_size):
            batch = tasks[start : start + self._batch_size]
            body = {**head, "tasks": [{"id": t.key, "data": dict(t.data)} for t in batch]}
            payload = self._call("POST", "/predict", body)
            self._read_predictions(question, batch, payload, outcome)
        return outcome

    def _read_predictions(
        self, question: QuestionConfig, batch: Sequence[Task], payload: Any, outcome: PredictOutcome
    ) -> None:
        if not isinstance(payload, Mapping) or not isinstance(payload.get("predictions"), list):
            raise ServerError("the /predict reply must be an object with a `predictions` list")
        if payload.get("model") is not None:
            outcome.model = _server_info(payload["model"], "predict reply's model")
        by_key = {t.key: t for t in batch}
        answered: set[str] = set()
        for index, item in enumerate(payload["predictions"]):
            result = _one_prediction(question, by_key, answered, index, item)
            if isinstance(result, Prediction):
                outcome.predictions.append(result)
            else:
                outcome.invalid.append(result)
        outcome.missing.extend(t.key for t in batch if t.key not in answered)

    def train(
        self,
        question: QuestionConfig,
        tasks: Sequence[Task],
        answers: Sequence[Any],
        *,
        fields: Sequence[FieldSpec] = (),
    ) -> TrainOutcome:
        """Tell the server of new results to learn from (``POST /train``, in batches)."""
        if len(tasks) != len(answers):
            raise ValueError(f"answers: {len(answers)} answers for {len(tasks)} tasks")
        accepted, version = 0, None
        head = {
            "question": question.model_dump(mode="json", exclude_none=True),
            "fields": [f.model_dump(mode="json", exclude_none=True) for f in fields],
        }
        pairs = list(zip(tasks, answers, strict=True))
        for start in range(0, len(pairs), self._batch_size):
            results = [
                {"id": t.key, "data": dict(t.data), "answer": a} for t, a in pairs[start : start + self._batch_size]
            ]
            payload = self._call("POST", "/train", {**head, "results": results})
            if not isinstance(payload, Mapping) or not _is_count(payload.get("accepted")):
                raise ServerError("the /train reply must be an object with `accepted`, a count")
            accepted += payload["accepted"]
            version = payload.get("version") if isinstance(payload.get("version"), str) else version
        return TrainOutcome(accepted, version)


def _one_prediction(
    question: QuestionConfig, by_key: Mapping[str, Task], answered: set[str], index: int, item: Any
) -> Prediction | InvalidAnswer:
    key = item.get("task") if isinstance(item, Mapping) else None
    name = question.name
    if not isinstance(key, str):
        return InvalidAnswer(str(key), name, f"predictions[{index}].task: must be the id of a task sent", item)
    if key not in by_key:
        return InvalidAnswer(key, name, f"predictions[{index}].task: {key!r} was not in the batch", item)
    if key in answered:
        return InvalidAnswer(key, name, f"predictions[{index}]: a second answer to task {key!r}", item)
    answered.add(key)
    try:
        answer = check_answer(question, item.get("answer"), by_key[key].data)
    except AnswerError as exc:
        return InvalidAnswer(key, name, f"predictions[{index}].answer: {exc}", item)
    try:
        score = check_score(item.get("score"))
    except AnswerError as exc:
        return InvalidAnswer(key, name, f"predictions[{index}].{exc}", item)
    return Prediction(key, name, answer, score)


def _server_info(payload: Any, where: str) -> ServerInfo:
    if (
        not isinstance(payload, Mapping)
        or not isinstance(payload.get("name"), str)
        or not isinstance(payload.get("version"), str)
    ):
        raise ServerError(f"the {where} must be an object with a string `name` and `version`")
    return ServerInfo(payload["name"], payload["version"])


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

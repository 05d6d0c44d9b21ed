"""An LLM as a labeler: any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp, Ollama, hosted).

For each task it builds a prompt from the project's instructions, the question (its prompt, its
options and their captions) and the task's fields, asks for ``{"answer": ...}`` as structured output
(``response_format`` with a JSON schema; a server that refuses it with a 400 is asked again with
``json_object``, then in plain text, and the labeler remembers the downgrade; a 400 about anything else is not
asked again), and reads the answer
from the JSON (or from a JSON object in the text, or the bare option). The answer is validated
like any person's: an invalid one is reported, never a prediction.

Score: with ``logprobs`` the probability the model gave to the answer's tokens (the product of
their probabilities: how sure it was of exactly that value); without them the configured
``default_score``, None by default (undeclared: the model worker is then weighed by its measured
accuracy alone). Tokens used (prompt and completion) are counted per task and in total.

Calls run ``concurrency`` at a time, each with a time limit, a reply-size limit and retries with
backoff on 5xx, 429 and connection errors.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from truthset.learners._http import RetryPolicy, Send, ServerError, json_request, send_json
from truthset.learners._records import InvalidAnswer, Prediction, Task, check_answer
from truthset.questions import AnswerError, FieldSpec, QuestionConfig
from truthset.questions._registry import candidate_text

__all__ = ["LLMConfig", "LLMLabeler", "LabelOutcome", "Usage", "answer_schema", "build_messages"]

Structured = Literal["json_schema", "json_object", "text"]
_WEAKER: dict[str, Structured] = {"json_schema": "json_object", "json_object": "text"}


@dataclass(frozen=True)
class LLMConfig:
    base_url: str  # up to and including /v1: the labeler POSTs to {base_url}/chat/completions
    model: str
    api_key: str | None = None
    temperature: float = 0.0
    max_tokens: int = 512
    structured: Structured = "json_schema"
    logprobs: bool = True  # ask for token log-probabilities to score the answer
    default_score: float | None = None  # the score when the reply has no log-probabilities
    timeout: float = 60.0
    max_bytes: int = 2 * 1024 * 1024
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency: must be at least 1")
        if self.default_score is not None and not 0.0 <= self.default_score <= 1.0:
            raise ValueError("default_score: must be between 0 and 1")


@dataclass
class Usage:
    """Tokens spent: what a hosted model bills, what a local one costs in time."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class LabelOutcome:
    predictions: list[Prediction] = field(default_factory=list)
    invalid: list[InvalidAnswer] = field(default_factory=list)  # replies that did not fit the question
    failed: list[InvalidAnswer] = field(default_factory=list)  # calls that got no usable reply
    usage: Usage = field(default_factory=Usage)  # in total
    usage_by_task: dict[str, Usage] = field(default_factory=dict)


class LLMLabeler:
    def __init__(self, config: LLMConfig, send: Send, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._send = send
        self._sleep = sleep
        self._structured: Structured = config.structured
        self._lock = threading.Lock()

    @property
    def structured(self) -> Structured:
        """The structured-output mode in use (weaker than configured after a server refused it)."""
        return self._structured

    def label(
        self,
        question: QuestionConfig,
        tasks: Sequence[Task],
        *,
        fields: Sequence[FieldSpec] = (),
        instructions: str = "",
    ) -> LabelOutcome:
        """Ask the model about each task (``concurrency`` at a time); results in the order of ``tasks``."""
        outcome = LabelOutcome()
        with ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="llm") as pool:
            results = list(pool.map(lambda t: self._one(question, t, fields, instructions), tasks))
        for task, (result, usage) in zip(tasks, results, strict=True):
            outcome.usage.add(usage)
            outcome.usage_by_task[task.key] = usage
            if isinstance(result, Prediction):
                outcome.predictions.append(result)
            elif result.reason.startswith("no reply"):
                outcome.failed.append(result)
            else:
                outcome.invalid.append(result)
        return outcome

    def _one(
        self, question: QuestionConfig, task: Task, fields: Sequence[FieldSpec], instructions: str
    ) -> tuple[Prediction | InvalidAnswer, Usage]:
        messages = build_messages(question, task.data, fields, instructions)
        usage = Usage()
        while True:
            mode = self._structured
            try:
                payload = self._call(self._body(question, messages, mode))
            except ServerError as exc:
                if exc.status == 400 and mode in _WEAKER and _about_format(str(exc)):
                    self._downgrade(mode)
                    continue
                return InvalidAnswer(task.key, question.name, f"no reply: {exc}"), usage
            break
        usage.calls += 1
        _count_usage(payload, usage)
        return self._read(question, task, payload, usage), usage

    def _downgrade(self, mode: Structured) -> None:
        with self._lock:
            if self._structured == mode:  # another thread may have done it already
                self._structured = _WEAKER[mode]

    def _body(self, question: QuestionConfig, messages: list[dict[str, str]], mode: Structured) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        if mode == "json_schema":
            schema = {"name": "answer", "strict": True, "schema": answer_schema(question)}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        if self.config.logprobs:
            body["logprobs"] = True
        return body

    def _call(self, body: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        request = json_request(
            "POST",
            f"{self.config.base_url.rstrip('/')}/chat/completions",
            body,
            headers=headers,
            timeout=self.config.timeout,
            max_bytes=self.config.max_bytes,
        )
        return send_json(self._send, request, self.config.retry, self._sleep)[1]

    def _read(self, question: QuestionConfig, task: Task, payload: Any, usage: Usage) -> Prediction | InvalidAnswer:
        def invalid(reason: str, raw: Any = None) -> InvalidAnswer:
            return InvalidAnswer(task.key, question.name, reason, raw)

        choice = _first_choice(payload)
        if choice is None:
            return invalid("no reply: the reply has no choices[0].message", payload)
        message = choice["message"]
        if isinstance(message.get("refusal"), str) and message["refusal"]:
            return invalid(f"the model refused: {message['refusal']}", message["refusal"])
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            return invalid("the reply has no text content", content)
        found = parse_answer(content, question)
        if found is None:
            return invalid("no JSON object with an `answer` in the reply", content)
        try:
            answer = check_answer(question, found, task.data)
        except AnswerError as exc:
            return invalid(f"answer: {exc}", content)
        score = logprob_score(choice.get("logprobs"))
        details = {
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
            "score_from": "logprobs" if score is not None else "default",
            "model": payload.get("model") if isinstance(payload, Mapping) else None,
        }
        return Prediction(
            task.key, question.name, answer, score if score is not None else self.config.default_score, details
        )


_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "structured", "grammar")


def _about_format(message: str) -> bool:
    """Whether a 400 is about structured output (else it is not worth asking again more simply)."""
    lowered = message.lower()
    return any(word in lowered for word in _FORMAT_WORDS)


# --- the prompt ------------------------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You label data for a project, following its instructions exactly. Read the task, then answer the "
    'question with a JSON object of the form {"answer": <your answer>} and nothing else.'
)


def build_messages(
    question: QuestionConfig, data: Mapping[str, Any], fields: Sequence[FieldSpec], instructions: str
) -> list[dict[str, str]]:
    """The chat messages for one task: the system's rules, then instructions, question and task."""
    parts = []
    if instructions.strip():
        parts.append(f"# Instructions\n\n{instructions.strip()}")
    parts.append(f"# Question\n\n{_describe_question(question)}")
    parts.append(f"# Task\n\n{_describe_task(question, data, fields)}")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


def _describe_question(question: QuestionConfig) -> str:
    lines = [question.prompt.strip() or f"Answer the question {question.name!r}."]
    options = getattr(question, "options", None)
    if question.type == "label":
        lines.append("Choose exactly one option; answer with its value (a string):")
    elif question.type == "labels":
        low, high = getattr(question, "min_selected", 0), getattr(question, "max_selected", None)
        bounds = f"at least {low}" + (f" and at most {high}" if high is not None else "")
        lines.append(f"Choose every option that applies ({bounds}); answer with a list of their values:")
    elif question.type == "rating":
        low, high = getattr(question, "min", 1), getattr(question, "max", 5)
        lines.append(f"Answer with a whole number from {low} to {high}.")
        captions = getattr(question, "labels", {}) or {}
        lines.extend(f"- {point}: {caption}" for point, caption in captions.items())
    else:
        lines.append(f"Answer as a `{question.type}` question expects.")
    for option in options or []:
        caption = f": {option.label}" if option.label and option.label != option.value else ""
        lines.append(f'- "{option.value}"{caption}')
    if question.candidate is not None and question.for_each:
        lines.append(f"The question is about candidate {question.candidate} of `{question.for_each}`.")
    return "\n".join(lines)


def _describe_task(question: QuestionConfig, data: Mapping[str, Any], fields: Sequence[FieldSpec]) -> str:
    named = fields or [FieldSpec(name=k, type="text") for k in data if isinstance(k, str)]  # type: ignore[arg-type]
    blocks = []
    for spec_field in named:
        value = data.get(spec_field.name)
        if value is None:
            continue
        title = spec_field.label or spec_field.name
        blocks.append(f"## {title} (`{spec_field.name}`)\n\n{_show(spec_field, value, question)}")
    return "\n\n".join(blocks) or "(the task has no data)"


def _show(spec_field: FieldSpec, value: Any, question: QuestionConfig) -> str:
    kind = str(spec_field.type)
    if kind == "image":
        return f"(an image, not shown: {value})"
    if kind == "conversation" and isinstance(value, list):
        return "\n".join(f"{t.get('role')}: {t.get('content')}" for t in value if isinstance(t, Mapping))
    if kind == "responses" and isinstance(value, list):
        chosen = (
            [question.candidate] if question.for_each == spec_field.name and question.candidate is not None else None
        )
        return "\n\n".join(
            f"### Candidate {i}\n\n{candidate_text(item) or ''}"
            for i, item in enumerate(value)
            if chosen is None or i in chosen
        )
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def answer_schema(question: QuestionConfig) -> dict[str, Any]:
    """The JSON schema of ``{"answer": ...}`` for structured output (only what servers widely support)."""
    values = [o.value for o in getattr(question, "options", None) or []]
    answer: dict[str, Any]
    if question.type == "label":
        answer = {"type": "string", "enum": values}
    elif question.type == "labels":
        answer = {"type": "array", "items": {"type": "string", "enum": values}}
    elif question.type == "rating":
        answer = {"type": "integer"}
    elif question.type in ("text",):
        answer = {"type": "string"}
    elif question.type == "number":
        answer = {"type": "number"}
    else:
        answer = {}
    return {"type": "object", "properties": {"answer": answer}, "required": ["answer"], "additionalProperties": False}


# --- reading the reply -----------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)
_ANSWER_KEY = re.compile(r'"answer"\s*:\s*')


def parse_answer(content: str, question: QuestionConfig) -> Any | None:
    """The ``answer`` of the reply: its JSON, a JSON object in its text, or (a ``label``) a bare option."""
    for candidate in _json_candidates(content):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, Mapping) and "answer" in parsed:
            return parsed["answer"]
    if question.type == "label":
        bare = content.strip().strip("\"'`.").strip()
        values = [o.value for o in getattr(question, "options", None) or []]
        matches = [v for v in values if v == bare] or [v for v in values if v.lower() == bare.lower()]
        if len(matches) == 1:
            return matches[0]
    return None


def _json_candidates(content: str) -> list[str]:
    text = content.strip()
    found = [text, *(m.group(1) for m in _FENCE.finditer(text))]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        found.append(text[start : end + 1])
    return found


def logprob_score(logprobs: Any) -> float | None:
    """The probability the model gave to the value of ``answer``: exp of the sum of the log-probabilities
    of the tokens that spell it (quotes included). None when the reply carries none or the value
    cannot be found in its tokens."""
    tokens = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not isinstance(tokens, list) or not tokens:
        return None
    pieces: list[tuple[int, int, float]] = []
    text = ""
    for token in tokens:
        if not isinstance(token, Mapping) or not isinstance(token.get("token"), str):
            return None
        value = token.get("logprob")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        pieces.append((len(text), len(text) + len(token["token"]), float(value)))
        text += token["token"]
    span = _answer_span(text)
    if span is None:
        return None
    start, end = span
    total = sum(lp for a, b, lp in pieces if a < end and b > start)
    return min(1.0, math.exp(total))


def _answer_span(text: str) -> tuple[int, int] | None:
    match = _ANSWER_KEY.search(text)
    if match is None:
        return None
    try:
        _value, end = json.JSONDecoder().raw_decode(text, match.end())
    except ValueError:
        return None
    return match.end(), end


def _first_choice(payload: Any) -> Mapping[str, Any] | None:
    choices = payload.get("choices") if isinstance(payload, Mapping) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return None
    return choices[0] if isinstance(choices[0].get("message"), Mapping) else None


def _count_usage(payload: Any, usage: Usage) -> None:
    reported = payload.get("usage") if isinstance(payload, Mapping) else None
    if not isinstance(reported, Mapping):
        return
    for key in ("prompt_tokens", "completion_tokens"):
        value = reported.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            setattr(usage, key, getattr(usage, key) + value)

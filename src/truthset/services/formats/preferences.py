"""Preference pairs for TRL (DPO, reward modelling): JSONL with ``prompt``, ``chosen``, ``rejected``.

The columns of TRL's preference dataset type. The prompt is the spec's first ``conversation``
field, or else its first ``text`` field. With a conversation the rows are in TRL's
*conversational* form: ``prompt`` is the chat (a list of ``{"role", "content"}`` messages) and
``chosen``/``rejected`` are each one assistant message ``[{"role": "assistant", "content": ...}]``.
With a text field they are in the *standard* form: three strings.

Pairs come from each ``ranking`` question's final answer (never from one worker's response):

- pairwise: one row, the winner chosen and the other rejected;
- order (N-way): the best candidate against each of the others (N - 1 rows); when several
  candidates share the top place, each of them against each lower one.

A tie is not a preference: a pairwise result the workers left tied, and candidates tied in an
order, give no row. Each row also has ``task_id``, ``unique_id``, ``question``, ``chosen_index`` and
``rejected_index`` (the candidates' places in the task's responses field) and ``confidence``: the
probability that ``chosen`` is the better one under the question's Bradley-Terry fit (for
pairwise, the result's confidence); with ``strength`` asked, ``strength`` (the most common
strength among the workers who picked the winner). TRL's trainers keep only the columns they use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import orjson

from truthset.errors import InvalidInput
from truthset.questions import QuestionConfig
from truthset.questions._registry import candidate_text
from truthset.services.formats._common import blocks, confidence, details, final_answer, require_questions, spec_of

NAME = "preferences"


class PreferencesWriter:
    name = NAME
    media_type = "application/x-ndjson"
    extension = "jsonl"

    def check(self, project: dict[str, Any]) -> None:
        require_questions(project, NAME, "ranking")
        prompt_field(project)

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO) -> int:
        questions = require_questions(project, NAME, "ranking")
        prompt, conversational = prompt_field(project)
        written = 0
        for block in blocks(rows):
            lines = []
            for row in block:
                pairs = [line for q in questions for line in _rows(row, q, prompt, conversational)]
                lines.extend(orjson.dumps(pair, option=orjson.OPT_APPEND_NEWLINE) for pair in pairs)
                written += bool(pairs)
            out.write(b"".join(lines))
        return written


def prompt_field(project: dict[str, Any]) -> tuple[str, bool]:
    """The field holding the prompt, and whether it is a conversation (TRL's conversational form)."""
    fields = spec_of(project).fields
    for kind in ("conversation", "text"):
        for field in fields:
            if str(field.type) == kind:
                return field.name, kind == "conversation"
    raise InvalidInput(
        "preferences: the spec has no conversation or text field to use as the prompt",
        details={"field": "format", "format": NAME},
    )


def _rows(row: dict[str, Any], question: QuestionConfig, prompt: str, conversational: bool) -> Iterator[dict]:
    answer = final_answer(row, question.name)
    candidates = (row.get("data") or {}).get(question.field) or []
    if answer is None or not candidates:
        return
    message = _as_messages if conversational else _as_text
    for chosen, rejected, sure in _pairs(row, question, answer):
        pair = {
            "prompt": _prompt((row.get("data") or {}).get(prompt), conversational),
            "chosen": message(candidates[chosen]),
            "rejected": message(candidates[rejected]),
            "task_id": row["task_id"],
            "unique_id": row.get("unique_id"),
            "question": question.name,
            "chosen_index": chosen,
            "rejected_index": rejected,
            "confidence": sure,
        }
        if question.mode == "pairwise" and question.strength:
            pair["strength"] = _strength(row, question.name)
        yield pair


def _pairs(row: dict[str, Any], question: QuestionConfig, answer: Any) -> list[tuple[int, int, float | None]]:
    """(chosen, rejected, confidence) of the final answer; ties give none."""
    if question.mode == "pairwise":
        return [(answer, 1 - answer, confidence(row, question.name))]
    groups = [g if isinstance(g, list) else [g] for g in answer]
    scores = details(row, question.name).get("scores") or {}
    best, rest = groups[0], [i for group in groups[1:] for i in group]
    return [(c, r, _p_better(scores, c, r, confidence(row, question.name))) for c in best for r in rest]


def _p_better(scores: Mapping[str, float], chosen: int, rejected: int, fallback: float | None) -> float | None:
    """Bradley-Terry: P(chosen beats rejected) = logistic(score_chosen - score_rejected)."""
    if str(chosen) not in scores or str(rejected) not in scores:
        return fallback
    return round(1.0 / (1.0 + math.exp(scores[str(rejected)] - scores[str(chosen)])), 6)


def _strength(row: dict[str, Any], question: str) -> str | None:
    votes = details(row, question).get("strength") or {}
    return max(votes, key=votes.get) if votes else None


def _prompt(value: Any, conversational: bool) -> Any:
    if not conversational:
        return value if isinstance(value, str) else ""
    return [{"role": turn["role"], "content": turn["content"]} for turn in value or []]


def _as_text(candidate: Any) -> str:
    return candidate_text(candidate) or ""


def _as_messages(candidate: Any) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": candidate_text(candidate) or ""}]


WRITER = PreferencesWriter()

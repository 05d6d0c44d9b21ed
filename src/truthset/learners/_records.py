"""The plain records every learner speaks: a task in, a prediction or an invalid answer out.

A learner never touches the database: the service layer hands it tasks (a key and the task's data)
and stores what comes back. An answer is checked against its question exactly as a person's is
(the question type's ``validate_answer``, then ``validate_answer_data`` against the task's data);
one that fails is an :class:`InvalidAnswer`, reported and never a :class:`Prediction`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from truthset.questions import AnswerError, QuestionConfig, get


@dataclass(frozen=True, slots=True)
class Task:
    """One task to learn from or to predict: its key (the task's id) and its data payload."""

    key: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's answer to one question of one task.

    ``score`` is the model's probability that the answer is right, in [0, 1], or None when the
    model declares none (the quality engine then weighs the model by its measured accuracy alone).
    ``details`` holds what else the model said (per-class probabilities, token usage, ...).
    """

    task_key: str
    question: str
    answer: Any
    score: float | None
    details: Mapping[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class InvalidAnswer:
    """An answer a model gave that does not fit the question (or no usable answer at all): reported, never stored."""

    task_key: str
    question: str
    reason: str
    raw: Any = None


def check_answer(question: QuestionConfig, value: Any, data: Mapping[str, Any] | None = None) -> Any:
    """``value`` validated and normalised as a person's answer to ``question`` would be.

    Raises :class:`~truthset.questions.AnswerError` naming the problem.
    """
    question_type = get(question.type)
    checked = question_type.validate_answer(question, value)
    against_data = getattr(question_type, "validate_answer_data", None)
    if data is not None and against_data is not None:
        against_data(question, checked, data)
    return checked


def check_score(value: Any) -> float | None:
    """A declared score as a probability, or :class:`AnswerError` (None stays None: undeclared)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AnswerError(f"score must be a number between 0 and 1 (got {value!r})")
    if not 0.0 <= value <= 1.0:
        raise AnswerError(f"score must be between 0 and 1 (got {value!r})")
    return float(value)

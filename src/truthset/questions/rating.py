"""`rating`: a number on an ordinal scale (Likert, 1-5 stars, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from truthset.questions._registry import Aggregate, AnswerError, QuestionConfig


class RatingQuestion(QuestionConfig):
    type: Literal["rating"] = "rating"
    min: int = Field(1, ge=-1000, le=1000)
    max: int = Field(5, ge=-1000, le=1000)
    labels: dict[str, str] = Field(
        default_factory=dict, description="Caption per scale point, e.g. {'1': 'bad'}."
    )

    @model_validator(mode="after")
    def _scale(self) -> RatingQuestion:
        if self.max <= self.min:
            raise ValueError("max must be greater than min")
        if self.max - self.min > 100:
            raise ValueError("a rating scale has at most 101 points")
        bad = [k for k in self.labels if not k.lstrip("-").isdigit() or not self.min <= int(k) <= self.max]
        if bad:
            raise ValueError(f"labels keys must be scale points between min and max: {bad}")
        return self


class RatingType:
    name: ClassVar[str] = "rating"
    config_model: ClassVar[type[QuestionConfig]] = RatingQuestion

    def validate_answer(self, question: RatingQuestion, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise AnswerError("must be a whole number")
        if not question.min <= value <= question.max:
            raise AnswerError(f"must be between {question.min} and {question.max}")
        return int(value)

    def aggregate(self, question: RatingQuestion, values: Sequence[Any], workers: Sequence[str]) -> Aggregate:
        """The median (ordinal-safe); confidence is the share of ratings within one point of it."""
        ratings = np.asarray(values, dtype=float)
        median = float(np.median(ratings))
        value = int(np.floor(median + 0.5))  # round half up, deterministic
        near = float(np.mean(np.abs(ratings - value) <= 1.0))
        return Aggregate(
            value=value,
            confidence=near,
            method="median",
            details={"mean": float(ratings.mean()), "std": float(ratings.std())},
        )


QUESTION = RatingType()

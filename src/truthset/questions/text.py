"""`text`: free text (transcription, SFT writing, rewrites)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from truthset.questions._registry import Aggregate, AnswerError, QuestionConfig
from truthset.questions.label import majority


class TextQuestion(QuestionConfig):
    type: Literal["text"] = "text"
    min_length: int = Field(0, ge=0)
    max_length: int = Field(10_000, ge=1, le=1_000_000)
    multiline: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> TextQuestion:
        if self.max_length < self.min_length:
            raise ValueError("max_length must be at least min_length")
        return self


class TextType:
    name: ClassVar[str] = "text"
    config_model: ClassVar[type[QuestionConfig]] = TextQuestion
    per_candidate: ClassVar[bool] = True  # may be asked `for_each` candidate of a responses field

    def validate_answer(self, question: TextQuestion, value: Any) -> str:
        if not isinstance(value, str):
            raise AnswerError("must be a string")
        text = value.strip()
        if len(text) < question.min_length:
            raise AnswerError(f"must be at least {question.min_length} characters")
        if len(text) > question.max_length:
            raise AnswerError(f"must be at most {question.max_length} characters")
        if not question.multiline and "\n" in text:
            raise AnswerError("must be a single line")
        return text

    def aggregate(
        self, question: TextQuestion, values: Sequence[Any], workers: Sequence[str], model: Any = None
    ) -> Aggregate:
        """Majority over whitespace-normalised texts; free text rarely agrees, so confidence is honest."""
        normalised = [" ".join(str(v).split()) for v in values]
        agg = majority(normalised, workers)
        return Aggregate(value=agg.value, confidence=agg.confidence, method="exact_match_majority", tie=agg.tie)


QUESTION = TextType()

"""`label`: choose exactly one of N options (classification)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from truthset.quality import vote_shares
from truthset.questions._options import OptionsMixin
from truthset.questions._registry import Aggregate, AnswerError, QuestionConfig


class LabelQuestion(OptionsMixin, QuestionConfig):
    type: Literal["label"] = "label"


class LabelType:
    name: ClassVar[str] = "label"
    config_model: ClassVar[type[QuestionConfig]] = LabelQuestion

    def validate_answer(self, question: LabelQuestion, value: Any) -> str:
        if not isinstance(value, str):
            raise AnswerError("must be one option value (a string)")
        if value not in question.option_values():
            raise AnswerError(f"{value!r} is not one of the options {question.option_values()}")
        return value

    def aggregate(self, question: LabelQuestion, values: Sequence[Any], workers: Sequence[str]) -> Aggregate:
        return majority(values, workers)


def majority(values: Sequence[Any], workers: Sequence[str]) -> Aggregate:
    """Majority vote through the quality engine; confidence is the winner's vote share."""
    shares = vote_shares(values)
    winner = max(shares, key=shares.__getitem__)  # the first maximum: ties to the smallest label
    return Aggregate(
        value=winner,
        confidence=float(shares[winner]),
        method="majority_vote",
        details={"votes": {str(k): float(v) for k, v in shares.items()}},
    )


QUESTION = LabelType()

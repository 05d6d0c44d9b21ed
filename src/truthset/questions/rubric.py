"""`rubric`: several criteria, each scored on its own scale, each with an optional comment.

An answer is ``{criterion: {"score": n, "comment": "..."}}``: every criterion scored, ``comment``
present only when the criterion takes comments and the worker wrote one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from truthset import quality
from truthset.questions._registry import NAME_PATTERN, Aggregate, AnswerError, QuestionConfig, Stated
from truthset.questions.rating import RATING_TOLERANCE, check_scale, fitted_rating, median_rating, scale_point

#: The longest comment on one criterion, in characters (after surrounding whitespace is removed).
MAX_COMMENT = 10_000


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Key of this criterion in an answer.")
    description: str = Field("", max_length=2000, description="What the criterion asks (shown to the worker).")
    min: int = Field(1, ge=-1000, le=1000)
    max: int = Field(5, ge=-1000, le=1000)
    labels: dict[str, str] = Field(default_factory=dict, description="Caption per scale point, e.g. {'1': 'poor'}.")
    comment: Literal["none", "optional", "required"] = Field("none", description="Whether a comment is asked.")

    @model_validator(mode="after")
    def _scale(self) -> Criterion:
        check_scale(self.min, self.max, self.labels)
        return self


class RubricQuestion(QuestionConfig):
    type: Literal["rubric"] = "rubric"
    criteria: list[Criterion] = Field(min_length=1, max_length=50)

    @field_validator("criteria")
    @classmethod
    def _unique(cls, criteria: list[Criterion]) -> list[Criterion]:
        names = [c.name for c in criteria]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate criterion names: {', '.join(duplicates)}")
        return criteria


class RubricType:
    name: ClassVar[str] = "rubric"
    config_model: ClassVar[type[QuestionConfig]] = RubricQuestion
    per_candidate: ClassVar[bool] = True  # may be asked `for_each` candidate of a responses field

    def validate_answer(self, question: RubricQuestion, value: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(value, Mapping):
            raise AnswerError('must be an object keyed by criterion: {"<criterion>": {"score": n}}')
        known = [c.name for c in question.criteria]
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise AnswerError(f"unknown criteria {unknown}; the criteria are {known}")
        return {c.name: _criterion_answer(c, value.get(c.name)) for c in question.criteria}

    def aggregate(
        self, question: RubricQuestion, values: Sequence[Any], workers: Sequence[str], model: Any = None
    ) -> Aggregate:
        """Each criterion like a ``rating``: with the criterion's fitted noise model once a refit made
        one (``model``: criterion -> :class:`truthset.quality.NumericWorkerModel`), the median score and
        Laplace's confidence before. The confidence is the weakest criterion's. A tied criterion is
        left out of the answer and listed in ``tie`` as ``{"criterion", "scores"}``; comments are free
        text and not aggregated.
        """
        fitted = model or {}
        per = {}
        for c in question.criteria:
            scores = [v[c.name]["score"] for v in values]
            per[c.name] = fitted_rating(scores, workers, fitted[c.name]) if c.name in fitted else median_rating(scores)
        tie = [{"criterion": name, "scores": agg.tie} for name, agg in per.items() if agg.tie]
        return Aggregate(
            value={name: {"score": agg.value} for name, agg in per.items() if not agg.tie},
            confidence=min(agg.confidence for agg in per.values()),
            method="worker_variance_per_criterion" if fitted else "median_per_criterion",
            details={
                "criteria": {
                    name: {"confidence": agg.confidence, "method": agg.method, **(agg.details or {})}
                    for name, agg in per.items()
                }
            },
            tie=tie or None,
        )

    def numeric_parts(self, question: RubricQuestion) -> dict[str, float]:
        """Each criterion is fitted as a rating of its own: right within one point."""
        return {c.name: RATING_TOLERANCE for c in question.criteria}

    def numeric_part_value(self, value: Any, part: str) -> Any:
        """A criterion's score in a (validated) rubric answer."""
        return value.get(part, {}).get("score") if isinstance(value, Mapping) else None

    def as_result(self, question: RubricQuestion, value: Any) -> Stated:
        """One answer as the aggregate states it: each criterion's score, without its comment."""
        return Stated({c.name: {"score": value[c.name]["score"]} for c in question.criteria if c.name in value})

    def gold_matches(self, question: RubricQuestion, expected: Any, given: Any) -> bool:
        """Right when every criterion has the gold score (comments are free text and not compared)."""
        return all(given[c.name]["score"] == expected[c.name]["score"] for c in question.criteria)

    def agreement(
        self, question: RubricQuestion, tasks: Any, workers: Any, values: Sequence[Any]
    ) -> dict[str, float | None]:
        """Krippendorff's alpha at the ordinal level, one figure per criterion."""
        return {
            f"krippendorff_alpha_ordinal.{c.name}": quality.krippendorff_alpha(
                (tasks, workers, [v[c.name]["score"] for v in values]), level="ordinal"
            )
            for c in question.criteria
        }


def _criterion_answer(criterion: Criterion, entry: Any) -> dict[str, Any]:
    name = criterion.name
    if entry is None:
        raise AnswerError(f"{name}: a score is required")
    if not isinstance(entry, Mapping):
        raise AnswerError(f'{name}: must be an object such as {{"score": {criterion.min}}}')
    extra = sorted(set(entry) - {"score", "comment"})
    if extra:
        raise AnswerError(f"{name}: unknown keys {extra}; a criterion has 'score' and 'comment'")
    try:
        score = scale_point(criterion.min, criterion.max, entry.get("score"))
    except AnswerError as exc:
        raise AnswerError(f"{name}.score: {exc}") from None
    comment = _comment(criterion, entry.get("comment"))
    return {"score": score, "comment": comment} if comment else {"score": score}


def _comment(criterion: Criterion, comment: Any) -> str:
    where = f"{criterion.name}.comment"
    if comment is not None and not isinstance(comment, str):
        raise AnswerError(f"{where}: must be a string")
    text = (comment or "").strip()
    if text and criterion.comment == "none":
        raise AnswerError(f"{where}: this criterion takes no comment")
    if not text and criterion.comment == "required":
        raise AnswerError(f"{where}: a comment is required")
    if len(text) > MAX_COMMENT:
        raise AnswerError(f"{where}: must be at most {MAX_COMMENT} characters")
    return text


QUESTION = RubricType()

"""`rating`: a number on an ordinal scale (Likert, 1-5 stars, ...)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from truthset.quality import NumericWorkerModel, weighted_median
from truthset.questions._registry import Aggregate, AnswerError, QuestionConfig

#: How far (in scale points) the truth may lie from a rating for the rating to count as right.
RATING_TOLERANCE = 1.0


class RatingQuestion(QuestionConfig):
    type: Literal["rating"] = "rating"
    min: int = Field(1, ge=-1000, le=1000)
    max: int = Field(5, ge=-1000, le=1000)
    labels: dict[str, str] = Field(default_factory=dict, description="Caption per scale point, e.g. {'1': 'bad'}.")

    @model_validator(mode="after")
    def _scale(self) -> RatingQuestion:
        check_scale(self.min, self.max, self.labels)
        return self


def check_scale(low: int, high: int, labels: dict[str, str]) -> None:
    """A scale from ``low`` to ``high`` (2 to 101 points) whose captions name points on it."""
    if high <= low:
        raise ValueError("max must be greater than min")
    if high - low > 100:
        raise ValueError("a rating scale has at most 101 points")
    bad = [k for k in labels if not k.lstrip("-").isdigit() or not low <= int(k) <= high]
    if bad:
        raise ValueError(f"labels keys must be scale points between min and max: {bad}")


class RatingType:
    name: ClassVar[str] = "rating"
    config_model: ClassVar[type[QuestionConfig]] = RatingQuestion
    per_candidate: ClassVar[bool] = True  # may be asked `for_each` candidate of a responses field

    def validate_answer(self, question: RatingQuestion, value: Any) -> int:
        return scale_point(question.min, question.max, value)

    def aggregate(
        self, question: RatingQuestion, values: Sequence[Any], workers: Sequence[str], model: Any = None
    ) -> Aggregate:
        if isinstance(model, NumericWorkerModel):
            return fitted_rating(values, workers, model)
        return median_rating(values)

    def numeric_tolerance(self, question: RatingQuestion) -> float:
        """A rating is right when the truth is within one point of it (the confidence's promise)."""
        return RATING_TOLERANCE


def scale_point(low: int, high: int, value: Any) -> int:
    """``value`` as a point of the scale ``low..high``, or :class:`AnswerError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise AnswerError("must be a whole number")
    if not low <= value <= high:
        raise AnswerError(f"must be between {low} and {high}")
    return int(value)


def median_rating(values: Sequence[Any]) -> Aggregate:
    """The median (ordinal-safe); confidence is the chance the next rating is within one point of it.

    That chance is Laplace's rule of succession over the ratings within one point, so one rating
    gives 2/3, never certainty.
    """
    # the standard library, not NumPy: a task has a handful of ratings, and NumPy's per-call
    # overhead was a tenth of the CPU of a submit that completes a task
    ratings = [float(v) for v in values]
    median = statistics.median(ratings)
    near = sum(abs(r - median) <= 1.0 for r in ratings)
    # a median between two points (an even split) is a tie: rounding it either way would pick a
    # side the ratings do not
    tie = None if median == math.floor(median) else [math.floor(median), math.ceil(median)]
    return Aggregate(
        value=None if tie else int(median),
        confidence=(near + 1) / (len(ratings) + 2),
        method="median",
        details={"mean": statistics.fmean(ratings), "std": statistics.pstdev(ratings)},
        tie=tie,
    )


def fitted_rating(values: Sequence[Any], workers: Sequence[str], model: NumericWorkerModel) -> Aggregate:
    """The ratings weighed by each rater's measured noise (the project's fitted model): the weighted
    median (a scale point someone gave, ordinal-safe), tied when exactly half the weight lies on each
    side of two points; the confidence is the model's probability that the truth is within one point.
    """
    ratings = [float(v) for v in values]
    precision, mean, sd = model.weigh(workers, ratings)
    median = weighted_median(ratings, precision)
    tie = list(map(int, median)) if isinstance(median, tuple) else None
    point = sum(tie) / 2 if tie else median
    return Aggregate(
        value=None if tie else int(point),
        confidence=model.probability_within(point, mean, sd, RATING_TOLERANCE),
        method=model.method,
        details={"estimate": round(mean, 6), "sd": round(sd, 6), "weights": _rounded(precision / precision.sum())},
        tie=tie,
    )


def _rounded(weights: Any) -> list[float]:
    return [round(float(w), 4) for w in weights]


QUESTION = RatingType()

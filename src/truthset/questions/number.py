"""`number`: a numeric answer within bounds (a count, an age, a price, a percentage, ...)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from truthset import quality
from truthset.questions._registry import Aggregate, AnswerError, QuestionConfig

#: How far (in steps) an answer may sit off the grid of ``min + k * step``: floats such as 0.1 are
#: not exact in binary, and 0.3 is 2.9999999999999996 steps of 0.1 from 0.
GRID_SLACK = 1e-9


class NumberQuestion(QuestionConfig):
    type: Literal["number"] = "number"
    min: float = Field(allow_inf_nan=False, description="The smallest answer allowed.")
    max: float = Field(allow_inf_nan=False, description="The largest answer allowed.")
    step: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Answers must be `min` plus a whole number of steps."
    )
    unit: str = Field("", max_length=50, description="Caption after the input, e.g. `kg`.")
    tolerance: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Answers this close agree (confidence, ties). Default: one step, else 1% of max - min.",
    )
    estimator: Literal["median", "mean"] = Field("median", description="How answers are combined.")

    @model_validator(mode="after")
    def _bounds(self) -> NumberQuestion:
        if self.max <= self.min:
            raise ValueError("max must be greater than min")
        if self.step is not None and self.step > self.max - self.min:
            raise ValueError("step must be at most max - min")
        return self

    def agreement_tolerance(self) -> float:
        if self.tolerance is not None:
            return self.tolerance
        return self.step if self.step is not None else (self.max - self.min) / 100


class NumberType:
    name: ClassVar[str] = "number"
    config_model: ClassVar[type[QuestionConfig]] = NumberQuestion
    per_candidate: ClassVar[bool] = True  # may be asked `for_each` candidate of a responses field

    def validate_answer(self, question: NumberQuestion, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise AnswerError("must be a number")
        if not question.min <= value <= question.max:
            raise AnswerError(f"must be between {_show(question.min)} and {_show(question.max)}")
        if question.step is not None and not _on_grid(question, float(value)):
            raise AnswerError(f"must be {_show(question.min)} plus a multiple of {_show(question.step)}")
        return _plain(value)

    def aggregate(
        self, question: NumberQuestion, values: Sequence[Any], workers: Sequence[str], model: Any = None
    ) -> Aggregate:
        """The ``estimator`` of :mod:`truthset.quality` (median or mean), snapped to the step grid.

        The confidence is Laplace's rule of succession over the answers within ``tolerance`` of the
        result, ``(near + 1) / (n + 2)``: one answer gives 2/3, never certainty. Two ties, never
        resolved by order: an even split whose two middle answers lie further apart than the
        tolerance (two clusters, the median between them), and a result exactly halfway between two
        grid points (``[3, 4]`` with step 1).
        """
        if isinstance(model, quality.NumericWorkerModel):
            return _fitted(question, values, workers, model)
        answers = [float(v) for v in values]
        estimate = _estimate(question.estimator, answers, workers)
        tolerance = question.agreement_tolerance()
        tie = _cluster_tie(answers, tolerance)
        value: int | float | None = None
        if tie is None:
            value, tie = _snap(question, estimate)
        near = sum(abs(a - estimate) <= tolerance * (1 + GRID_SLACK) for a in answers)
        return Aggregate(
            value=value,
            confidence=(near + 1) / (len(answers) + 2),
            method=question.estimator,
            details={
                "estimate": estimate,
                "mean": statistics.fmean(answers),
                "std": statistics.pstdev(answers),
                "tolerance": tolerance,
            },
            tie=tie,
        )

    def numeric_tolerance(self, question: NumberQuestion) -> float:
        """How close to the truth an answer must be to count as right: the question's tolerance."""
        return question.agreement_tolerance()

    def gold_matches(self, question: NumberQuestion, expected: Any, given: Any) -> bool:
        """A gold answer is matched by any answer within ``tolerance`` of it."""
        return abs(float(given) - float(expected)) <= question.agreement_tolerance() * (1 + GRID_SLACK)

    def agreement(
        self, question: NumberQuestion, tasks: Any, workers: Any, values: Sequence[Any]
    ) -> dict[str, float | None]:
        """Krippendorff's alpha at the interval level (squared differences) over the tasks."""
        alpha = quality.krippendorff_alpha((tasks, workers, [float(v) for v in values]), level="interval")
        return {"krippendorff_alpha_interval": alpha}


def _estimate(estimator: str, answers: list[float], workers: Sequence[str]) -> float:
    """One task's answers through the quality engine's numeric estimator."""
    fitted = (quality.Median() if estimator == "median" else quality.Mean()).fit(
        ([0] * len(answers), list(workers), answers)
    )
    return float(fitted.values_array_[0])


def _fitted(
    question: NumberQuestion, values: Sequence[Any], workers: Sequence[str], model: quality.NumericWorkerModel
) -> Aggregate:
    """The answers weighed by each worker's measured noise (the project's fitted model): the weighted
    ``estimator`` (median or mean) snapped to the step grid; the confidence is the model's probability
    that the truth lies within ``tolerance`` of the answer given. A weighted median split exactly in
    half between two answers further apart than the tolerance is a tie, as an even split is unfitted.
    """
    answers = [float(v) for v in values]
    precision, mean, sd = model.weigh(workers, answers)
    tolerance = question.agreement_tolerance()
    tie: list[int | float] | None = None
    estimate = mean
    if question.estimator == "median":
        median = quality.weighted_median(answers, precision)
        if isinstance(median, tuple) and median[1] - median[0] > tolerance * (1 + GRID_SLACK):
            tie = [_plain(median[0]), _plain(median[1])]
        estimate = sum(median) / 2 if isinstance(median, tuple) else median
    value: int | float | None = None
    if tie is None:
        value, tie = _snap(question, estimate)
    point = float(value) if value is not None else estimate
    return Aggregate(
        value=value,
        confidence=model.probability_within(point, mean, sd, tolerance),
        method=model.method,
        details={"estimate": estimate, "mean": round(mean, 9), "sd": round(sd, 9), "tolerance": tolerance},
        tie=tie,
    )


def _cluster_tie(answers: list[float], tolerance: float) -> list[int | float] | None:
    """The two middle answers of an even split when they do not agree: the median is between them."""
    if len(answers) % 2:
        return None
    ordered = sorted(answers)
    low, high = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
    return [_plain(low), _plain(high)] if high - low > tolerance * (1 + GRID_SLACK) else None


def _snap(question: NumberQuestion, estimate: float) -> tuple[int | float | None, list[int | float] | None]:
    """The estimate on the step grid; exactly halfway between two grid points is a tie of both."""
    if question.step is None:
        return _plain(estimate), None
    steps = (estimate - question.min) / question.step
    below = math.floor(steps + GRID_SLACK)
    if abs(steps - below - 0.5) <= GRID_SLACK * max(1.0, abs(steps)):
        return None, [_grid(question, below), _grid(question, below + 1)]
    return _grid(question, round(steps)), None


def _grid(question: NumberQuestion, k: int) -> int | float:
    """``min + k * step``, rounded to the decimals of min and step (0.1 * 3 is 0.30000000000000004)."""
    step = question.step or 1.0
    places = max(_decimals(question.min), _decimals(step))
    return _plain(round(question.min + k * step, places))


def _on_grid(question: NumberQuestion, value: float) -> bool:
    steps = (value - question.min) / (question.step or 1.0)
    return abs(steps - round(steps)) <= GRID_SLACK * max(1.0, abs(steps))


def _decimals(x: float) -> int:
    exponent = Decimal(repr(x)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _plain(x: float) -> int | float:
    """A whole number as an int (JSON ``3``, not ``3.0``), anything else as a float."""
    return int(x) if float(x).is_integer() else float(x)


def _show(x: float) -> str:
    return str(_plain(x))


QUESTION = NumberType()

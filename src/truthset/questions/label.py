"""`label`: choose exactly one of N options (classification)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, Literal

from truthset.quality import WorkerModel
from truthset.questions._options import OptionsMixin
from truthset.questions._registry import Aggregate, AnswerError, QuestionConfig


class LabelQuestion(OptionsMixin, QuestionConfig):
    type: Literal["label"] = "label"


class LabelType:
    name: ClassVar[str] = "label"
    config_model: ClassVar[type[QuestionConfig]] = LabelQuestion
    per_candidate: ClassVar[bool] = True  # may be asked `for_each` candidate of a responses field

    def validate_answer(self, question: LabelQuestion, value: Any) -> str:
        if not isinstance(value, str):
            raise AnswerError("must be one option value (a string)")
        if value not in question.option_values():
            raise AnswerError(f"{value!r} is not one of the options {question.option_values()}")
        return value

    def categories(self, question: LabelQuestion) -> list[str]:
        return question.option_values()

    def aggregate(
        self, question: LabelQuestion, values: Sequence[Any], workers: Sequence[str], model: WorkerModel | None = None
    ) -> Aggregate:
        """The posterior over the options from the project's fitted worker models (Dawid-Skene).

        Before the first fit (or when an answer is an option the fit never saw) every worker counts as
        right with probability ``PRIOR_ACCURACY``: one answer is then 0.7 sure, never certain.
        """
        if model is None or not model.knows(values):
            model = _prior_model(tuple(question.option_values()))
        return from_posterior(list(model.classes), model.posterior(workers, values), model.method)


#: How often a worker is assumed right before the project's first fit of worker models.
PRIOR_ACCURACY = 0.7
#: The method of that model (``WorkerModel.uninformed``).
PRIOR_METHOD = "prior"


@lru_cache(maxsize=1024)
def _prior_model(options: tuple[str, ...]) -> WorkerModel:
    return WorkerModel.uninformed(options, PRIOR_ACCURACY)


#: Top answers whose posteriors differ by at most this are a tie: the evidence cannot order them.
TIE_MARGIN = 0.02


def from_posterior(classes: list[Any], posterior: Any, method: str) -> Aggregate:
    """The answer of a posterior over ``classes``: its mode, or a tie when the top ones are too close."""
    probabilities = [float(p) for p in posterior]
    best = max(probabilities)
    tied = [c for c, p in zip(classes, probabilities, strict=True) if best - p <= TIE_MARGIN]
    return Aggregate(
        value=tied[0] if len(tied) == 1 else None,
        confidence=best,
        method=method,
        details={"posterior": {str(c): round(p, 6) for c, p in zip(classes, probabilities, strict=True)}},
        tie=tied if len(tied) > 1 else None,
    )


def majority(values: Sequence[Any], workers: Sequence[str]) -> Aggregate:
    """Majority vote for answers without worker models (free text, ...).

    The confidence is Laplace's rule of succession, ``(votes + 1) / (n + 2)``: the chance that one
    more worker would agree, which a single vote puts at 2/3, never at certainty. Equal top counts
    are a tie (no answer), never resolved by order.
    """
    counts = Counter(values)
    ranked = counts.most_common()
    top = ranked[0][1]
    tied = [value for value, count in ranked if count == top]
    n = len(values)
    return Aggregate(
        value=tied[0] if len(tied) == 1 else None,
        confidence=(top + 1) / (n + 2),
        method="majority_vote",
        details={"votes": {str(k): v / n for k, v in counts.items()}},
        tie=tied if len(tied) > 1 else None,
    )


QUESTION = LabelType()

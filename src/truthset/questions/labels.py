"""`labels`: choose any number of N options (multi-label)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from truthset.quality import WorkerModel
from truthset.questions._options import OptionsMixin
from truthset.questions._registry import NOT_SELECTED, SELECTED, Aggregate, AnswerError, QuestionConfig
from truthset.questions.label import PRIOR_METHOD, LabelQuestion
from truthset.questions.label import QUESTION as LABEL


class LabelsQuestion(OptionsMixin, QuestionConfig):
    type: Literal["labels"] = "labels"
    min_selected: int = Field(0, ge=0)
    max_selected: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> LabelsQuestion:
        if self.max_selected is not None and self.max_selected < self.min_selected:
            raise ValueError("max_selected must be at least min_selected")
        return self


class LabelsType:
    name: ClassVar[str] = "labels"
    config_model: ClassVar[type[QuestionConfig]] = LabelsQuestion
    per_candidate: ClassVar[bool] = True  # may be asked `for_each` candidate of a responses field

    def validate_answer(self, question: LabelsQuestion, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise AnswerError("must be a list of option values")
        allowed = question.option_values()
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise AnswerError(f"{unknown} not among the options {allowed}")
        if len(set(value)) != len(value):
            raise AnswerError("lists an option twice")
        if len(value) < question.min_selected:
            raise AnswerError(f"select at least {question.min_selected}")
        if question.max_selected is not None and len(value) > question.max_selected:
            raise AnswerError(f"select at most {question.max_selected}")
        # keep the spec's option order so equal selections compare equal
        return [v for v in allowed if v in value]

    def selectable_options(self, question: LabelsQuestion) -> list[str]:
        return question.option_values()

    def aggregate(
        self,
        question: LabelsQuestion,
        values: Sequence[Any],
        workers: Sequence[str],
        model: Mapping[str, WorkerModel] | None = None,
    ) -> Aggregate:
        """Each option decided on its own (selected or not) by the posterior of its yes/no votes.

        ``model``: the option's fitted yes/no worker model, by option (the project's refit fits one
        per option, Dawid-Skene as for a label question: a worker who over-selects an option is told
        from one who misses it). An option without one counts every worker as an average one.
        Confidence is the weakest option's; an option the votes cannot decide is listed in ``tie``
        and left out of the answer.
        """
        chosen: list[str] = []
        undecided: list[str] = []
        per_option: dict[str, float] = {}
        methods: set[str] = set()
        confidence = 1.0
        for option in question.option_values():
            votes = [SELECTED if option in v else NOT_SELECTED for v in values]
            agg = LABEL.aggregate(_YES_NO, votes, workers, (model or {}).get(option))
            per_option[option] = (agg.details or {})["posterior"][SELECTED]
            methods.add(agg.method)
            confidence = min(confidence, agg.confidence)
            if agg.value == SELECTED:
                chosen.append(option)
            elif agg.value is None:
                undecided.append(option)
        return Aggregate(
            value=chosen,
            confidence=confidence,
            method=_method(methods),
            details={"selected_probability": per_option},
            tie=undecided or None,
        )


_YES_NO = LabelQuestion(name="selected", options=[NOT_SELECTED, SELECTED])


def _method(methods: set[str]) -> str:
    """``per_option_posterior`` before a fit (every worker an average one), ``per_option_dawid_skene``
    with the options' fitted models; ``per_option_mixed`` if only some options had one."""
    if methods == {PRIOR_METHOD}:
        return "per_option_posterior"
    return f"per_option_{methods.pop()}" if len(methods) == 1 else "per_option_mixed"

QUESTION = LabelsType()

"""`spans`: entity spans on a text field (named-entity recognition).

An answer is a list of ``{"start", "end", "label"}``: half-open offsets ``[start, end)`` counted in
Unicode code points of the field's text (Python's ``str`` indexes; the widget converts from the
browser's UTF-16), stored sorted by offsets with exact duplicates removed. Aggregation matches the
spans of the workers (exact offsets, or character IoU at a threshold) and votes per matched span
(:func:`truthset.quality.aggregate_spans`); agreement is the pairwise span F1 of the workers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from truthset import quality
from truthset.questions._options import Option, parse_options
from truthset.questions._registry import (
    NAME_PATTERN,
    Aggregate,
    AnswerError,
    QuestionConfig,
    question_text,
    require_field,
)

#: The most spans one answer may hold: a bound on the work of matching and on a stored answer.
MAX_SPANS = 1000
DEFAULT_OVERLAP_THRESHOLD = 0.5
_KEYS = frozenset({"start", "end", "label"})


class SpansQuestion(QuestionConfig):
    type: Literal["spans"] = "spans"

    field: str | None = Field(  # never None once validated: _field_to_mark fills it in or refuses
        None,
        validate_default=True,
        pattern=NAME_PATTERN,
        description="The text field of the spec the spans are marked on "
        "(asked `for_each` candidate: the responses field, which is the default).",
    )
    labels: list[Option] = Field(min_length=1, max_length=100, description="The entity labels to choose from.")
    overlapping: bool = Field(False, description="Whether spans of one answer may overlap (nested entities).")
    min_spans: int = Field(0, ge=0, le=MAX_SPANS, description="The fewest spans an answer may have.")
    match: Literal["exact", "overlap"] = Field("exact", description="How spans of different workers are matched.")
    overlap_threshold: float | None = Field(
        None, gt=0, le=1, description="With match 'overlap': the character IoU at which two spans match (0.5)."
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _parse(cls, labels: Any) -> Any:
        return parse_options(labels) if isinstance(labels, list) else labels

    @field_validator("field")
    @classmethod
    def _field_to_mark(cls, field: str | None, info: ValidationInfo) -> str:
        for_each = info.data.get("for_each")
        if field is None:
            if for_each is None:
                raise ValueError("required: name the text field to mark spans on")
            return for_each
        if for_each is not None and field != for_each:
            raise ValueError(f"asked for each candidate of {for_each!r}, the spans are marked on it")
        return field

    @model_validator(mode="after")
    def _threshold_needs_overlap(self) -> SpansQuestion:
        if self.overlap_threshold is not None and self.match != "overlap":
            raise ValueError("overlap_threshold applies only with match 'overlap'")
        return self

    def label_values(self) -> list[str]:
        return [o.value for o in self.labels]

    def threshold(self) -> float:
        """The IoU at which two workers' spans match: 1.0 (the same offsets) for exact matching."""
        if self.match == "exact":
            return 1.0
        return self.overlap_threshold if self.overlap_threshold is not None else DEFAULT_OVERLAP_THRESHOLD


class SpansType:
    name: ClassVar[str] = "spans"
    config_model: ClassVar[type[QuestionConfig]] = SpansQuestion
    per_candidate: ClassVar[bool] = True  # may be asked `for_each` candidate of a responses field

    def check_spec(self, question: SpansQuestion, fields: Mapping[str, str]) -> None:
        """The question's ``field`` is a text field of the spec (or, asked for each candidate, responses)."""
        require_field(question, fields, "responses" if question.for_each else "text")

    def validate_answer(self, question: SpansQuestion, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise AnswerError('must be a list of spans {"start", "end", "label"}')
        if len(value) > MAX_SPANS:
            raise AnswerError(f"has {len(value)} spans; at most {MAX_SPANS} are allowed")
        spans = {_span(question, index, item) for index, item in enumerate(value)}
        ordered = _ordered(question, spans)
        if not question.overlapping:
            _refuse_overlaps(ordered)
        if len(ordered) < question.min_spans:
            raise AnswerError(f"mark at least {question.min_spans} span(s)")
        return [{"start": s, "end": e, "label": label} for s, e, label in ordered]

    def validate_answer_data(
        self, question: SpansQuestion, value: list[dict[str, Any]], data: Mapping[str, Any]
    ) -> None:
        """Every span lies within the task's text (its length in code points)."""
        text = question_text(question, data)
        if text is None:
            if value:
                where = question.field if question.candidate is None else f"{question.field}[{question.candidate}]"
                raise AnswerError(f"the task has no text in field {where!r} to mark spans on")
            return
        for span in value:
            if span["end"] > len(text):
                raise AnswerError(
                    f"span {span['start']}-{span['end']} ends past the end of the text ({len(text)} characters)"
                )

    def aggregate(
        self, question: SpansQuestion, values: Sequence[Any], workers: Sequence[str], model: Any = None
    ) -> Aggregate:
        """Spans kept by more than half of the workers, each with the majority of its labels.

        Undecided spans (marked by exactly half, equal top labels, offsets the evidence cannot
        choose between) are left out of the answer and listed in ``tie``, one list of alternatives
        per span. Confidence is the weakest decision's, by the rule of succession: a span kept or
        dropped by ``a`` of ``n`` workers is ``(a + 1) / (n + 2)`` sure; with no span marked at all,
        ``(n + 1) / (n + 2)``.
        """
        n = len(values)
        decisions = quality.aggregate_spans(
            [_tuples(v) for v in values],
            threshold=question.threshold(),
            by_label=question.overlapping,  # overlapping spans: each (span, label) is its own decision
            allow_overlap=question.overlapping,
        )
        kept = [
            _as_dict(*s)
            for s in _ordered(question, [(d.start, d.end, d.label) for d in decisions if d.status == "kept"])
        ]
        ties = [[_as_dict(*c) for c in _ordered(question, d.candidates)] for d in decisions if d.status == "tie"]
        return Aggregate(
            value=kept,
            confidence=min((d.confidence for d in decisions), default=(n + 1) / (n + 2)),
            method=f"span_vote_{question.match}",
            details={
                "workers": n,
                "threshold": question.threshold(),
                "spans": [_decision_details(d) for d in decisions],
            },
            tie=ties or None,
        )

    def agreement(self, question: SpansQuestion, tasks: Any, workers: Any, values: Sequence[Any]) -> dict[str, float]:
        """Pairwise span F1 of the workers (labels must agree): at exact offsets, and at the overlap threshold."""
        answers = [_tuples(v) for v in values]
        overlap = question.threshold() if question.match == "overlap" else DEFAULT_OVERLAP_THRESHOLD
        return {
            "span_f1_exact": quality.pairwise_span_f1(tasks, workers, answers, threshold=1.0),
            "span_f1_overlap": quality.pairwise_span_f1(tasks, workers, answers, threshold=overlap),
        }


def _span(question: SpansQuestion, index: int, item: Any) -> tuple[int, int, str]:
    where = f"[{index}]"
    if not isinstance(item, Mapping):
        raise AnswerError(f'{where} must be an object {{"start", "end", "label"}}')
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise AnswerError(f"{where} has unknown key(s) {', '.join(unknown)}; a span has start, end and label")
    missing = sorted(_KEYS - set(item))
    if missing:
        raise AnswerError(f"{where} needs {', '.join(missing)}")
    start, end = _offset(item["start"], f"{where}.start"), _offset(item["end"], f"{where}.end")
    if end <= start:
        raise AnswerError(f"{where}.end must be greater than start ({start}); got {end}")
    label = item["label"]
    if label not in question.label_values():
        raise AnswerError(f"{where}.label: {label!r} is not one of the labels {question.label_values()}")
    return start, end, label


def _offset(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise AnswerError(f"{where} must be a whole number (a character offset)")
    if value < 0:
        raise AnswerError(f"{where} must not be negative")
    return int(value)


def _ordered(question: SpansQuestion, spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans in the one stored order: by offsets, then in the spec's label order."""
    rank = {value: i for i, value in enumerate(question.label_values())}
    return sorted(spans, key=lambda s: (s[0], s[1], rank[s[2]]))


def _refuse_overlaps(ordered: list[tuple[int, int, str]]) -> None:
    for before, after in itertools.pairwise(ordered):
        if after[0] < before[1]:
            raise AnswerError(
                f"spans {before[0]}-{before[1]} ({before[2]}) and {after[0]}-{after[1]} ({after[2]}) overlap; "
                "this question allows no overlapping spans"
            )


def _tuples(value: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, str]]:
    return [(s["start"], s["end"], s["label"]) for s in value]


def _as_dict(start: int, end: int, label: Any) -> dict[str, Any]:
    return {"start": start, "end": end, "label": label}


def _decision_details(d: quality.SpanDecision) -> dict[str, Any]:
    return {
        **_as_dict(d.start, d.end, d.label),
        "status": d.status,
        "marked": d.marked,
        "agree": d.agree,
        "confidence": round(d.confidence, 6),
    }


QUESTION = SpansType()

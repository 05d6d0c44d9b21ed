"""The question-type registry: the one extension point of truthset.

A question type bundles the config model of the question (validated when a project is created), the
validation of an answer, and the aggregation of several answers into one result with a confidence.
Built-in types and third-party plugins register the same way: through the ``truthset.questions``
entry-point group (see ``pyproject.toml``), or by calling :func:`register` at run time.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

ENTRY_POINT_GROUP = "truthset.questions"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"


class AnswerError(ValueError):
    """An answer does not fit its question; the message names the problem."""


class QuestionConfig(BaseModel):
    """What every question has. A type's config model subclasses this."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Key of this question in an answer.")
    type: str = Field(description="The question type, e.g. `label`.")
    prompt: str = Field("", max_length=2000, description="What the annotator is asked (Markdown).")
    required: bool = Field(True, description="Whether every response must answer this question.")
    for_each: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="A `responses` field with a `count`: ask this question once for each of its candidates, "
        "as questions `<name>-0`, `<name>-1`, ... (the candidate's index in the task's data).",
    )
    candidate: int | None = Field(
        None,
        ge=0,
        description="Set by truthset, never in a spec: on each copy of a question asked `for_each` candidate, "
        "the candidate's index in the task's data.",
        json_schema_extra={"readOnly": True},
    )

    @property
    def group(self) -> str:
        """The name the spec gave this question (a copy asked for one candidate has ``-<index>`` added)."""
        return self.name.removesuffix(f"-{self.candidate}") if self.candidate is not None else self.name


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One question's aggregated answer over several responses.

    ``tie`` lists the answers the evidence cannot tell apart; then ``value`` is None: a tie is never
    resolved by option order (position bias poisons preference data).
    """

    value: Any
    confidence: float
    method: str
    details: dict[str, Any] | None = None
    tie: list[Any] | None = None


class QuestionType(Protocol):
    name: ClassVar[str]
    config_model: ClassVar[type[QuestionConfig]]

    def validate_answer(self, question: Any, value: Any) -> Any:
        """Return the normalised answer or raise :class:`AnswerError`."""

    def aggregate(self, question: Any, values: Sequence[Any], workers: Sequence[str], model: Any = None) -> Aggregate:
        """Combine the answers of several workers to one task.

        ``model`` is the project's fitted :class:`truthset.quality.WorkerModel` of this question when
        the type is categorical (has ``categories``) and a fit exists; otherwise None.
        """


class MeasuresAgreement(Protocol):
    """Optional: a type that is not categorical says how well workers agree, in its own measures.

    ``agreement(question, tasks, workers, values)`` gets one entry per answer (task codes and worker
    codes as integer arrays, the stored answers as a list) and returns ``{measure: value or None}``,
    e.g. ``{"span_f1": 0.82}``; the agreement figures serve it under ``measures``.
    """

    def agreement(self, question: Any, tasks: Any, workers: Any, values: Sequence[Any]) -> dict[str, float | None]: ...


class MatchesGold(Protocol):
    """Optional: what counts as right against a gold answer, when plain equality is too strict.

    ``gold_matches(question, expected, given)`` gets the question's config, the gold answer and a
    worker's (both validated) and returns True when the worker's counts as right (a number within
    its tolerance, a rubric's scores without its comments).
    """

    def gold_matches(self, question: Any, expected: Any, given: Any) -> bool: ...


@dataclass(frozen=True)
class Stated:
    """One answer as a result states it (:class:`StatesAsResult`): the answer, the tied answers
    (then ``answer`` is None), and what an aggregate of that one answer records beside it."""

    answer: Any
    tie: list[Any] | None = None
    details: dict[str, Any] | None = None


class StatesAsResult(Protocol):
    """Optional: a type whose result states an answer in another form than a response gives it.

    ``as_result(question, value)`` turns one stored answer into a :class:`Stated`, as the type's
    aggregate states its answer: a reviewer's fix becomes the result's answer this way (a ranking's
    winner index, not the response's ``{"winner", "shown_order"}``; a rubric's scores without
    comments). Without it, a response's answer is the result's as it is.
    """

    def as_result(self, question: Any, value: Any) -> Stated: ...


class ValidatesAgainstData(Protocol):
    """Optional: a type whose answers refer to a task's data checks them against it.

    ``validate_answer_data(question, value, data)`` gets the answer as ``validate_answer`` returned
    it and the task's data, and raises :class:`AnswerError` (e.g. a span past the end of its text).
    It runs wherever the task is known: a submitted response, a review's fix, a gold answer.
    (A type whose question names a field of the spec checks that field with ``check_spec``.)
    """

    def validate_answer_data(self, question: Any, value: Any, data: Any) -> None: ...


def require_field(question: Any, fields: Mapping[str, str], kind: str) -> None:
    """A ``check_spec`` for a question drawn on one field: ``question.field`` must be a ``kind`` field.

    ``fields`` maps the spec's field names to their types. Raises ValueError naming ``field``.
    """
    found = fields.get(question.field)
    if found is None:
        raise ValueError(f"field: {question.field!r} is not a field of the spec (fields: {', '.join(fields)})")
    if found != kind:
        raise ValueError(
            f"field: {question.field!r} is {_a(found)} field; {_a(question.type)} question needs {_a(kind)} field"
        )


#: Keys of a candidate that hold its text (a candidate is a string or an object with one of them).
TEXT_KEYS = ("text", "content")


def candidate_text(item: Any) -> str | None:
    """A candidate's text: the string itself, or its ``text`` or ``content``."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        for key in TEXT_KEYS:
            if isinstance(item.get(key), str):
                return item[key]
    return None


def question_text(question: Any, data: Mapping[str, Any]) -> str | None:
    """The text a question about one text reads: its ``field``, or its candidate of a ``responses`` field."""
    value = data.get(question.field)
    if question.candidate is None:
        return value if isinstance(value, str) else None
    if isinstance(value, list) and question.candidate < len(value):
        return candidate_text(value[question.candidate])
    return None


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def selectable_options_of(question_type: QuestionType, question: Any) -> list[str] | None:
    """The options of a multi-select question, each fitted as its own yes/no question, or None.

    A type whose answer selects any of some options defines ``selectable_options(question) ->
    list[str]``; the platform then fits a yes/no worker model per option (see :func:`option_key`).
    """
    options = getattr(question_type, "selectable_options", None)
    return None if options is None else list(options(question))


#: The two classes of an option's yes/no worker model.
NOT_SELECTED, SELECTED = "no", "yes"


def option_key(question: str, option: str) -> str:
    """The name an option's yes/no worker model is stored and passed under: ``tags[urgent]``.

    Question names never hold brackets (``NAME_PATTERN``), so no question can take it.
    """
    return f"{question}[{option}]"


def compared_pairs_of(question_type: QuestionType, question: Any, value: Any) -> list[tuple[int, int, str]] | None:
    """The pairs of candidates an answer decides, or None when the type compares nothing.

    A type whose answers order candidates (``ranking``) defines ``compared_pairs(question, value) ->
    [(i, j, "first" or "second")]`` (``i < j``: which of the two the answer put above). The platform
    then fits a two-class worker model over every decided pair of a project, each pair of each task
    an item, and passes it to ``aggregate``.
    """
    pairs = getattr(question_type, "compared_pairs", None)
    return None if pairs is None else list(pairs(question, value))


def compares(question_type: QuestionType) -> bool:
    """Whether a type's answers compare candidates (see :func:`compared_pairs_of`)."""
    return hasattr(question_type, "compared_pairs")


def numeric_keys_of(question_type: QuestionType, question: Any) -> dict[str, float] | None:
    """The numeric worker models a question is fitted with: model key -> tolerance, or None.

    A type whose answer is a number (a rating, a count) defines ``numeric_tolerance(question) ->
    float``: how close to the truth an answer must be to count as right; its model is stored under the
    question's name. A type whose answer holds several numbers (a rubric's criteria) defines
    ``numeric_parts(question) -> {part: tolerance}`` and ``numeric_part_value(value, part) -> float``;
    each part gets a model of its own under ``option_key(question, part)``. The platform fits a
    :class:`truthset.quality.NumericWorkerModel` (each worker's noise) per key, and a confidence is
    the probability that the truth lies within the tolerance.
    """
    whole = getattr(question_type, "numeric_tolerance", None)
    if whole is not None:
        return {question.name: float(whole(question))}
    parts = getattr(question_type, "numeric_parts", None)
    if parts is None:
        return None
    return {option_key(question.name, part): float(tolerance) for part, tolerance in parts(question).items()}


def numeric_values_of(question_type: QuestionType, question: Any, value: Any) -> dict[str, float]:
    """A (validated) answer's numbers by model key (see :func:`numeric_keys_of`); empty when it has none."""
    if getattr(question_type, "numeric_tolerance", None) is not None:
        return {question.name: float(value)} if _is_number(value) else {}
    parts = getattr(question_type, "numeric_parts", None)
    if parts is None:
        return {}
    out = {}
    for part in parts(question):
        number = question_type.numeric_part_value(value, part)  # type: ignore[attr-defined]
        if _is_number(number):
            out[option_key(question.name, part)] = float(number)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def categories_of(question_type: QuestionType, question: Any) -> list[str] | None:
    """The answer classes of a categorical question (fitted with Dawid-Skene), or None.

    A type is categorical when it defines ``categories(question) -> list[str]``: its answers are one
    of those values, and the platform fits worker confusion matrices for it.
    """
    categories = getattr(question_type, "categories", None)
    return None if categories is None else list(categories(question))


_lock = threading.Lock()
_types: dict[str, QuestionType] = {}
_loaded = False


def register(question_type: QuestionType) -> None:
    """Add a question type (a plugin calls this, or names it in the entry-point group)."""
    with _lock:
        _types[question_type.name] = question_type


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        register(entry_point.load())
    _loaded = True


def get(name: str) -> QuestionType:
    _load_entry_points()
    try:
        return _types[name]
    except KeyError:
        raise KeyError(f"unknown question type {name!r}; known types: {', '.join(names())}") from None


def names() -> list[str]:
    _load_entry_points()
    return sorted(_types)


def describe(name: str) -> dict[str, Any]:
    """A type's name, one-line description (its module's docstring) and config JSON schema."""
    question_type = get(name)
    module = sys.modules.get(type(question_type).__module__)
    doc = (getattr(question_type, "description", None) or (module.__doc__ if module else None) or "").strip()
    return {
        "name": name,
        "description": doc.splitlines()[0] if doc else "",
        "config_schema": question_type.config_model.model_json_schema(),
    }

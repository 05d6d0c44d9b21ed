"""A project's spec: the fields shown to a worker and the questions asked."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from truthset.questions import _registry
from truthset.questions._registry import NAME_PATTERN, Aggregate, AnswerError, QuestionConfig


class FieldType(StrEnum):
    TEXT = "text"
    IMAGE = "image"  # an http(s) URL, or `media:<id>` of an uploaded image
    HTML = "html"  # shown sandboxed and sanitised
    RESPONSES = "responses"  # a list of model responses to compare or rate


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Key of this field in a task's data.")
    type: FieldType
    label: str = Field("", max_length=200, description="Caption shown above the field.")
    required: bool = True


class Spec(BaseModel):
    """Fields (what is shown) and questions (what is asked). Question configs depend on their type."""

    model_config = ConfigDict(extra="forbid")

    fields: list[FieldSpec] = Field(min_length=1, max_length=50)
    questions: list[dict[str, Any]] = Field(min_length=1, max_length=50)

    @field_validator("questions")
    @classmethod
    def _typed_questions(cls, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        typed = []
        for index, raw in enumerate(questions):
            typed.append(_validate_question(index, raw).model_dump())
        return typed

    @model_validator(mode="after")
    def _unique_names(self) -> Spec:
        for kind, names in (
            ("field", [f.name for f in self.fields]),
            ("question", [q["name"] for q in self.questions]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"duplicate {kind} names: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _question_fields(self) -> Spec:
        """A question drawn on a field (`boxes` on an image, ...) names a field of the right type.

        The type says which field types it takes in ``field_types``; a type without it has no field.
        """
        kinds = {f.name: f.type.value for f in self.fields}
        for index, question in enumerate(self.questions):
            wanted = getattr(_registry.get(question["type"]), "field_types", None)
            if wanted is not None and kinds.get(question.get("field")) not in wanted:
                kind = " or ".join(wanted)
                name = question.get("field")
                raise ValueError(f"questions[{index}].field: {name!r} is not a {kind} field of the spec")
        return self

    def question_configs(self) -> list[QuestionConfig]:
        return [_registry.get(q["type"]).config_model.model_validate(q) for q in self.questions]


def _validate_question(index: int, raw: Any) -> QuestionConfig:
    if not isinstance(raw, Mapping):
        raise ValueError(f"questions[{index}] must be an object")
    type_name = raw.get("type")
    if not isinstance(type_name, str):
        raise ValueError(f"questions[{index}].type is required")
    try:
        question_type = _registry.get(type_name)
    except KeyError as exc:
        raise ValueError(f"questions[{index}].type: {exc.args[0]}") from None
    try:
        return question_type.config_model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f".{part}" for part in first["loc"])  # empty for a whole-question error
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"questions[{index}]{where}: {message}") from None


class CompiledSpec:
    """A validated spec ready for fast use: answer and task-data validation, aggregation."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        parsed = Spec.model_validate(spec)
        self.fields = parsed.fields
        self.questions = parsed.question_configs()
        self._types = {q.name: _registry.get(q.type) for q in self.questions}
        self._field_names = frozenset(f.name for f in self.fields)
        self._categorical = {
            q.name: classes
            for q in self.questions
            if (classes := _registry.categories_of(self._types[q.name], q)) is not None
        }

    def validate_answer(self, answer: Any) -> dict[str, Any]:
        """Check a response's answer against the questions; return it normalised."""
        if not isinstance(answer, Mapping):
            raise AnswerError("answer must be an object keyed by question name")
        unknown = sorted(set(answer) - set(self._types))
        if unknown:
            raise AnswerError(f"unknown question(s) in answer: {', '.join(unknown)}")
        normalised: dict[str, Any] = {}
        for question in self.questions:
            value = answer.get(question.name)
            if value is None:
                if question.required:
                    raise AnswerError(f"{question.name}: an answer is required")
                continue
            try:
                normalised[question.name] = self._types[question.name].validate_answer(question, value)
            except AnswerError as exc:
                raise AnswerError(f"{question.name}: {exc}") from None
        return normalised

    def validate_data(self, data: Any) -> dict[str, Any]:
        """Check a task's data payload against the fields; raise ValueError naming the field."""
        if not isinstance(data, Mapping):
            raise ValueError("data must be an object keyed by field name")
        if not self._field_names.issuperset(data):
            unknown = sorted(set(data) - self._field_names)
            raise ValueError(f"unknown field(s) in data: {', '.join(unknown)} (put extra keys in metadata)")
        for spec_field in self.fields:
            value = data.get(spec_field.name)
            if value is None:
                if spec_field.required:
                    raise ValueError(f"data.{spec_field.name} is required")
                continue
            _check_field_value(spec_field, value)
        return dict(data)

    def categorical(self) -> dict[str, list[str]]:
        """Answer classes of each categorical question (the ones worker models are fitted for).

        Worked out once per spec (every submit asks); the caller must not change it.
        """
        return self._categorical

    def aggregate(
        self,
        answers: list[Mapping[str, Any]],
        workers: list[str],
        models: Mapping[str, Any] | None = None,
    ) -> dict[str, Aggregate]:
        """Each question's aggregate over the responses that answered it (``models``: fitted per question)."""
        out: dict[str, Aggregate] = {}
        for question in self.questions:
            pairs = [(a[question.name], w) for a, w in zip(answers, workers, strict=True) if question.name in a]
            if not pairs:
                continue
            values, who = zip(*pairs, strict=True)
            model = (models or {}).get(question.name)
            out[question.name] = self._types[question.name].aggregate(question, list(values), list(who), model)
        return out


def _check_field_value(spec_field: FieldSpec, value: Any) -> None:
    name = f"data.{spec_field.name}"
    if spec_field.type in (FieldType.TEXT, FieldType.HTML):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
    elif spec_field.type is FieldType.IMAGE:
        if not isinstance(value, str) or not _is_image_reference(value):
            raise ValueError(f"{name} must be an http(s) URL or media:<id> of an uploaded image")
    elif spec_field.type is FieldType.RESPONSES:
        if not isinstance(value, list) or not value:
            raise ValueError(f"{name} must be a non-empty list of responses")
        for i, item in enumerate(value):
            if isinstance(item, str):
                continue
            if not isinstance(item, Mapping) or not isinstance(item.get("text"), str):
                raise ValueError(f"{name}[{i}] must be a string or an object with a string 'text'")


def _is_image_reference(value: str) -> bool:
    if value.startswith("media:"):
        return len(value) > len("media:")
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)

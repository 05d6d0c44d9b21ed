"""A project's spec: the fields shown to a worker and the questions asked."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from truthset.questions import _registry
from truthset.questions._keys import hotkey_conflicts, widget_key_conflicts
from truthset.questions._registry import NAME_PATTERN, TEXT_KEYS, Aggregate, AnswerError, QuestionConfig


class FieldType(StrEnum):
    TEXT = "text"
    IMAGE = "image"  # an http(s) URL, or `media:<id>` of an uploaded image
    HTML = "html"  # shown sandboxed and sanitised
    RESPONSES = "responses"  # a list of model responses to compare or rate
    CONVERSATION = "conversation"  # a chat transcript: [{"role": "user"|"assistant"|"system", "content"}]


#: The most candidates a ``responses`` field with a ``count`` may have: each question asked for each
#: candidate becomes that many questions.
MAX_CANDIDATES = 10


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Key of this field in a task's data.")
    type: FieldType
    label: str = Field("", max_length=200, description="Caption shown above the field.")
    required: bool = True
    count: int | None = Field(
        None,
        ge=2,
        le=MAX_CANDIDATES,
        description="A `responses` field: how many candidates every task has (needed to ask a question `for_each`).",
    )

    @model_validator(mode="after")
    def _count_of_responses(self) -> FieldSpec:
        if self.count is not None and self.type is not FieldType.RESPONSES:
            raise ValueError(f"count: only a responses field has a count ({self.name!r} is a {self.type} field)")
        return self


class Spec(BaseModel):
    """Fields (what is shown) and questions (what is asked). Question configs depend on their type."""

    model_config = ConfigDict(extra="forbid")

    fields: list[FieldSpec] = Field(min_length=1, max_length=50)
    questions: list[dict[str, Any]] = Field(min_length=1, max_length=50)

    @field_validator("questions")
    @classmethod
    def _typed_questions(cls, questions: list[dict[str, Any]], info: ValidationInfo) -> list[dict[str, Any]]:
        fields = {f.name: str(f.type) for f in info.data["fields"]} if "fields" in info.data else None
        counts = {f.name: f.count for f in info.data["fields"]} if "fields" in info.data else {}
        typed = []
        for index, raw in enumerate(questions):
            question = _validate_question(index, raw)
            if fields is not None:  # None when the fields were refused: that error is reported instead
                _check_for_each(index, question, fields, counts)
                _check_spec(index, question, fields)
            typed.append(question.model_dump(exclude={"candidate"}))
        return typed

    @field_validator("questions")
    @classmethod
    def _free_workbench_keys(cls, questions: list[dict[str, Any]], info: ValidationInfo) -> list[dict[str, Any]]:
        """A new spec may not give a workbench key (s, r, n, p) to an option, nor a key the
        question's own widget uses (a type's ``widget_keys``): it would do two things.

        A stored spec is loaded with ``context={"stored": True}`` and keeps loading: specs saved
        before this rule still open, and the workbench keeps its own key (see ``_keys``).
        """
        if (info.context or {}).get("stored"):
            return questions
        conflicts = hotkey_conflicts(questions)
        if conflicts:
            raise ValueError(conflicts[0].message())
        for index, question in enumerate(questions):
            try:
                widget_keys = getattr(_registry.get(question["type"]), "widget_keys", None)
            except KeyError:
                continue  # an unknown type is refused, with its name, by _typed_questions
            if widget_keys and (messages := widget_key_conflicts(index, question, widget_keys)):
                raise ValueError(messages[0])
        return questions

    @model_validator(mode="after")
    def _unique_names(self) -> Spec:
        for kind, names in (
            ("field", [f.name for f in self.fields]),
            ("question", [q.name for q in expand(self.question_configs(), self.fields)]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"duplicate {kind} names: {', '.join(duplicates)}")
        return self

    def question_configs(self) -> list[QuestionConfig]:
        """The questions as the spec gives them (a question asked ``for_each`` candidate once)."""
        return [_registry.get(q["type"]).config_model.model_validate(q) for q in self.questions]


def expand(questions: list[QuestionConfig], fields: list[FieldSpec]) -> list[QuestionConfig]:
    """The questions a task asks: a question asked ``for_each`` candidate of a responses field becomes
    one copy per candidate, named ``<name>-<index>`` with ``candidate=<index>``, in its place.

    Each copy is an ordinary question everywhere (answers, results, worker models, policy, export),
    so a per-candidate grade is aggregated, calibrated and reviewed like any question. The index is
    the candidate's in the task's data, never where a worker saw it (positions are shuffled).
    """
    counts = {f.name: f.count for f in fields}
    out: list[QuestionConfig] = []
    for question in questions:
        if question.for_each is None:
            out.append(question)
            continue
        for index in range(counts.get(question.for_each) or 0):
            out.append(question.model_copy(update={"name": candidate_name(question.name, index), "candidate": index}))
    return out


def candidate_name(name: str, index: int) -> str:
    """The name of the copy of question ``name`` asked for candidate ``index`` (see :func:`expand`)."""
    return f"{name}-{index}"


def asked_questions(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, type) of each question a task asks (as :func:`expand` names them), read from a stored
    spec as it is: no question type is loaded (they bring SciPy), for a writer that needs only the
    names and types, in an export process."""
    counts = {field["name"]: field.get("count") for field in spec["fields"]}
    asked: list[tuple[str, str]] = []
    for question in spec["questions"]:
        candidates = question.get("for_each")
        if candidates is None:
            asked.append((question["name"], question["type"]))
        else:
            copies = range(counts.get(candidates) or 0)
            asked.extend((candidate_name(question["name"], index), question["type"]) for index in copies)
    return asked


def expanded_questions(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A stored spec's questions as a task asks them (see :func:`expand`), as dicts with ``group``."""
    parsed = Spec.model_validate(spec, context={"stored": True})
    return [{**q.model_dump(), "group": q.group} for q in expand(parsed.question_configs(), parsed.fields)]


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
        # empty for a whole-question error; list positions as [i]: questions[0].criteria[1].max
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"questions[{index}]{where}: {message}") from None


def _check_for_each(
    index: int, question: QuestionConfig, fields: Mapping[str, str], counts: Mapping[str, int | None]
) -> None:
    """A question asked ``for_each`` candidate names a responses field with a count, and its type
    can be asked about one candidate (a type says so with ``per_candidate = True``)."""
    where = f"questions[{index}]"
    if question.candidate is not None:
        raise ValueError(f"{where}.candidate: set by truthset for each candidate of `for_each`, never in a spec")
    if question.for_each is None:
        return
    if not getattr(_registry.get(question.type), "per_candidate", False):
        raise ValueError(f"{where}.for_each: a {question.type} question cannot be asked for each candidate")
    found = fields.get(question.for_each)
    if found != FieldType.RESPONSES:
        what = "not a field of the spec" if found is None else f"a {found} field"
        raise ValueError(f"{where}.for_each: {question.for_each!r} is {what}; for_each names a responses field")
    if counts.get(question.for_each) is None:
        raise ValueError(
            f"{where}.for_each: the responses field {question.for_each!r} needs a `count` "
            "(how many candidates every task has) to ask a question for each"
        )


def _check_spec(index: int, question: QuestionConfig, fields: Mapping[str, str]) -> None:
    """A type with ``check_spec(question, fields)`` checks the fields its question refers to.

    ``fields`` maps each field's name to its type (``spans`` needs a text field, ``ranking`` a
    responses field). Run in the ``questions`` validator, so the error names
    ``spec.questions[i].<setting>``.
    """
    check = getattr(_registry.get(question.type), "check_spec", None)
    if check is None:
        return
    try:
        check(question, fields)
    except ValueError as exc:
        raise ValueError(f"questions[{index}].{exc}") from None


class CompiledSpec:
    """A validated spec ready for fast use: answer and task-data validation, aggregation."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        # a stored spec: rules added since it was saved (workbench keys) must not stop it loading
        parsed = Spec.model_validate(spec, context={"stored": True})
        self.fields = parsed.fields
        self.questions = expand(parsed.question_configs(), parsed.fields)
        self._types = {q.name: _registry.get(q.type) for q in self.questions}
        self._by_name = {q.name: q for q in self.questions}
        self._field_names = frozenset(f.name for f in self.fields)
        self._image_fields = [f for f in self.fields if f.type is FieldType.IMAGE]
        # types that see the task's data: ranking shuffles its candidates per assignment
        self._data_aware = [q for q in self.questions if hasattr(self._types[q.name], "bind")]
        self._categorical = {
            q.name: classes
            for q in self.questions
            if (classes := _registry.categories_of(self._types[q.name], q)) is not None
        }
        self._selectable = {
            q.name: options
            for q in self.questions
            if (options := _registry.selectable_options_of(self._types[q.name], q)) is not None
        }
        self._numeric = {
            q.name: keys
            for q in self.questions
            if (keys := _registry.numeric_keys_of(self._types[q.name], q)) is not None
        }
        self._compared = [q.name for q in self.questions if _registry.compares(self._types[q.name])]
        # a question fitted by part (a rubric's criteria): its parts, as option_key names them
        self._numeric_parts = {
            name: [key[len(name) + 1 : -1] for key in keys] for name, keys in self._numeric.items() if name not in keys
        }

    def validate_answer(
        self, answer: Any, data: Mapping[str, Any] | None = None, *, only_given: bool = False
    ) -> dict[str, Any]:
        """Check a response's answer against the questions; return it normalised.

        With the task's ``data``, a type that defines ``validate_answer_data`` also checks the answer
        against it (span offsets within the text, ...). ``only_given``: a required question may be
        missing (a model's prediction answers the questions it predicts).
        """
        if not isinstance(answer, Mapping):
            raise AnswerError("answer must be an object keyed by question name")
        unknown = sorted(set(answer) - set(self._types))
        if unknown:
            raise AnswerError(f"unknown question(s) in answer: {', '.join(unknown)}")
        normalised: dict[str, Any] = {}
        for question in self.questions:
            value = answer.get(question.name)
            if value is None:
                if question.required and not only_given:
                    raise AnswerError(f"{question.name}: an answer is required")
                continue
            try:
                normalised[question.name] = self._validate_one(question, value, data)
            except AnswerError as exc:
                raise AnswerError(f"{question.name}: {exc}") from None
        return normalised

    def _validate_one(self, question: QuestionConfig, value: Any, data: Mapping[str, Any] | None) -> Any:
        question_type = self._types[question.name]
        checked = question_type.validate_answer(question, value)
        against_data = getattr(question_type, "validate_answer_data", None)
        if data is not None and against_data is not None:
            against_data(question, checked, data)
        return checked

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
        for question in self.questions:
            check = getattr(self._types[question.name], "validate_data", None)
            if check is not None:
                check(question, data)
        return dict(data)

    @property
    def has_images(self) -> bool:
        return bool(self._image_fields)

    def media_named(self, data: Mapping[str, Any]) -> dict[str, str]:
        """The uploaded images a task's (checked) data names: media id -> the image field naming it."""
        return {
            value.removeprefix(MEDIA_PREFIX): spec_field.name
            for spec_field in self._image_fields
            if isinstance(value := data.get(spec_field.name), str) and value.startswith(MEDIA_PREFIX)
        }

    def bind_answer(self, answer: dict[str, Any], data: Mapping[str, Any], seed: str | None) -> dict[str, Any]:
        """A validated answer checked against the task's data, with what the server records for it.

        ``seed`` is the assignment the answer belongs to: a ranking records the order it showed the
        candidates in (``shown_order``), worked out here, never taken from the client. None: the
        answer was given on a page that shows the data as imported (a reviewer's fix).
        """
        bound = dict(answer)
        for question in self._data_aware:
            if question.name in bound:
                try:
                    bound[question.name] = self._types[question.name].bind(question, bound[question.name], data, seed)
                except AnswerError as exc:
                    raise AnswerError(f"{question.name}: {exc}") from None
        return bound

    def comparable(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        """An answer without the keys the server fills in (to compare a replay with what was stored)."""
        out = dict(answer)
        for question in self._data_aware:
            keys = getattr(self._types[question.name], "server_keys", ())
            if isinstance(out.get(question.name), Mapping):
                out[question.name] = {k: v for k, v in out[question.name].items() if k not in keys}
        return out

    def as_result(self, answer: Mapping[str, Any]) -> dict[str, _registry.Stated]:
        """Each question of one stored answer as a result states it (see
        :class:`~truthset.questions._registry.StatesAsResult`): a reviewer's fix in the result."""
        out: dict[str, _registry.Stated] = {}
        for name, value in answer.items():
            question, convert = self._by_name.get(name), getattr(self._types.get(name), "as_result", None)
            out[name] = convert(question, value) if question is not None and convert else _registry.Stated(value)
        return out

    def worker_view(self, data: Mapping[str, Any], seed: str) -> tuple[dict[str, Any], dict[str, list[int]]]:
        """A task's data as a worker sees it, and the order each compared field is shown in.

        Candidates of a field compared blind (a ranking without ``show_models``) keep only their
        text: a model name or id would give the comparison away.
        """
        shown = dict(data)
        display: dict[str, list[int]] = {}
        blind: set[str] = set()
        for question in self._data_aware:
            question_type = self._types[question.name]
            display.update(question_type.display(question, data, seed))
            blind |= question_type.blind_fields(question)
        for name in blind:
            if isinstance(shown.get(name), list):
                shown[name] = [_blind(item) for item in shown[name]]
        return shown, display

    def categorical(self) -> dict[str, list[str]]:
        """Answer classes of each categorical question (the ones worker models are fitted for).

        Worked out once per spec (every submit asks); the caller must not change it.
        """
        return self._categorical

    def has_worker_models(self) -> bool:
        """Whether any question is fitted with worker models (categorical, multi-select, numeric, ranking)."""
        return bool(self._categorical or self._selectable or self._numeric or self._compared)

    def numeric(self) -> dict[str, dict[str, float]]:
        """Each numeric question's model keys and their tolerances (a numeric worker model is fitted
        per key: the question's name, or ``option_key(question, part)`` for each part of a rubric).
        Worked out once per spec; do not change it."""
        return self._numeric

    def compared(self) -> list[str]:
        """The questions whose answers compare candidates (a worker model of compared pairs is fitted
        for each). Worked out once per spec; do not change it."""
        return self._compared

    def compared_pairs(self, question: str, value: Any) -> list[tuple[int, int, str]]:
        """The pairs of candidates an answer to a comparing question decides (see :meth:`compared`)."""
        return _registry.compared_pairs_of(self._types[question], self._by_name[question], value) or []

    def numeric_values(self, question: str, value: Any) -> dict[str, float]:
        """An answer's numbers by model key (see :meth:`numeric`); empty when it has none."""
        return _registry.numeric_values_of(self._types[question], self._by_name[question], value)

    def selectable(self) -> dict[str, list[str]]:
        """Options of each multi-select question: each option gets a yes/no worker model of its own,
        stored under ``option_key(question, option)``. Worked out once per spec; do not change it."""
        return self._selectable

    def aggregate(
        self,
        answers: list[Mapping[str, Any]],
        workers: list[str],
        models: Mapping[str, Any] | None = None,
    ) -> dict[str, Aggregate]:
        """Each question's aggregate over the responses that answered it (``models``: fitted per
        question; a multi-select question gets its options' models, by option)."""
        out: dict[str, Aggregate] = {}
        models = models or {}
        for question in self.questions:
            pairs = [(a[question.name], w) for a, w in zip(answers, workers, strict=True) if question.name in a]
            if not pairs:
                continue
            values, who = zip(*pairs, strict=True)
            model = self._model_of(question.name, models)
            out[question.name] = self._types[question.name].aggregate(question, list(values), list(who), model)
        return out

    def _model_of(self, name: str, models: Mapping[str, Any]) -> Any:
        """The fitted model a question's type aggregates with: the question's own, or, for one fitted
        by option or part (a multi-select's options, a rubric's criteria), a dict of them by option."""
        options = self._selectable.get(name) or self._numeric_parts.get(name)
        if options is None:
            return models.get(name)
        fitted = {option: models[key] for option in options if (key := _registry.option_key(name, option)) in models}
        return fitted or None


def _check_field_value(spec_field: FieldSpec, value: Any) -> None:
    name = f"data.{spec_field.name}"
    if spec_field.type in (FieldType.TEXT, FieldType.HTML):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        if spec_field.required and not value.strip():
            # an empty text would show annotators nothing to judge, and its answers would be noise
            raise ValueError(f"{name} is required and is empty (give it text, or make the field optional)")
    elif spec_field.type is FieldType.IMAGE:
        if not isinstance(value, str) or not _is_image_reference(value):
            raise ValueError(f"{name} must be an http(s) URL or media:<id> of an uploaded image")
    elif spec_field.type is FieldType.RESPONSES:
        if not isinstance(value, list) or not value:
            raise ValueError(f"{name} must be a non-empty list of responses")
        if spec_field.count is not None and len(value) != spec_field.count:
            raise ValueError(f"{name} must have exactly {spec_field.count} responses (it has {len(value)})")
        for i, item in enumerate(value):
            if isinstance(item, str):
                continue
            if not isinstance(item, Mapping) or not any(isinstance(item.get(k), str) for k in ("text", "content")):
                raise ValueError(f"{name}[{i}] must be a string or an object with a string 'text' or 'content'")
    elif spec_field.type is FieldType.CONVERSATION:
        _check_conversation(name, value)


ROLES = ("user", "assistant", "system")


def _check_conversation(name: str, value: Any) -> None:
    """A chat transcript: a non-empty list of ``{"role", "content"}`` turns (other keys are kept)."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name} must be a non-empty list of turns")
    for i, turn in enumerate(value):
        if not isinstance(turn, Mapping):
            raise ValueError(f"{name}[{i}] must be an object with role and content")
        if turn.get("role") not in ROLES:
            raise ValueError(f"{name}[{i}].role must be one of {', '.join(ROLES)}")
        if not isinstance(turn.get("content"), str):
            raise ValueError(f"{name}[{i}].content must be a string")


def _blind(item: Any) -> Any:
    """A candidate without what could name its model: only its text."""
    if not isinstance(item, Mapping):
        return item
    return {k: item[k] for k in TEXT_KEYS if k in item}


#: An image field's value that names a file in the media store: ``"media:<id>"`` (the other kind
#: of value is an http(s) URL).
MEDIA_PREFIX = "media:"


def media_reference(media_id: str) -> str:
    """The value an image field holds for a file in the media store."""
    return f"{MEDIA_PREFIX}{media_id}"


def _is_image_reference(value: str) -> bool:
    if value.startswith(MEDIA_PREFIX):
        return len(value) > len(MEDIA_PREFIX)
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)

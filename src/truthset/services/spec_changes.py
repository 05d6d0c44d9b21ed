"""What may change in the spec of a project that already holds work (docs/guide.md, "Editing a spec").

Stored data was written against the spec: tasks' data against its fields, responses and gold
answers against its questions. A change may reword and extend, never take away or reinterpret:

- fields, once the project has tasks: captions (``label``) change, a required field becomes
  optional, an optional field is added. Removing, renaming or retyping a field, changing any other
  setting of it (a responses field's ``count``), making one required or adding a required one is
  refused (stored tasks would no longer fit).
- questions, once the project has answers (responses or gold answers): prompts, captions, hotkeys
  and descriptions change, options are added or reordered, a required question becomes optional,
  an optional question is added. Removing or renaming a question or an option, changing a type or
  any other setting (a scale, a field it is drawn on, a limit...), making a question required or
  adding a required one is refused (stored answers would no longer fit, or would change meaning).

A refused change is a :class:`Conflict` (409, code ``spec_change_refused``) whose message names
the first change refused, and whose details name the field (``spec.questions[1].options``).
Before a project has tasks (or answers, for the questions) anything may change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from truthset.errors import Conflict
from truthset.questions import Spec

#: Settings that only change what a worker reads, at any depth of a question or field. (Not a
#: number's ``unit``: answers given in kilograms do not become grams.)
DISPLAY_KEYS = frozenset({"prompt", "label", "hotkey", "description"})

HINT = "create a new project (Duplicate on the project page) for a spec that changes what answers mean"


class _Refused(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def check_change(old: Mapping[str, Any], new: Mapping[str, Any], *, has_tasks: bool, has_answers: bool) -> None:
    """Raise :class:`Conflict` naming the first change the project's stored work forbids."""
    try:
        if has_tasks:
            _check_fields(old["fields"], new["fields"])
        if has_answers:
            _check_questions(_compiled(old), _compiled(new))
    except _Refused as exc:
        reason = "tasks" if exc.where.startswith("spec.fields") else "answers"
        raise Conflict(
            f"{exc.where}: {exc.message}: the project has {reason} that use it ({HINT})",
            details={"field": exc.where},
            code="spec_change_refused",
        ) from None


def _compiled(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The spec's questions as written (one asked for each candidate once, its index the spec's),
    with defaults filled and options as objects, so equal settings compare equal."""
    parsed = Spec.model_validate(spec, context={"stored": True})
    return [q.model_dump(mode="json") for q in parsed.question_configs()]


def _check_fields(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    new_by_name = {f["name"]: (i, f) for i, f in enumerate(new)}
    for field in old:
        name = field["name"]
        if name not in new_by_name:
            raise _Refused("spec.fields", f"field {name!r} was removed or renamed")
        index, changed = new_by_name[name]
        where = f"spec.fields[{index}]"
        if changed["type"] != field["type"]:
            raise _Refused(f"{where}.type", f"field {name!r} changed type from {field['type']} to {changed['type']}")
        if changed.get("required", True) and not field.get("required", True):
            raise _Refused(f"{where}.required", f"field {name!r} became required")
        for key in sorted(set(field) | set(changed)):  # e.g. a responses field's count of candidates
            if key not in ("name", "type", "label", "required") and field.get(key) != changed.get(key):
                raise _Refused(
                    f"{where}.{key}", f"field {name!r} changed {key} from {field.get(key)!r} to {changed.get(key)!r}"
                )
    known = {f["name"] for f in old}
    for index, field in enumerate(new):
        if field["name"] not in known and field.get("required", True):
            raise _Refused(
                f"spec.fields[{index}].required", f"new field {field['name']!r} must be optional (required: false)"
            )


def _check_questions(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    new_by_name = {q["name"]: (i, q) for i, q in enumerate(new)}
    for question in old:
        name = question["name"]
        if name not in new_by_name:
            raise _Refused("spec.questions", f"question {name!r} was removed or renamed")
        index, changed = new_by_name[name]
        where = f"spec.questions[{index}]"
        if changed["type"] != question["type"]:
            raise _Refused(
                f"{where}.type", f"question {name!r} changed type from {question['type']} to {changed['type']}"
            )
        if changed["required"] and not question["required"]:
            raise _Refused(f"{where}.required", f"question {name!r} became required")
        for key in sorted(set(question) | set(changed)):
            if key not in ("name", "type", "required"):
                _compare(f"{where}.{key}", key, question.get(key), changed.get(key), name)
    known = {q["name"] for q in old}
    for index, question in enumerate(new):
        if question["name"] not in known and question["required"]:
            raise _Refused(
                f"spec.questions[{index}].required",
                f"new question {question['name']!r} must be optional (required: false)",
            )


def _compare(where: str, key: str, old: Any, new: Any, question: str) -> None:
    """One setting of a question: display text may change, option lists may grow, nothing else."""
    if key in DISPLAY_KEYS and not isinstance(old, list):
        return
    if key == "labels" and isinstance(old, dict) and isinstance(new, dict):
        return  # a rating's captions per scale point
    if _is_option_list(old) and _is_option_list(new):
        _compare_options(where, old, new, question)
        return
    if _is_named_list(old) and _is_named_list(new):
        _compare_named(where, old, new, question)
        return
    if old != new:
        raise _Refused(where, f"question {question!r} changed {key} from {old!r} to {new!r}")


def _is_option_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(o, dict) and "value" in o for o in value)


def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(o, dict) and "name" in o for o in value)


def _compare_options(where: str, old: list[dict[str, Any]], new: list[dict[str, Any]], question: str) -> None:
    by_value = {o["value"]: o for o in new}
    for option in old:
        value = option["value"]
        if value not in by_value:
            raise _Refused(where, f"question {question!r} lost option {value!r} (removed or renamed)")
        for key in sorted(set(option) | set(by_value[value])):
            if key not in DISPLAY_KEYS and key != "value" and option.get(key) != by_value[value].get(key):
                raise _Refused(where, f"question {question!r} changed {key} of option {value!r}")


def _compare_named(where: str, old: list[dict[str, Any]], new: list[dict[str, Any]], question: str) -> None:
    """Rubric criteria: the same names; each one's display text may change, its scale may not."""
    by_name = {c["name"]: c for c in new}
    if set(by_name) != {c["name"] for c in old}:
        raise _Refused(where, f"question {question!r} changed its list of {where.rsplit('.', 1)[-1]}")
    for item in old:
        for key in sorted(set(item) | set(by_name[item["name"]])):
            _compare(f"{where}.{key}", key, item.get(key), by_name[item["name"]].get(key), question)

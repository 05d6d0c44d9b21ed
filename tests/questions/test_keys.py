"""Spec hotkeys may not take the workbench's own keys; stored specs that do still load."""

from __future__ import annotations

from typing import Any

import pytest

from truthset.questions import (
    WORKBENCH_KEYS,
    CompiledSpec,
    HotkeyConflict,
    Spec,
    hotkey_conflicts,
    without_workbench_keys,
)


def spec(*hotkeys: str | None) -> dict[str, Any]:
    options = [{"value": f"o{i}", "hotkey": key} for i, key in enumerate(hotkeys)]
    return {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [
            {"name": "first", "type": "label", "options": ["a", "b"]},
            {"name": "safe", "type": "label", "options": options},
        ],
    }


def test_the_workbench_keys_are_one_list() -> None:
    assert WORKBENCH_KEYS == {"skip": "s", "release": "r", "next": "n", "previous": "p"}


@pytest.mark.parametrize("key", ["s", "r", "n", "p", "N", "S"])
def test_a_new_spec_may_not_give_a_workbench_key_to_an_option(key: str) -> None:
    with pytest.raises(ValueError, match=r"questions\[1\]\.options\[1\]\.hotkey: ") as caught:
        Spec.model_validate(spec("y", key))
    assert "a hotkey may not be one of the workbench keys s, r, n, p" in str(caught.value)


def test_other_hotkeys_are_fine() -> None:
    Spec.model_validate(spec("y", "x"))
    Spec.model_validate(spec(None, "1"))


def test_a_stored_spec_with_a_workbench_hotkey_still_loads() -> None:
    stored = Spec.model_validate(spec("y", "x")).model_dump()
    stored["questions"][1]["options"][1]["hotkey"] = "n"  # saved before the rule existed
    compiled = CompiledSpec(stored)
    assert compiled.validate_answer({"first": "a", "safe": "o1"}) == {"first": "a", "safe": "o1"}


def test_conflicts_are_listed_and_dropped_for_the_page() -> None:
    questions = [
        {"name": "first", "type": "label", "options": [{"value": "a", "hotkey": None}]},
        {"name": "safe", "type": "label", "options": [{"value": "yes", "hotkey": "y"}, {"value": "no", "hotkey": "N"}]},
    ]
    assert hotkey_conflicts(questions) == [HotkeyConflict("questions[1].options[1].hotkey", "safe", "no", "N", "next")]
    cleaned = without_workbench_keys(questions[1])
    assert cleaned["options"] == [{"value": "yes", "hotkey": "y"}, {"value": "no", "hotkey": None}]
    assert questions[1]["options"][1]["hotkey"] == "N"  # a copy: the stored spec is untouched

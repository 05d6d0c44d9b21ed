"""The workbench's own keys, and the spec hotkeys that would take them over.

One list: spec validation refuses a hotkey on it, and the workbench page is served the same list
for its key handling and its help (a stored spec from before the rule keeps loading; the workbench
then keeps its key and drops the spec's hotkey, and the help says so).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: action -> key. ``Enter`` (submit) and ``Esc`` (release) are not single characters, so no
#: hotkey can take them.
WORKBENCH_KEYS: dict[str, str] = {"skip": "s", "release": "r", "next": "n", "previous": "p"}

#: action -> what it does, for messages and the help.
KEY_ACTIONS: dict[str, str] = {
    "skip": "skip the task",
    "release": "release the task",
    "next": "next question",
    "previous": "previous question",
}

_RESERVED = {key: action for action, key in WORKBENCH_KEYS.items()}


@dataclass(frozen=True, slots=True)
class HotkeyConflict:
    """A spec hotkey equal (in any case) to a workbench key."""

    path: str  # e.g. ``questions[0].options[1].hotkey``
    question: str
    item: str  # the value (or label) of what the hotkey picks, e.g. an option's value
    key: str
    action: str

    def message(self) -> str:
        keys = ", ".join(WORKBENCH_KEYS.values())
        return (
            f"{self.path}: {self.key!r} is the workbench's key for {KEY_ACTIONS[self.action]}; "
            f"a hotkey may not be one of the workbench keys {keys}"
        )


def _hotkeys(node: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """Every ``hotkey`` string under ``node`` (any type's config: options, candidates, ...)."""
    if isinstance(node, Mapping):
        for name, value in node.items():
            if name == "hotkey" and isinstance(value, str):
                yield f"{path}.hotkey", node, value
            else:
                yield from _hotkeys(value, f"{path}.{name}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _hotkeys(value, f"{path}[{index}]")


def hotkey_conflicts(questions: Sequence[Mapping[str, Any]]) -> list[HotkeyConflict]:
    """The hotkeys of ``questions`` (as in a spec) that are workbench keys."""
    conflicts = []
    for index, question in enumerate(questions):
        for path, holder, key in _hotkeys(question, f"questions[{index}]"):
            action = _RESERVED.get(key.lower())
            if action is not None:
                item = str(holder.get("value") or holder.get("label") or holder.get("name") or "")
                conflicts.append(HotkeyConflict(path, str(question.get("name", "")), item, key, action))
    return conflicts


def widget_key_conflicts(index: int, question: Mapping[str, Any], widget_keys: Mapping[str, str]) -> list[str]:
    """Messages for the hotkeys of question ``index`` that its own widget already uses.

    A type whose widget has keys of its own (the shapes widgets' ``[`` ``]`` ``+`` ``-`` ``0``) names
    them in ``widget_keys`` (key -> what it does); a label hotkey on one of them would silently take
    it over, as a hotkey on a workbench key would.
    """
    messages = []
    for path, _holder, key in _hotkeys(question, f"questions[{index}]"):
        if key in widget_keys:
            messages.append(
                f"{path}: {key!r} is this question's key to {widget_keys[key]}; "
                f"a hotkey may not be one of {', '.join(widget_keys)}"
            )
    return messages


def without_workbench_keys(question: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``question`` whose hotkeys on workbench keys are dropped (the item keeps its number)."""
    copied = copy.deepcopy(dict(question))
    for _path, holder, key in list(_hotkeys(copied, "")):
        if key.lower() in _RESERVED:
            holder["hotkey"] = None  # type: ignore[index]  # a dict of the copy
    return copied

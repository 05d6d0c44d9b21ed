"""Question types: the one extension point (see DESIGN.md)."""

from truthset.questions._keys import (
    KEY_ACTIONS,
    WORKBENCH_KEYS,
    HotkeyConflict,
    hotkey_conflicts,
    without_workbench_keys,
)
from truthset.questions._registry import (
    NOT_SELECTED,
    SELECTED,
    Aggregate,
    AnswerError,
    QuestionConfig,
    QuestionType,
    describe,
    get,
    names,
    option_key,
    register,
)
from truthset.questions._spec import (
    MEDIA_PREFIX,
    CompiledSpec,
    FieldSpec,
    FieldType,
    Spec,
    asked_questions,
    expanded_questions,
    media_reference,
)

__all__ = [
    "KEY_ACTIONS",
    "MEDIA_PREFIX",
    "NOT_SELECTED",
    "SELECTED",
    "WORKBENCH_KEYS",
    "Aggregate",
    "AnswerError",
    "CompiledSpec",
    "FieldSpec",
    "FieldType",
    "HotkeyConflict",
    "QuestionConfig",
    "QuestionType",
    "Spec",
    "asked_questions",
    "describe",
    "expanded_questions",
    "get",
    "hotkey_conflicts",
    "media_reference",
    "names",
    "option_key",
    "register",
    "without_workbench_keys",
]

"""Question types: the one extension point (see DESIGN.md)."""

from truthset.questions._registry import (
    Aggregate,
    AnswerError,
    QuestionConfig,
    QuestionType,
    describe,
    get,
    names,
    register,
)
from truthset.questions._spec import CompiledSpec, FieldSpec, FieldType, Spec

__all__ = [
    "Aggregate",
    "AnswerError",
    "CompiledSpec",
    "FieldSpec",
    "FieldType",
    "QuestionConfig",
    "QuestionType",
    "Spec",
    "describe",
    "get",
    "names",
    "register",
]

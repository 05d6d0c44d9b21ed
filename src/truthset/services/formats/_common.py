"""What the training-format writers share: the project's questions, a row's final answer, blocks.

Every writer writes a task's *final* answer: the aggregated result (``row["result"]``), never one
worker's response. A question with no final answer on a task (not answered, or a tie the quality
engine left undecided, see ``result.questions[name].tie``) contributes nothing for that task.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from truthset.errors import InvalidInput
from truthset.questions import CompiledSpec, QuestionConfig

#: Rows handled together (one media query per block of rows, never one per task).
BLOCK = 500


def spec_of(project: dict[str, Any]) -> CompiledSpec:
    return CompiledSpec(project["spec"])


def questions_of(project: dict[str, Any], *types: str) -> list[QuestionConfig]:
    """The project's questions of ``types``, in spec order."""
    return [q for q in spec_of(project).questions if q.type in types]


def require_questions(project: dict[str, Any], writer: str, *types: str) -> list[QuestionConfig]:
    """The project's questions of ``types``; a 422 naming why the format cannot hold the project:
    the format, the types it writes, and the questions (with their types) the spec asks instead,
    so that the user sees at once which format would suit (``coco: ... (its questions: sentiment
    (label))``) without opening the spec."""
    found = questions_of(project, *types)
    if not found:
        kinds = " or ".join(types)
        # the spec's questions as written (a for_each question once, not once per candidate)
        asked = {q["name"]: q["type"] for q in project["spec"]["questions"]}
        listed = ", ".join(f"{name} ({kind})" for name, kind in asked.items()) or "none"
        raise InvalidInput(
            f"{writer}: the spec has no {kinds} question to write in this format (its questions: {listed})",
            # "questions" as only_questions' 422 gives them (names), their types beside
            details={"field": "format", "format": writer, "questions": list(asked), "question_types": asked},
        )
    return found


def field_types(project: dict[str, Any]) -> dict[str, str]:
    """The spec's field names and their types, in spec order."""
    return {f.name: str(f.type) for f in spec_of(project).fields}


def final_answer(row: dict[str, Any], question: str) -> Any:
    """The task's aggregated answer to ``question``, or None (unanswered, or an undecided tie)."""
    answers = (row.get("result") or {}).get("answer") or row.get("answer") or {}
    return answers.get(question)


def confidence(row: dict[str, Any], question: str) -> float | None:
    """The result's confidence in its answer to ``question`` (0..1), or None."""
    return ((row.get("result") or {}).get("confidence") or {}).get(question)


def details(row: dict[str, Any], question: str) -> dict[str, Any]:
    """What the question's aggregator recorded beside its answer (scores, per-span decisions...)."""
    question_result = ((row.get("result") or {}).get("questions") or {}).get(question) or {}
    return question_result.get("details") or {}


def task_name(row: dict[str, Any]) -> str:
    """How an error message names a task: its unique_id when it has one, else its id."""
    return f"task {row.get('unique_id') or row['task_id']}"


def blocks(rows: Iterable[dict[str, Any]], size: int = BLOCK) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(rows)
    while block := list(itertools.islice(iterator, size)):
        yield block

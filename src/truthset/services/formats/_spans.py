"""Span answers (``spans`` questions) for CoNLL and spaCy: the text they are marked on, and entities.

Spans are code-point offsets ``[start, end)`` of the text field. Both formats tag tokens, so a span
covers every token it touches (spaCy's ``alignment_mode="expand"``). Both formats also give a token
at most one entity (a CoNLL tag column, spaCy's ``doc.ents``): where spans overlap (a question with
``overlapping: true``; for spaCy's ``ents`` also two spans questions), the longest span is kept,
then the earliest (spaCy's ``filter_spans`` rule).
"""

from __future__ import annotations

from typing import Any

from truthset.errors import InvalidInput
from truthset.questions import QuestionConfig
from truthset.services.formats._common import final_answer, require_questions


def text_field(writer: str, project: dict[str, Any]) -> tuple[str, list[QuestionConfig]]:
    """The one text field the spans questions mark, and those questions (a document per task)."""
    questions = require_questions(project, writer, "spans")
    fields = sorted({q.field for q in questions})
    if len(fields) > 1:
        raise InvalidInput(
            f"{writer}: the spans questions mark {len(fields)} text fields ({', '.join(fields)}); "
            f"{writer} writes one document per task",
            details={"field": "format", "format": writer},
        )
    return fields[0], questions


def has_spans(row: dict[str, Any], questions: list[QuestionConfig], field: str) -> bool:
    text = (row.get("data") or {}).get(field)
    return isinstance(text, str) and any(final_answer(row, q.name) is not None for q in questions)


def longest_first(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans (token ranges) without overlaps: longest first, then earliest; returned in text order."""
    kept: list[tuple[int, int, str]] = []
    taken: set[int] = set()
    for start, end, label in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0])):
        if taken.isdisjoint(range(start, end)):
            kept.append((start, end, label))
            taken.update(range(start, end))
    return sorted(kept)

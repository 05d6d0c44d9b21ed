"""Span answers (``spans`` questions) for CoNLL and spaCy: the text they are marked on, and entities.

Spans are code-point offsets ``[start, end)`` of the text field. Both formats tag tokens, so a span
covers every token it touches (spaCy's ``alignment_mode="expand"``). Both formats also give a token
at most one entity (a CoNLL tag column, spaCy's ``doc.ents``): where spans overlap (a question with
``overlapping: true``; for spaCy's ``ents`` also two spans questions), the longest span is kept,
then the earliest (spaCy's ``filter_spans`` rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from truthset.errors import InvalidInput
from truthset.questions import QuestionConfig
from truthset.questions._registry import question_text
from truthset.services.formats._common import final_answer, require_questions


def text_field(writer: str, project: dict[str, Any]) -> tuple[str, list[QuestionConfig]]:
    """The one field the spans questions mark, and those questions: a text field (a document per
    task), or a responses field whose candidates each get the questions asked ``for_each`` of them
    (a document per candidate). Spans on several fields, or on both, are refused."""
    questions = require_questions(project, writer, "spans")
    fields = sorted({q.field for q in questions})
    if len(fields) > 1 or len({q.candidate is None for q in questions}) > 1:
        raise InvalidInput(
            f"{writer}: the spans questions mark {len(fields)} fields ({', '.join(fields)}) or some are asked "
            f"for each candidate and some not; {writer} writes one kind of document: one text field's, "
            "or each candidate's of one responses field: name the questions of one kind to export",
            details={"field": "questions", "format": writer},
        )
    return fields[0], questions


def documents(
    row: dict[str, Any], questions: list[QuestionConfig]
) -> Iterator[tuple[int | None, str, list[QuestionConfig]]]:
    """``(candidate, text, questions)`` for each document of the task that has a final spans answer:
    the text field's (candidate None), or each candidate's text with its copies of the questions."""
    by_candidate: dict[int | None, list[QuestionConfig]] = {}
    for question in questions:
        by_candidate.setdefault(question.candidate, []).append(question)
    data = row.get("data") or {}
    for candidate, asked in by_candidate.items():
        text = question_text(asked[0], data)
        if isinstance(text, str) and any(final_answer(row, q.name) is not None for q in asked):
            yield candidate, text, asked


def longest_first(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans (token ranges) without overlaps: longest first, then earliest; returned in text order."""
    kept: list[tuple[int, int, str]] = []
    taken: set[int] = set()
    for start, end, label in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0])):
        if taken.isdisjoint(range(start, end)):
            kept.append((start, end, label))
            taken.update(range(start, end))
    return sorted(kept)

"""CoNLL-2003 NER columns (``spans`` questions): one token per line, BIO (IOB2) tags.

Each task with a final spans answer is a document opened by ``-DOCSTART- -X- O O`` (with spans
questions asked ``for_each`` candidate of a responses field, each candidate's text is a document); each line of
its text is a sentence (sentences are separated by an empty line); each token is a line
``token -X- _ TAG``, with one tag column per spans question in spec order (so a spec with one spans
question gives exactly the four CoNLL-2003 columns that spaCy's ``conll_ner_to_docs`` and Hugging
Face's ``conll2003`` loader read).

Tokens: each run of letters, digits and underscores (``\\w+``) is a token, and so is each other
non-space character (punctuation, symbols). A span tags every token it touches (a span ending
inside a word tags the whole word); overlapping spans keep the longest (see ``_spans``). CoNLL has
no place for a task's id or a confidence, and its columns are separated by spaces: a space in a
label becomes ``_`` in the tag (``B-New_York``). Documents come in the export's order (task ids, as in
the JSONL export).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from truthset.questions import QuestionConfig
from truthset.services.formats._common import blocks, final_answer
from truthset.services.formats._spans import documents, longest_first, text_field

NAME = "conll"
DOCSTART = "-DOCSTART- -X- O O\n\n"
# ours, not a library's: a tokenizer this simple is documented in one line and gives the same
# tokens in every version (a trained tokenizer's rules change between releases)
TOKEN = re.compile(r"\w+|[^\w\s]")


class ConllWriter:
    name = NAME
    media_type = "text/plain; charset=utf-8"
    extension = "conll"

    def check(self, project: dict[str, Any]) -> None:
        text_field(NAME, project)

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO) -> int:
        _, questions = text_field(NAME, project)
        written = 0
        for block in blocks(rows):
            parts = []
            for row in block:
                found = [_document(row, text, asked) for _, text, asked in documents(row, questions)]
                parts.extend(found)
                written += bool(found)
            out.write("".join(parts).encode())
        return written


def tokens(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, token)`` for each token of ``text``, offsets in code points."""
    return [(m.start(), m.end(), m.group()) for m in TOKEN.finditer(text)]


def _document(row: dict[str, Any], text: str, questions: list[QuestionConfig]) -> str:
    found = tokens(text)
    columns = [_tags(found, final_answer(row, q.name) or []) for q in questions]
    lines = [DOCSTART]
    for i, (start, _end, token) in enumerate(found):
        if i and "\n" in text[found[i - 1][1] : start]:
            lines.append("\n")  # a line break in the text ends a sentence
        lines.append(" ".join([token, "-X-", "_", *(column[i] for column in columns)]) + "\n")
    lines.append("\n")
    return "".join(lines)


def _tags(found: list[tuple[int, int, str]], spans: list[dict[str, Any]]) -> list[str]:
    """BIO tags of the tokens for one question's spans."""
    starts, ends = [t[0] for t in found], [t[1] for t in found]
    ranges = []
    for span in spans:
        first = bisect.bisect_right(ends, span["start"])  # the first token ending after the span starts
        last = bisect.bisect_left(starts, span["end"])  # past the last token starting before it ends
        if first < last:
            ranges.append((first, last, _tag_label(span["label"])))
    tags = ["O"] * len(found)
    for start, end, label in longest_first(ranges):
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def _tag_label(label: str) -> str:
    """A label inside a whitespace-separated column: its spaces become underscores."""
    return "_".join(label.split())


WRITER = ConllWriter()

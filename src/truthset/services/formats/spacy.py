"""spaCy's binary training format (``spans`` questions): ``.spacy`` files (``DocBin``) in a zip.

One ``Doc`` per task with a final spans answer, tokenized by ``spacy.blank("en")`` (spaCy's rule
tokenizer for English; no model is downloaded). Each question's spans become ``doc.spans[<question
name>]`` (a span group may overlap; its ``attrs["scores"]`` holds each span's confidence, as spaCy's
span categorizer stores scores), and ``doc.ents`` are all of them without overlaps (longest first,
``spacy.util.filter_spans``). Offsets are mapped with ``doc.char_span(..., alignment_mode="expand")``:
a span covers every token it touches; a span over whitespace only has no token and is left out.
``doc.user_data`` holds ``task_id``, ``unique_id``, ``candidate`` and ``confidence`` (per
question). Spans questions asked ``for_each`` candidate of a responses field give a ``Doc`` per
candidate's text (``candidate`` its index; span groups named as the spec names the question).

Why a zip of files of 1,000 documents, not one ``.spacy`` file: a ``DocBin`` is built in memory
and written at once, so one file for a large project would hold every document in memory.
``spacy train`` reads a directory of ``.spacy`` files as one corpus: unzip, and point
``paths.train`` at the directory. spaCy is an optional dependency (``pip install 'truthset[spacy]'``):
without it this format is refused with a clear message.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any, BinaryIO

from truthset.errors import InvalidInput
from truthset.questions import QuestionConfig
from truthset.services.formats._common import confidence, details, final_answer
from truthset.services.formats._spans import documents, text_field
from truthset.services.formats._zip import add_text, open_zip

NAME = "spacy"
SHARD = 1000  # documents per .spacy file


class SpacyWriter:
    name = NAME
    media_type = "application/zip"
    extension = "zip"

    def check(self, project: dict[str, Any]) -> None:
        text_field(NAME, project)
        load_spacy()

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO) -> int:
        _, questions = text_field(NAME, project)
        spacy = load_spacy()
        nlp = spacy.blank("en")
        written = shards = 0
        shard = _doc_bin(spacy)
        with open_zip(out) as archive, encoders_looked_up_once():
            for row in rows:
                found = False
                for candidate, text, asked in documents(row, questions):
                    shard.add(build_doc(spacy, nlp, row, (candidate, text), asked))
                    found = True
                    if len(shard) == SHARD:
                        add_text(archive, f"docs-{shards:05d}.spacy", shard.to_bytes())
                        shards, shard = shards + 1, _doc_bin(spacy)
                written += found
            if len(shard) or not shards:
                add_text(archive, f"docs-{shards:05d}.spacy", shard.to_bytes())
        return written


def load_spacy(writer: str = NAME) -> ModuleType:
    try:
        spacy = importlib.import_module("spacy")
        importlib.import_module("spacy.tokens")
        importlib.import_module("spacy.training")
    except ImportError:
        raise InvalidInput(
            f"{writer}: this server has no spaCy installed; install it (pip install 'truthset[spacy]') "
            "or export in another format (conll)",
            details={"field": "format", "format": writer},
        ) from None
    return spacy


@contextlib.contextmanager
def encoders_looked_up_once() -> Iterator[None]:
    """srsly (spaCy's serializer) looks its msgpack encoders up through the installed packages'
    entry points for every packer it makes, three per ``Doc`` in ``DocBin.add``: a scan of every
    installed distribution, which made this export 20x slower. The encoders cannot change while an
    export runs, so they are looked up once and the registry answers from that for its duration
    (an instance attribute over the method, removed afterwards; the same answer for anyone else)."""
    registry = importlib.import_module("srsly.msgpack").msgpack_encoders
    encoders = registry.get_all()
    registry.get_all = lambda: encoders
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del registry.get_all


def _doc_bin(spacy: ModuleType) -> Any:
    return spacy.tokens.DocBin(store_user_data=True)


def build_doc(
    spacy: ModuleType, nlp: Any, row: dict[str, Any], source: tuple[int | None, str], questions: list[QuestionConfig]
) -> Any:
    """The task's ``Doc`` of one text (``source``: the candidate it is, or None, and the text)."""
    candidate, text = source
    doc = nlp(text)  # a blank pipeline: the tokenizer (and any rule-based pipe added)
    everything = []
    for question in questions:
        spans, scores = [], []
        confidences = _span_confidences(row, question.name)
        for span in final_answer(row, question.name) or []:
            made = doc.char_span(span["start"], span["end"], span["label"], alignment_mode="expand")
            if made is not None:
                spans.append(made)
                scores.append(confidences.get((span["start"], span["end"], span["label"])))
        doc.spans[question.group] = spans
        doc.spans[question.group].attrs["scores"] = scores
        everything.extend(spans)
    doc.ents = spacy.util.filter_spans(everything)
    doc.user_data.update(
        {
            "task_id": row["task_id"],
            "unique_id": row.get("unique_id"),
            "candidate": candidate,
            "confidence": {q.group: confidence(row, q.name) for q in questions},
        }
    )
    return doc


def _span_confidences(row: dict[str, Any], question: str) -> dict[tuple[int, int, str], float]:
    """Each kept span's confidence, from the aggregator's per-span decisions."""
    return {
        (d["start"], d["end"], d["label"]): d["confidence"]
        for d in details(row, question).get("spans", [])
        if d.get("status") == "kept"
    }


WRITER = SpacyWriter()

"""spaCy's JSON training format (``spans`` questions): the same documents as the ``spacy`` export,
as the JSON list ``spacy.training.docs_to_json`` writes and ``spacy convert --converter json``
(``spacy.training.converters.json_to_docs``) reads.

One entry per task with a final spans answer: ``id`` (numbered from 0), ``paragraphs`` (the text,
its tokens with BILUO ``ner`` tags, and ``entities`` as ``[start, end, label]`` character offsets),
plus ``task_id``, ``unique_id`` and ``candidate`` (a spans question asked ``for_each`` candidate
gives an entry per candidate's text; else None). Sentences are split by spaCy's rule-based
``sentencizer`` (the format needs them; no model is downloaded). This format holds ``doc.ents``
only: overlapping spans keep the longest (use ``spacy``, whose span groups keep every span and its
confidence). Written as it streams, one document at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from truthset.services.formats._spans import documents, text_field
from truthset.services.formats.spacy import build_doc, encoders_looked_up_once, load_spacy

NAME = "spacy_json"


class SpacyJsonWriter:
    name = NAME
    media_type = "application/json"
    extension = "json"

    def check(self, project: dict[str, Any]) -> None:
        text_field(NAME, project)
        load_spacy(NAME)

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO) -> int:
        _, questions = text_field(NAME, project)
        spacy = load_spacy(NAME)
        docs_to_json = spacy.training.docs_to_json
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        written = entries = 0
        out.write(b"[")
        with encoders_looked_up_once():
            for row in rows:
                found = False
                for candidate, text, asked in documents(row, questions):
                    doc = build_doc(spacy, nlp, row, (candidate, text), asked)
                    ids = {"task_id": row["task_id"], "unique_id": row.get("unique_id"), "candidate": candidate}
                    out.write((b"," if entries else b"") + orjson.dumps({**docs_to_json([doc], entries), **ids}))
                    entries += 1
                    found = True
                written += found
        out.write(b"]")
        return written


WRITER = SpacyJsonWriter()

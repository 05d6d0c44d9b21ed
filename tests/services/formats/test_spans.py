"""CoNLL and spaCy: the final spans read back by spaCy (its CoNLL and JSON converters, and DocBin)."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training.converters import conll_ner_to_docs, json_to_docs

from truthset.errors import InvalidInput
from truthset.services.formats import conll, spacy_json
from truthset.services.formats import spacy as spacy_format

if TYPE_CHECKING:
    from conftest import Org

SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "entities", "type": "spans", "field": "text", "labels": ["PER", "LOC", "New York"]},
    ],
}
TEXT = "Ada Lovelace met Charles Babbage in London.\nThey wrote to New York."


def span(text: str, piece: str, label: str, *, cut: int = 0) -> dict[str, Any]:
    start = text.index(piece)
    return {"start": start, "end": start + len(piece) - cut, "label": label}


ANSWER = [
    span(TEXT, "Ada Lovelace", "PER"),
    span(TEXT, "Charles Babbage", "PER", cut=3),  # ends inside a word: the whole word is tagged
    span(TEXT, "London", "LOC"),
    span(TEXT, "New York", "New York"),
]


def test_conll_is_read_back_by_spacys_conll_converter(org: Org, labelled: Callable) -> None:
    items = [{"data": {"text": TEXT}, "unique_id": "a"}, {"data": {"text": "Nothing here."}, "unique_id": "b"}]
    project, rows = labelled(org, SPEC, items, [[{"entities": ANSWER}, {"entities": []}]] * 3)
    out = io.BytesIO()
    assert conll.WRITER.write(project, iter(rows), out) == 2
    written = out.getvalue().decode()
    assert "Lovelace -X- _ I-PER\n" in written and "York -X- _ I-New_York\n" in written
    assert "London -X- _ B-LOC\n. -X- _ O\n\nThey -X- _ O\n" in written  # a line break ends a sentence

    first, second = conll_ner_to_docs(written, n_sents=0, no_print=True)
    assert [(e.text, e.label_) for e in first.ents] == [
        ("Ada Lovelace", "PER"),
        ("Charles Babbage", "PER"),
        ("London", "LOC"),
        ("New York", "New_York"),
    ]
    assert [t.text for t in second] == ["Nothing", "here", "."] and not second.ents


def test_conll_overlapping_spans_keep_the_longest(org: Org, labelled: Callable) -> None:
    spec = {"fields": SPEC["fields"], "questions": [{**SPEC["questions"][0], "overlapping": True}]}
    nested = [span(TEXT, "Ada Lovelace", "PER"), span(TEXT, "Lovelace", "LOC")]
    project, rows = labelled(org, spec, [{"data": {"text": TEXT}}], [[{"entities": nested}]])
    out = io.BytesIO()
    conll.WRITER.write(project, iter(rows), out)
    assert out.getvalue().decode().splitlines()[2:4] == ["Ada -X- _ B-PER", "Lovelace -X- _ I-PER"]


def test_spacy_docbin_holds_the_entities_span_groups_and_task_ids(org: Org, labelled: Callable) -> None:
    items = [{"data": {"text": TEXT}, "unique_id": "a"}]
    project, rows = labelled(org, SPEC, items, [[{"entities": ANSWER}]] * 3)
    out = io.BytesIO()
    assert spacy_format.WRITER.write(project, iter(rows), out) == 1
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    assert archive.namelist() == ["docs-00000.spacy"]
    nlp = spacy.blank("en")
    (doc,) = DocBin().from_bytes(archive.read("docs-00000.spacy")).get_docs(nlp.vocab)
    assert doc.text == TEXT
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Ada Lovelace", "PER"),
        ("Charles Babbage", "PER"),
        ("London", "LOC"),
        ("New York", "New York"),
    ]
    group = doc.spans["entities"]
    assert len(group) == 4 and all(0.5 < score < 1 for score in group.attrs["scores"])
    assert doc.user_data["task_id"] == rows[0]["task_id"] and doc.user_data["unique_id"] == "a"
    assert doc.user_data["confidence"]["entities"] == rows[0]["result"]["confidence"]["entities"]


def test_spacy_json_is_read_back_by_spacys_json_converter(org: Org, labelled: Callable) -> None:
    items = [{"data": {"text": TEXT}, "unique_id": "a"}, {"data": {"text": "Nothing here."}, "unique_id": "b"}]
    project, rows = labelled(org, SPEC, items, [[{"entities": ANSWER}, {"entities": []}]] * 3)
    out = io.BytesIO()
    assert spacy_json.WRITER.write(project, iter(rows), out) == 2
    written = json.loads(out.getvalue())
    assert [(d["id"], d["unique_id"]) for d in written] == [(0, "a"), (1, "b")]
    first, second = json_to_docs(written)
    assert first.text == TEXT and not second.ents
    assert [(e.text, e.label_) for e in first.ents] == [
        ("Ada Lovelace", "PER"),
        ("Charles Babbage", "PER"),
        ("London", "LOC"),
        ("New York", "New York"),
    ]


def test_spacy_files_hold_a_bounded_number_of_documents(
    org: Org, labelled: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spacy_format, "SHARD", 2)
    items = [{"data": {"text": f"Ada number {i}"}, "unique_id": f"t{i}"} for i in range(5)]
    project, rows = labelled(org, SPEC, items, [[{"entities": [{"start": 0, "end": 3, "label": "PER"}]}] * 5])
    out = io.BytesIO()
    assert spacy_format.WRITER.write(project, iter(rows), out) == 5
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    nlp = spacy.blank("en")
    counts = [len(DocBin().from_bytes(archive.read(name))) for name in archive.namelist()]
    assert counts == [2, 2, 1]
    docs = [d for name in archive.namelist() for d in DocBin().from_bytes(archive.read(name)).get_docs(nlp.vocab)]
    assert [d.user_data["unique_id"] for d in docs] == [f"t{i}" for i in range(5)]


def test_spacy_missing_is_a_clear_refusal(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spacy", None)  # as if not installed: importing it raises ImportError
    for writer in (spacy_format.WRITER, spacy_json.WRITER):
        with pytest.raises(InvalidInput, match=rf"{writer.name}: this server has no spaCy.*truthset\[spacy\]"):
            writer.check(org.make_project(spec=SPEC))


def test_span_formats_refuse_a_spec_without_spans(org: Org) -> None:
    project = org.make_project()
    for writer in (conll.WRITER, spacy_format.WRITER, spacy_json.WRITER):
        with pytest.raises(InvalidInput, match=f"{writer.name}: the spec has no spans question"):
            writer.check(project)

"""Questions asked `for_each` candidate (copies `<name>-<index>`): spans give a document per
candidate's text; Label Studio results name the copy and the responses field."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import spacy
from spacy.tokens import DocBin
from spacy.training.converters import conll_ner_to_docs

from truthset.services.formats import conll, label_studio, preferences
from truthset.services.formats import spacy as spacy_format

if TYPE_CHECKING:
    from conftest import Org

SPEC: dict[str, Any] = {  # the chatbot-review example of docs/questions.md
    "fields": [
        {"name": "conversation", "type": "conversation"},
        {"name": "answers", "type": "responses", "count": 2},
    ],
    "questions": [
        {"name": "preference", "type": "ranking", "field": "answers", "mode": "pairwise"},
        {
            "name": "grade",
            "type": "rubric",
            "for_each": "answers",
            "criteria": [{"name": "helpful", "min": 1, "max": 5}],
        },
        {"name": "problems", "type": "spans", "for_each": "answers", "required": False, "labels": ["error"]},
    ],
}
CHAT = [{"role": "user", "content": "How do I reverse a list?"}]
ANSWERS = ["Use sorted(items).", "Use items[::-1] or reversed(items)."]
ANSWER = {
    "preference": {"winner": 1},
    "grade-0": {"helpful": {"score": 2}},
    "grade-1": {"helpful": {"score": 5}},
    "problems-0": [{"start": 4, "end": 10, "label": "error"}],
    "problems-1": [],  # marked: nothing wrong (a candidate left unanswered would have no document)
}


def labelled_chat(org: Org, labelled: Callable) -> tuple[dict, list[dict]]:
    items = [{"data": {"conversation": CHAT, "answers": ANSWERS}, "unique_id": "chat-1"}]
    return labelled(org, SPEC, items, [[ANSWER]] * 3)


def test_spans_for_each_candidate_are_a_document_per_candidate(org: Org, labelled: Callable) -> None:
    project, rows = labelled_chat(org, labelled)
    out = io.BytesIO()
    assert conll.WRITER.write(project, iter(rows), out) == 1
    first, second = conll_ner_to_docs(out.getvalue().decode(), n_sents=0, no_print=True)
    assert [(e.text, e.label_) for e in first.ents] == [("sorted", "error")]
    assert second.text.startswith("Use items") and not second.ents  # answered with no spans

    out = io.BytesIO()
    assert spacy_format.WRITER.write(project, iter(rows), out) == 1
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    docs = list(DocBin().from_bytes(archive.read("docs-00000.spacy")).get_docs(spacy.blank("en").vocab))
    assert [d.user_data["candidate"] for d in docs] == [0, 1]
    # spaCy's English tokenizer keeps "sorted(items" one token: the span expands to it
    assert [(s.text, s.label_) for s in docs[0].spans["problems"]] == [("sorted(items", "error")]


def test_label_studio_names_each_copy_and_the_candidates_text(org: Org, labelled: Callable) -> None:
    project, rows = labelled_chat(org, labelled)
    out = io.BytesIO()
    label_studio.WRITER.write(project, iter(rows), out)
    (task,) = json.loads(out.getvalue())
    results = {item["from_name"]: item for item in task["predictions"][0]["result"]}
    assert results["grade-1.helpful"]["value"] == {"rating": 5}
    assert results["grade-1.helpful"]["to_name"] == "answers"
    assert results["problems-0"]["value"] == {"start": 4, "end": 10, "text": "sorted", "labels": ["error"]}
    assert results["preference"]["value"] == {"selected": "right"}


def test_preferences_from_the_chat_example(org: Org, labelled: Callable) -> None:
    project, rows = labelled_chat(org, labelled)
    out = io.BytesIO()
    assert preferences.WRITER.write(project, iter(rows), out) == 1
    (pair,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert pair["prompt"] == CHAT and pair["chosen"] == [{"role": "assistant", "content": ANSWERS[1]}]

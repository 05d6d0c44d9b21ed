"""The `spans` question type: config, answer validation, aggregation and agreement by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from truthset.questions import AnswerError, CompiledSpec, Spec
from truthset.questions.spans import QUESTION as SPANS
from truthset.questions.spans import SpansQuestion

TEXT = "😀 Ada Lovelace met Babbage in London."  # an astral character first: offsets are code points
ADA = {"start": 2, "end": 14, "label": "PER"}  # "Ada Lovelace"
BABBAGE = {"start": 19, "end": 26, "label": "PER"}
LONDON = {"start": 30, "end": 36, "label": "LOC"}


def spec(**question: Any) -> dict[str, Any]:
    return {
        "fields": [{"name": "body", "type": "text"}, {"name": "photo", "type": "image", "required": False}],
        "questions": [{"name": "entities", "type": "spans", "field": "body", "labels": ["PER", "LOC"], **question}],
    }


def test_offsets_are_code_points() -> None:
    assert TEXT[ADA["start"] : ADA["end"]] == "Ada Lovelace"
    assert TEXT[LONDON["start"] : LONDON["end"]] == "London"


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ({"field": "nope"}, r"questions\[0\]\.field: 'nope' is not a field of the spec \(fields: body, photo\)"),
        ({"field": "photo"}, r"questions\[0\]\.field: 'photo' is an image field; a spans question needs a text field"),
        ({"labels": []}, r"questions\[0\]\.labels"),
        ({"labels": ["PER", "PER"]}, r"questions\[0\]\.labels: duplicate option values: PER"),
        ({"match": "fuzzy"}, r"questions\[0\]\.match"),
        ({"match": "overlap", "overlap_threshold": 0}, r"questions\[0\]\.overlap_threshold"),
        ({"overlap_threshold": 0.7}, r"questions\[0\]: overlap_threshold applies only with match 'overlap'"),
        ({"min_spans": -1}, r"questions\[0\]\.min_spans"),
        (
            {"labels": [{"value": "PER", "hotkey": "s"}]},
            r"questions\[0\]\.labels\[0\]\.hotkey: 's' is the workbench's key",
        ),
    ],
)
def test_bad_config_is_refused_naming_the_field(question: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Spec.model_validate(spec(**question))


def test_a_field_is_required() -> None:
    raw = spec()
    del raw["questions"][0]["field"]
    with pytest.raises(ValueError, match=r"questions\[0\]\.field: required: name the text field"):
        Spec.model_validate(raw)


def test_config_defaults_and_threshold() -> None:
    question = CompiledSpec(spec()).questions[0]
    assert isinstance(question, SpansQuestion)
    assert (question.overlapping, question.match, question.min_spans, question.threshold()) == (False, "exact", 0, 1.0)
    assert CompiledSpec(spec(match="overlap")).questions[0].threshold() == 0.5
    assert CompiledSpec(spec(match="overlap", overlap_threshold=0.8)).questions[0].threshold() == 0.8
    # a stored spec validates again (its defaults written out)
    assert CompiledSpec(Spec.model_validate(spec(match="overlap")).model_dump()).questions[0].threshold() == 0.5


def test_answer_sorted_and_duplicates_removed() -> None:
    compiled = CompiledSpec(spec())
    answer = compiled.validate_answer(
        {"entities": [LONDON, ADA, dict(ADA), {**BABBAGE, "start": 19.0}]}, {"body": TEXT}
    )
    assert answer == {"entities": [ADA, BABBAGE, LONDON]}
    assert compiled.validate_answer({"entities": []}) == {"entities": []}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Ada", "must be a list of spans"),
        ([["2", "14", "PER"]], r"\[0\] must be an object"),
        ([{"start": 2, "end": 14}], r"\[0\] needs label"),
        ([{**ADA, "text": "Ada Lovelace"}], r"\[0\] has unknown key\(s\) text"),
        ([ADA, {**LONDON, "label": "ORG"}], r"\[1\]\.label: 'ORG' is not one of the labels \['PER', 'LOC'\]"),
        ([{**ADA, "start": -1}], r"\[0\]\.start must not be negative"),
        ([{**ADA, "end": 2}], r"\[0\]\.end must be greater than start \(2\); got 2"),
        ([{**ADA, "end": 3.5}], r"\[0\]\.end must be a whole number"),
        ([{**ADA, "start": True}], r"\[0\]\.start must be a whole number"),
        ([ADA, {"start": 6, "end": 20, "label": "LOC"}], r"spans 2-14 \(PER\) and 6-20 \(LOC\) overlap"),
        ([ADA, {**ADA, "label": "LOC"}], "overlap; this question allows no overlapping spans"),
    ],
)
def test_bad_answers_name_the_problem(value: Any, message: str) -> None:
    with pytest.raises(AnswerError, match=rf"^entities: .*{message}"):
        CompiledSpec(spec()).validate_answer({"entities": value})


def test_overlapping_spans_when_the_spec_allows_them() -> None:
    nested = [ADA, {"start": 2, "end": 5, "label": "PER"}, {**ADA, "label": "LOC"}]
    answer = CompiledSpec(spec(overlapping=True)).validate_answer({"entities": nested})["entities"]
    assert answer == [{"start": 2, "end": 5, "label": "PER"}, ADA, {**ADA, "label": "LOC"}]


def test_min_spans() -> None:
    with pytest.raises(AnswerError, match="mark at least 2 span"):
        CompiledSpec(spec(min_spans=2)).validate_answer({"entities": [ADA]})


def test_bounds_are_checked_against_the_task_text() -> None:
    compiled = CompiledSpec(spec())
    end = {"start": 30, "end": len(TEXT), "label": "LOC"}
    assert compiled.validate_answer({"entities": [end]}, {"body": TEXT})["entities"] == [end]
    past = {"start": 30, "end": len(TEXT) + 1, "label": "LOC"}
    # JavaScript counts the emoji as two UTF-16 units: a widget that sent UTF-16 offsets ends past the text
    with pytest.raises(
        AnswerError,
        match=rf"entities: span 30-{len(TEXT) + 1} ends past the end of the text \({len(TEXT)} characters\)",
    ):
        compiled.validate_answer({"entities": [past]}, {"body": TEXT})
    assert compiled.validate_answer({"entities": [past]})  # without the task's data only the shape is checked


def aggregate(values: list[list[dict[str, Any]]], **question: Any) -> Any:
    q = CompiledSpec(spec(**question)).questions[0]
    return SPANS.aggregate(q, values, [f"w{i}" for i in range(len(values))])


def test_aggregate_spans_that_agree() -> None:
    agg = aggregate([[ADA, LONDON], [ADA, LONDON], [ADA, LONDON]])
    assert agg.value == [ADA, LONDON]
    assert agg.confidence == pytest.approx(4 / 5)
    assert agg.tie is None
    assert agg.method == "span_vote_exact"
    assert [s["status"] for s in agg.details["spans"]] == ["kept", "kept"]


def test_aggregate_keeps_the_majority_and_says_how_sure() -> None:
    agg = aggregate([[ADA, LONDON], [ADA], [ADA, BABBAGE]])
    assert agg.value == [ADA]
    # BABBAGE and LONDON each dropped by two of three: (2 + 1) / 5; ADA kept by all three: 4 / 5
    assert agg.confidence == pytest.approx(3 / 5)


def test_one_answer_is_never_certain() -> None:
    assert aggregate([[ADA]]).confidence == pytest.approx(2 / 3)
    nothing = aggregate([[], []])
    assert (nothing.value, nothing.confidence) == ([], pytest.approx(3 / 4))


def test_a_label_tie_is_explicit() -> None:
    agg = aggregate([[ADA], [{**ADA, "label": "LOC"}]])
    assert agg.value == []
    assert agg.tie == [[ADA, {**ADA, "label": "LOC"}]]  # in the spec's label order
    assert agg.confidence == pytest.approx(2 / 4)


def test_half_of_the_workers_is_a_tie() -> None:
    agg = aggregate([[ADA, LONDON], [ADA]])
    assert agg.value == [ADA]
    assert agg.tie == [[LONDON]]


def test_overlap_matching() -> None:
    short = {"start": 6, "end": 14, "label": "PER"}  # "Lovelace": IoU 8/12 with "Ada Lovelace"
    assert aggregate([[ADA], [ADA], [short]]).value == [ADA]
    exact = aggregate([[ADA], [ADA], [short]])
    assert exact.confidence == pytest.approx(3 / 5)  # exact: the third worker disagrees
    overlap = aggregate([[ADA], [ADA], [short]], match="overlap")
    assert overlap.value == [ADA]
    assert overlap.confidence == pytest.approx(4 / 5)  # overlap: all three marked it
    assert overlap.method == "span_vote_overlap"
    assert aggregate([[ADA], [ADA], [short]], match="overlap", overlap_threshold=0.7).confidence == pytest.approx(3 / 5)


def test_overlapping_questions_decide_each_label_alone() -> None:
    both = [ADA, {**ADA, "label": "LOC"}]
    agg = aggregate([both, both, [ADA]], overlapping=True)
    assert agg.value == [ADA, {**ADA, "label": "LOC"}]


def test_agreement_is_pairwise_span_f1() -> None:
    q = CompiledSpec(spec(match="overlap")).questions[0]
    short = {"start": 6, "end": 14, "label": "PER"}
    tasks = np.array([0, 0, 1, 1])
    workers = np.array([0, 1, 0, 1])
    values = [[ADA, LONDON], [short, LONDON], [BABBAGE], [BABBAGE]]
    measures = SPANS.agreement(q, tasks, workers, values)
    # exact: task 0 one of (2 + 2) spans matched, task 1 one of (1 + 1): 2 * 2 / 6
    assert measures["span_f1_exact"] == pytest.approx(4 / 6)
    assert measures["span_f1_overlap"] == pytest.approx(1.0)

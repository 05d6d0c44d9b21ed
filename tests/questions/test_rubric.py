"""The `rubric` question type: config, answer shape, per-criterion aggregation and agreement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from truthset.questions import AnswerError, Spec, get
from truthset.questions.rubric import RubricQuestion

RUBRIC = get("rubric")

CRITERIA = [
    {"name": "accuracy", "description": "Are the facts right?", "min": 1, "max": 5, "comment": "optional"},
    {"name": "clarity", "min": 0, "max": 3, "labels": {"0": "unreadable", "3": "crisp"}},
    {"name": "safety", "min": 1, "max": 2, "comment": "required"},
]


def question(criteria: list[dict[str, Any]] | None = None) -> RubricQuestion:
    return RubricQuestion.model_validate({"name": "grade", "type": "rubric", "criteria": criteria or CRITERIA})


def spec_error(**config: Any) -> str:
    raw = {"name": "grade", "type": "rubric", **config}
    with pytest.raises(ValueError) as caught:
        Spec.model_validate({"fields": [{"name": "text", "type": "text"}], "questions": [raw]})
    return str(caught.value)


def test_bad_configs_are_refused_naming_the_field() -> None:
    assert "questions[0].criteria: Field required" in spec_error()
    assert "questions[0].criteria: List should have at least 1 item" in spec_error(criteria=[])
    assert "questions[0].criteria: duplicate criterion names: a" in spec_error(criteria=[{"name": "a"}, {"name": "a"}])
    assert "questions[0].criteria[1]: max must be greater than min" in spec_error(
        criteria=[{"name": "a"}, {"name": "b", "min": 3, "max": 3}]
    )
    assert "questions[0].criteria[0].comment" in spec_error(criteria=[{"name": "a", "comment": "sometimes"}])
    assert "questions[0].criteria[0].name" in spec_error(criteria=[{"name": "bad name"}])
    assert "labels keys must be scale points" in spec_error(criteria=[{"name": "a", "labels": {"9": "x"}}])


def test_a_full_answer_is_normalised() -> None:
    answer = {
        "accuracy": {"score": 4, "comment": "  one date is off  "},
        "clarity": {"score": 3.0},
        "safety": {"score": 2, "comment": "fine"},
    }
    assert RUBRIC.validate_answer(question(), answer) == {
        "accuracy": {"score": 4, "comment": "one date is off"},
        "clarity": {"score": 3},
        "safety": {"score": 2, "comment": "fine"},
    }
    # an optional comment left empty is dropped
    answer["accuracy"] = {"score": 4, "comment": " "}
    assert RUBRIC.validate_answer(question(), answer)["accuracy"] == {"score": 4}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (3, "must be an object keyed by criterion"),
        ({"accuracy": {"score": 4}, "safety": {"score": 1, "comment": "x"}}, "clarity: a score is required"),
        (
            {"accuracy": 4, "clarity": {"score": 1}, "safety": {"score": 1, "comment": "x"}},
            "accuracy: must be an object",
        ),
        (
            {"accuracy": {"score": 6}, "clarity": {"score": 1}, "safety": {"score": 1, "comment": "x"}},
            r"accuracy\.score: must be between 1 and 5",
        ),
        (
            {"accuracy": {"score": 2.5}, "clarity": {"score": 1}, "safety": {"score": 1, "comment": "x"}},
            r"accuracy\.score: must be a whole number",
        ),
        (
            {
                "accuracy": {"score": 2},
                "clarity": {"score": 1, "comment": "nice"},
                "safety": {"score": 1, "comment": "x"},
            },
            r"clarity\.comment: this criterion takes no comment",
        ),
        (
            {"accuracy": {"score": 2}, "clarity": {"score": 1}, "safety": {"score": 1}},
            r"safety\.comment: a comment is required",
        ),
        (
            {"accuracy": {"score": 2, "note": "x"}, "clarity": {"score": 1}, "safety": {"score": 1, "comment": "x"}},
            r"accuracy: unknown keys \['note'\]",
        ),
        (
            {"accuracy": {"score": 2, "comment": 5}, "clarity": {"score": 1}, "safety": {"score": 1, "comment": "x"}},
            r"accuracy\.comment: must be a string",
        ),
        ({"style": {"score": 1}}, r"unknown criteria \['style'\]"),
    ],
)
def test_bad_answers_name_the_criterion(answer: Any, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        RUBRIC.validate_answer(question(), answer)


def _answers(*rows: tuple[int, int, int]) -> list[dict[str, Any]]:
    return [{"accuracy": {"score": a}, "clarity": {"score": c}, "safety": {"score": s}} for a, c, s in rows]


def test_each_criterion_is_a_median_and_the_confidence_is_the_weakest() -> None:
    answers = _answers((4, 3, 2), (5, 3, 2), (1, 2, 2))
    agg = RUBRIC.aggregate(question(), answers, ["a", "b", "c"])
    assert agg.value == {"accuracy": {"score": 4}, "clarity": {"score": 3}, "safety": {"score": 2}}
    assert agg.tie is None and agg.method == "median_per_criterion"
    # within one point of the median: accuracy 4,5 -> 3/5; clarity all -> 4/5; safety all -> 4/5
    assert agg.confidence == pytest.approx(3 / 5)
    criteria = agg.details["criteria"]  # type: ignore[index]
    assert criteria["accuracy"]["confidence"] == pytest.approx(3 / 5)
    assert criteria["clarity"]["confidence"] == pytest.approx(4 / 5)


def test_one_answer_is_never_certain() -> None:
    agg = RUBRIC.aggregate(question(), _answers((4, 3, 2)), ["a"])
    assert agg.confidence == pytest.approx(2 / 3)


def test_an_even_split_on_one_criterion_is_a_tie_of_that_criterion_only() -> None:
    agg = RUBRIC.aggregate(question(), _answers((4, 1, 1), (4, 2, 2)), ["a", "b"])
    assert agg.value == {"accuracy": {"score": 4}}
    assert agg.tie == [{"criterion": "clarity", "scores": [1, 2]}, {"criterion": "safety", "scores": [1, 2]}]


def test_agreement_is_krippendorffs_ordinal_alpha_per_criterion() -> None:
    tasks = np.array([0, 0, 1, 1])
    workers = np.array([0, 1, 0, 1])
    measures = RUBRIC.agreement(question(), tasks, workers, _answers((1, 0, 1), (1, 0, 2), (5, 3, 1), (5, 3, 2)))
    assert measures["krippendorff_alpha_ordinal.accuracy"] == pytest.approx(1.0)
    assert measures["krippendorff_alpha_ordinal.clarity"] == pytest.approx(1.0)
    # safety: each task split 1 vs 2 -> observed disagreement equals what chance gives, or worse
    assert measures["krippendorff_alpha_ordinal.safety"] < 0

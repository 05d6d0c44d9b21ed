"""`boxes` and `polygons`: config, answer validation, aggregation, agreement (small cases by hand)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from truthset.questions import AnswerError, CompiledSpec, Spec, get


def _spec(kind: str = "boxes", **extra: Any) -> dict[str, Any]:
    question = {"name": "objects", "type": kind, "field": "photo", "labels": ["car", "person"], **extra}
    return {"fields": [{"name": "photo", "type": "image"}], "questions": [question]}


def _box(label: str, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    return {"label": label, "x": x, "y": y, "width": w, "height": h}


def _square(label: str, x: float, y: float, side: float) -> dict[str, Any]:
    return {"label": label, "points": [[x, y], [x + side, y], [x + side, y + side], [x, y + side]]}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"field": "nope"}, r"questions\[0\]\.field: 'nope' is not a field of the spec \(fields: photo\)"),
        ({"labels": []}, r"questions\[0\]\.labels"),
        ({"min_shapes": 3, "max_shapes": 2}, r"questions\[0\]: max_shapes must be at least min_shapes"),
        ({"type": "polygons", "min_points": 2}, r"questions\[0\]\.min_points"),
    ],
)
def test_bad_config_names_the_field(change: dict[str, Any], where: str) -> None:
    spec = _spec()
    spec["questions"][0].update(change)
    with pytest.raises(ValueError, match=where):
        Spec.model_validate(spec)


def test_the_field_must_be_an_image() -> None:
    spec = _spec()
    spec["fields"].append({"name": "caption", "type": "text"})
    spec["questions"][0]["field"] = "caption"
    expected = r"questions\[0\]\.field: 'caption' is a text field; a boxes question needs an image field"
    with pytest.raises(ValueError, match=expected):
        Spec.model_validate(spec)


@pytest.mark.parametrize("key", ["0", "[", "+"])
def test_a_label_hotkey_may_not_take_over_a_key_of_the_shapes_widget(key: str) -> None:
    """The widget checks label keys first: a label on 0 would silently stop 0 fitting the image."""
    spec = _spec(labels=[{"value": "car", "hotkey": key}, "person"])
    expected = rf"questions\[0\]\.labels\[0\]\.hotkey: '{re.escape(key)}' is this question's key"
    with pytest.raises(ValueError, match=expected):
        Spec.model_validate(spec)
    Spec.model_validate(_spec(labels=[{"value": "car", "hotkey": "c"}, "person"]))  # any other key is fine


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("box", "must be a list of shapes"),
        ([{"label": "car", "x": 1}], r"\[0\] must be an object with exactly"),
        ([_box("dog", 0, 0, 1, 1)], r"\[0\]\.label: 'dog' is not one of the labels"),
        ([_box("car", float("nan"), 0, 1, 1)], r"\[0\]\.x must be a finite number"),
        ([_box("car", True, 0, 1, 1)], r"\[0\]\.x must be a finite number"),
        ([_box("car", 0, 0, -1, 1)], r"\[0\]\.width must not be negative"),
        ([_box("car", 0, 0, 1, 1)] * 3, "must have between 0 and 2 shapes"),
    ],
)
def test_bad_box_answers_name_the_shape_and_key(value: Any, message: str) -> None:
    spec = CompiledSpec(_spec(max_shapes=2))
    with pytest.raises(AnswerError, match=rf"^objects: {message}"):
        spec.validate_answer({"objects": value})


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[0, 0], [1, 1]], "points must have at least 3 distinct points"),
        ([[0, 0], [1, 1], [0, 0], [1, 1]], "points must have at least 3 distinct points"),
        ([[0, 0], [1, 1], [2, 2]], "points enclose no area"),
        ([[0, 0], [1, 1], [2]], r"points\[2\] must be \[x, y\]"),
        ([[0, 0], [1, 0], [0, float("inf")]], r"points\[2\]\[1\] must be a finite number"),
    ],
)
def test_bad_polygons_are_refused(points: list[Any], message: str) -> None:
    spec = CompiledSpec(_spec("polygons"))
    with pytest.raises(AnswerError, match=rf"^objects: \[0\]\.{message}"):
        spec.validate_answer({"objects": [{"label": "car", "points": points}]})


def test_valid_answers_are_stored_as_numbers() -> None:
    assert CompiledSpec(_spec()).validate_answer({"objects": [_box("car", 1, 2, 3, 4.5)]}) == {
        "objects": [{"label": "car", "x": 1.0, "y": 2.0, "width": 3.0, "height": 4.5}]
    }
    assert CompiledSpec(_spec()).validate_answer({"objects": []}) == {"objects": []}


def _aggregate(kind: str, answers: list[list[dict[str, Any]]]) -> Any:
    spec = CompiledSpec(_spec(kind))
    return spec.aggregate([{"objects": a} for a in answers], [f"w{i}" for i in range(len(answers))])["objects"]


def test_two_of_three_boxes_overlap_the_third_is_an_outlier() -> None:
    result = _aggregate(
        "boxes",
        [[_box("car", 10, 10, 100, 50)], [_box("car", 12, 11, 98, 52)], [_box("car", 300, 300, 50, 50)]],
    )
    # median edges: left 11, top 10.5, right 110, bottom 61.5; 2 of 3 agree: (2 + 1) / (3 + 2)
    assert result.value == [{"label": "car", "x": 11.0, "y": 10.5, "width": 99.0, "height": 51.0, "confidence": 0.6}]
    assert result.confidence == pytest.approx(0.6)  # answers agreeing with the whole consensus: 2 of 3
    assert result.tie is None and result.method == "iou_cluster_median"


def test_one_box_is_never_certain() -> None:
    result = _aggregate("boxes", [[_box("person", 0, 0, 10, 10)]])
    assert result.value[0]["confidence"] == pytest.approx(2 / 3) and result.confidence == pytest.approx(2 / 3)


def test_label_by_vote() -> None:
    boxes = [[_box("car", 0, 0, 10, 10)], [_box("person", 0, 0, 10, 10)], [_box("car", 1, 0, 10, 10)]]
    result = _aggregate("boxes", boxes)
    assert result.value[0]["label"] == "car" and result.value[0]["confidence"] == pytest.approx(0.6)
    assert result.confidence == pytest.approx(0.6)  # the "person" answer disagrees


def test_an_object_drawn_by_half_the_workers_is_a_tie() -> None:
    result = _aggregate("boxes", [[_box("car", 0, 0, 10, 10)], []])
    assert result.value is None
    assert result.tie == [[], [{"label": "car", "x": 0.0, "y": 0.0, "width": 10.0, "height": 10.0, "confidence": 0.5}]]


def test_an_even_label_vote_is_a_tie() -> None:
    result = _aggregate("boxes", [[_box("car", 0, 0, 10, 10)], [_box("person", 0, 0, 10, 10)]])
    assert result.value is None
    (shape,) = result.tie[1]
    assert shape["label"] is None and shape["labels"] == ["car", "person"]


def test_nobody_drew_anything() -> None:
    result = _aggregate("boxes", [[], [], []])
    assert result.value == [] and result.confidence == pytest.approx(0.8)


def test_polygons_consensus_is_the_medoid() -> None:
    answers = [[_square("car", 0, 0, 10)], [_square("car", 1, 0, 10)], [_square("car", 2, 0, 10)]]
    result = _aggregate("polygons", answers)
    (shape,) = result.value
    assert shape["points"] == _square("car", 1, 0, 10)["points"]  # the middle one overlaps both others most
    assert shape["confidence"] == pytest.approx(0.8) and result.method == "iou_cluster_medoid"


def test_agreement_mean_iou_and_f1() -> None:
    question = CompiledSpec(_spec()).questions[0]
    values = [[_box("car", 0, 0, 10, 10)], [_box("car", 5, 0, 10, 10)], [_box("car", 0, 0, 10, 10)], []]
    tasks, workers = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    # task 0: IoU 1/3 (below 0.5: F1 0); task 1: one drew nothing: IoU 0, F1 0
    assert get("boxes").agreement(question, tasks, workers, values) == {
        "mean_iou": pytest.approx(1 / 6),
        "f1_iou50": 0.0,
    }
    assert get("boxes").agreement(question, np.array([0]), np.array([0]), values[:1]) == {
        "mean_iou": None,
        "f1_iou50": None,
    }

"""`boxes` and `polygons`: labelled shapes drawn on an image field (object detection, segmentation).

Coordinates are image pixels of the image's natural size, origin at the top-left corner, x to the
right and y down. A box is ``{"label", "x", "y", "width", "height"}``; a polygon is
``{"label", "points": [[x, y], ...]}``. Aggregation clusters the workers' shapes by IoU and keeps an
object that more than half of the workers drew (see :mod:`truthset.quality._shapes`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from truthset import quality
from truthset.questions._options import Option, parse_options
from truthset.questions._registry import NAME_PATTERN, Aggregate, AnswerError, QuestionConfig, require_field

#: At most this many shapes in one answer, points in one polygon, and this far from the origin:
#: bounds a request's cost (IoU is quadratic in shapes) whatever the client sends.
MAX_SHAPES = 500
MAX_POINTS = 1000
MAX_COORDINATE = 1_000_000.0


class ShapesQuestion(QuestionConfig):
    field: str = Field(pattern=NAME_PATTERN, description="The image field of the spec the shapes are drawn on.")
    labels: list[Option] = Field(min_length=1, max_length=100, description="What a shape can be.")
    min_shapes: int = Field(0, ge=0, le=MAX_SHAPES)
    max_shapes: int = Field(MAX_SHAPES, ge=1, le=MAX_SHAPES)
    iou_threshold: float = Field(quality.DEFAULT_IOU, gt=0.0, lt=1.0, description="Overlap that makes one object.")

    @field_validator("labels", mode="before")
    @classmethod
    def _parse(cls, labels: Any) -> Any:
        return parse_options(labels) if isinstance(labels, list) else labels

    @model_validator(mode="after")
    def _bounds(self) -> ShapesQuestion:
        if self.max_shapes < self.min_shapes:
            raise ValueError("max_shapes must be at least min_shapes")
        return self

    def label_values(self) -> list[str]:
        return [o.value for o in self.labels]


class BoxesQuestion(ShapesQuestion):
    type: Literal["boxes"] = "boxes"


class PolygonsQuestion(ShapesQuestion):
    type: Literal["polygons"] = "polygons"
    min_points: int = Field(3, ge=3, le=MAX_POINTS, description="Fewest distinct points of a polygon.")
    max_points: int = Field(MAX_POINTS, ge=3, le=MAX_POINTS)

    @model_validator(mode="after")
    def _points(self) -> PolygonsQuestion:
        if self.max_points < self.min_points:
            raise ValueError("max_points must be at least min_points")
        return self


# --- answers -------------------------------------------------------------------------------------


def _coordinate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AnswerError(f"{where} must be a finite number")
    if abs(value) > MAX_COORDINATE:
        raise AnswerError(f"{where} must be within {MAX_COORDINATE:g} pixels of the origin")
    return float(value)


def _shape_list(question: ShapesQuestion, value: Any, keys: frozenset[str]) -> list[dict[str, Any]]:
    """The answer's list of shapes, each an object with exactly ``keys`` and a known label."""
    if not isinstance(value, list):
        raise AnswerError("must be a list of shapes")
    if not question.min_shapes <= len(value) <= question.max_shapes:
        raise AnswerError(f"must have between {question.min_shapes} and {question.max_shapes} shapes")
    labels = question.label_values()
    for index, shape in enumerate(value):
        if not isinstance(shape, dict) or set(shape) != keys:
            raise AnswerError(f"[{index}] must be an object with exactly {', '.join(sorted(keys))}")
        if shape["label"] not in labels:
            raise AnswerError(f"[{index}].label: {shape['label']!r} is not one of the labels {labels}")
    return value


def _area(points: list[tuple[float, float]]) -> float:
    """Absolute area of a ring by the shoelace formula."""
    pairs = zip(points, points[1:] + points[:1], strict=True)
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairs)) / 2.0


def validate_box(shape: dict[str, Any], where: str) -> dict[str, Any]:
    box = {key: _coordinate(shape[key], f"{where}.{key}") for key in ("x", "y", "width", "height")}
    for key in ("width", "height"):
        if box[key] < 0:
            raise AnswerError(f"{where}.{key} must not be negative")
    return {"label": shape["label"], **box}


def validate_polygon(question: PolygonsQuestion, shape: dict[str, Any], where: str) -> dict[str, Any]:
    raw = shape["points"]
    if not isinstance(raw, list) or len(raw) > question.max_points:
        raise AnswerError(f"{where}.points must be a list of at most {question.max_points} [x, y] points")
    points = []
    for i, point in enumerate(raw):
        if not isinstance(point, list) or len(point) != 2:
            raise AnswerError(f"{where}.points[{i}] must be [x, y]")
        x, y = (_coordinate(c, f"{where}.points[{i}][{axis}]") for axis, c in enumerate(point))
        points.append((x, y))
    if len(set(points)) < question.min_points:
        raise AnswerError(f"{where}.points must have at least {question.min_points} distinct points")
    if _area(points) <= 0:
        raise AnswerError(f"{where}.points enclose no area (all on one line)")
    return {"label": shape["label"], "points": [list(p) for p in points]}


# --- aggregation ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Drawn:
    """Every shape of every answer, flattened: which answer drew it, its label, and its geometry."""

    answer: np.ndarray  # index of the answer (response) each shape belongs to
    labels: list[str]
    shapes: list[dict[str, Any]]


def _flatten(values: Sequence[Any]) -> _Drawn:
    owners, labels, shapes = [], [], []
    for index, answer in enumerate(values):
        for shape in answer:
            owners.append(index)
            labels.append(shape["label"])
            shapes.append(shape)
    return _Drawn(np.asarray(owners, dtype=int), labels, shapes)


def _rule_of_succession(successes: int, trials: int) -> float:
    """Laplace: the chance the next worker agrees, ``(k + 1) / (n + 2)``; never 1 from a few answers."""
    return (successes + 1) / (trials + 2)


class _ShapesType:
    """What boxes and polygons share: validation frame, clustering, ties, agreement."""

    name: ClassVar[str]
    config_model: ClassVar[type[QuestionConfig]]
    method: ClassVar[str]
    keys: ClassVar[frozenset[str]]
    #: the widget's own keys (shape-kit.js): a label hotkey may not take one over
    widget_keys: ClassVar[dict[str, str]] = {
        "[": "select the previous shape",
        "]": "select the next shape",
        "+": "zoom in",
        "=": "zoom in",
        "-": "zoom out",
        "0": "fit the image",
    }

    def validate_shape(self, question: Any, shape: dict[str, Any], where: str) -> dict[str, Any]:
        raise NotImplementedError

    def iou(self, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> np.ndarray:
        raise NotImplementedError

    def consensus(self, members: list[dict[str, Any]], iou: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def check_spec(self, question: Any, fields: Mapping[str, str]) -> None:
        """The question's ``field`` must be an image field of the spec (shapes are drawn on it)."""
        require_field(question, fields, "image")

    def validate_answer(self, question: Any, value: Any) -> list[dict[str, Any]]:
        shapes = _shape_list(question, value, self.keys)
        return [self.validate_shape(question, shape, f"[{i}]") for i, shape in enumerate(shapes)]

    def aggregate(self, question: Any, values: Sequence[Any], workers: Sequence[str], model: Any = None) -> Aggregate:
        """Objects that more than half of the answers drew, each with its consensus shape and label.

        A shape's confidence is the rule of succession over the answers that drew it with its label;
        the task's is the rule of succession over the answers that agree with the whole consensus
        (the same objects with the same labels, nothing more). An object drawn by exactly half of
        the answers, or whose label votes are even, is undecided: then the result is a ``tie`` of
        the answer without the undecided shapes and the answer with them, never settled by order.
        """
        n = len(values)
        drawn = _flatten(values)
        iou = self.iou(drawn.shapes, drawn.shapes)
        clusters = quality.cluster_shapes(iou, drawn.answer, question.iou_threshold)
        decided, undecided, agreeing = [], [], set(range(n))
        for cluster in range(int(clusters.max()) + 1 if clusters.size else 0):
            members = np.flatnonzero(clusters == cluster)
            votes = Counter(drawn.labels[m] for m in members)
            top = max(votes.values())
            winners = sorted(label for label, count in votes.items() if count == top)
            support = len(members)
            if 2 * support < n:
                agreeing -= {int(drawn.answer[m]) for m in members}  # drew something the majority did not
                continue
            shape = self.consensus([drawn.shapes[m] for m in members], iou[np.ix_(members, members)])
            shape["confidence"] = round(_rule_of_succession(top, n), 6)
            with_label = {int(drawn.answer[m]) for m in members if drawn.labels[m] == winners[0]}
            if 2 * support == n or len(winners) > 1:
                shape["label"] = winners[0] if len(winners) == 1 else None
                if len(winners) > 1:
                    shape["labels"] = winners
                undecided.append(shape)
                agreeing = set()  # no answer matches an undecided consensus
            else:
                shape["label"] = winners[0]
                decided.append(shape)
                agreeing &= with_label
        order = self.sort_key
        decided.sort(key=order)
        undecided.sort(key=order)
        details = {"answers": n, "objects": len(decided), "undecided": len(undecided)}
        confidence = _rule_of_succession(len(agreeing), n)
        if undecided:
            tie = [decided, sorted(decided + undecided, key=order)]
            return Aggregate(None, confidence, self.method, details, tie=tie)
        return Aggregate(decided, confidence, self.method, details)

    @staticmethod
    def sort_key(shape: dict[str, Any]) -> tuple[float, float]:
        raise NotImplementedError

    def agreement(self, question: Any, tasks: Any, workers: Any, values: Sequence[Any]) -> dict[str, float | None]:
        """Between every two workers on one image: ``mean_iou`` (Hungarian-matched shapes, an unmatched
        shape counting 0) and ``f1_iou50`` (shapes matched at IoU >= the question's threshold with the
        same label), averaged over all such pairs; None when no image has two workers."""
        by_task: dict[int, list[int]] = defaultdict(list)
        for index, task in enumerate(np.asarray(tasks).tolist()):
            by_task[task].append(index)
        worker_codes = np.asarray(workers).tolist()
        ious, f1s = [], []
        for indexes in by_task.values():
            for a_pos, a in enumerate(indexes):
                for b in indexes[a_pos + 1 :]:
                    if worker_codes[a] == worker_codes[b]:
                        continue
                    left, right = values[a], values[b]
                    match = quality.match_pair(
                        self.iou(left, right),
                        [s["label"] for s in left],
                        [s["label"] for s in right],
                        question.iou_threshold,
                    )
                    ious.append(match.mean_iou)
                    f1s.append(match.f1)
        if not ious:
            return {"mean_iou": None, "f1_iou50": None}
        return {"mean_iou": float(np.mean(ious)), "f1_iou50": float(np.mean(f1s))}


class BoxesType(_ShapesType):
    name: ClassVar[str] = "boxes"
    config_model: ClassVar[type[QuestionConfig]] = BoxesQuestion
    method: ClassVar[str] = "iou_cluster_median"
    keys: ClassVar[frozenset[str]] = frozenset({"label", "x", "y", "width", "height"})

    def validate_shape(self, question: Any, shape: dict[str, Any], where: str) -> dict[str, Any]:
        return validate_box(shape, where)

    def iou(self, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> np.ndarray:
        return quality.box_iou(_box_array(a), _box_array(b))

    def consensus(self, members: list[dict[str, Any]], iou: np.ndarray) -> dict[str, Any]:
        x, y, width, height = (round(float(v), 2) for v in quality.median_box(_box_array(members)))
        return {"label": None, "x": x, "y": y, "width": width, "height": height}

    @staticmethod
    def sort_key(shape: dict[str, Any]) -> tuple[float, float]:
        return (shape["y"], shape["x"])


def _box_array(shapes: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[s["x"], s["y"], s["width"], s["height"]] for s in shapes], dtype=float).reshape(-1, 4)


class PolygonsType(_ShapesType):
    name: ClassVar[str] = "polygons"
    config_model: ClassVar[type[QuestionConfig]] = PolygonsQuestion
    method: ClassVar[str] = "iou_cluster_medoid"
    keys: ClassVar[frozenset[str]] = frozenset({"label", "points"})

    def validate_shape(self, question: Any, shape: dict[str, Any], where: str) -> dict[str, Any]:
        return validate_polygon(question, shape, where)

    def iou(self, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> np.ndarray:
        return quality.polygon_iou([np.asarray(s["points"]) for s in a], [np.asarray(s["points"]) for s in b])

    def consensus(self, members: list[dict[str, Any]], iou: np.ndarray) -> dict[str, Any]:
        """The member outlining the object most like the others (the medoid by IoU), not an average:
        averaging polygons with different numbers of points has no meaning."""
        return {"label": None, "points": [list(p) for p in members[quality.medoid(iou)]["points"]]}

    @staticmethod
    def sort_key(shape: dict[str, Any]) -> tuple[float, float]:
        return (min(p[1] for p in shape["points"]), min(p[0] for p in shape["points"]))


BOXES = BoxesType()
POLYGONS = PolygonsType()

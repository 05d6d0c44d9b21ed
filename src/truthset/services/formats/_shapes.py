"""Shape answers (``boxes``, ``polygons``) as objects on their image, for COCO, YOLO and VOC.

One object per shape of the final answer, cut to the image (see :mod:`.images`), with its
category: categories are the (question, label) pairs of the spec's shape questions, in spec order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from truthset.errors import InvalidInput
from truthset.questions import QuestionConfig
from truthset.services.formats._common import final_answer
from truthset.services.formats.images import ImageFile, clip_box, clip_polygon, ring_area, ring_bbox

SHAPE_TYPES = ("boxes", "polygons")


@dataclass(frozen=True, slots=True)
class Category:
    index: int  # 0-based, in spec order
    question: str
    label: str


@dataclass(frozen=True, slots=True)
class ShapeObject:
    category: Category
    bbox: tuple[float, float, float, float]  # x, y, width, height in pixels, on the image
    rings: list[list[tuple[float, float]]] | None  # a polygon's pieces; None for a box
    area: float
    confidence: float | None
    truncated: bool  # cut at the image's border


def categories(questions: list[QuestionConfig]) -> dict[tuple[str, str], Category]:
    """Every (question, label) of the shape questions, numbered in spec order."""
    pairs = [(q.name, label) for q in questions for label in q.label_values()]
    return {pair: Category(i, *pair) for i, pair in enumerate(pairs)}


def image_field(writer: str, questions: list[QuestionConfig]) -> str:
    """The one image field the shape questions are drawn on: a file of these formats describes one
    image per task, so shapes on two image fields of one task are refused."""
    fields = sorted({q.field for q in questions})
    if len(fields) > 1:
        raise InvalidInput(
            f"{writer}: the shape questions are drawn on {len(fields)} image fields ({', '.join(fields)}); "
            f"{writer} describes one image per task: name the questions of one field to export",
            details={"field": "questions", "format": writer},
        )
    return fields[0]


def has_answer(row: dict[str, Any], questions: list[QuestionConfig]) -> bool:
    """Whether any shape question has a final answer on this task (an empty list counts: no objects)."""
    return any(final_answer(row, q.name) is not None for q in questions)


def objects(
    row: dict[str, Any],
    questions: list[QuestionConfig],
    cats: dict[tuple[str, str], Category],
    image: ImageFile,
) -> Iterator[ShapeObject]:
    for question in questions:
        for shape in final_answer(row, question.name) or []:
            category = cats[(question.name, shape["label"])]
            found = _box(shape, image) if question.type == "boxes" else _polygon(shape, image)
            if found is not None:
                bbox, rings, area, truncated = found
                yield ShapeObject(category, bbox, rings, area, shape.get("confidence"), truncated)


def _box(shape: dict[str, Any], image: ImageFile) -> tuple[Any, None, float, bool] | None:
    box = clip_box(shape, image.width, image.height)
    if box is None:
        return None
    return box, None, box[2] * box[3], box != tuple(shape[k] for k in ("x", "y", "width", "height"))


def _polygon(shape: dict[str, Any], image: ImageFile) -> tuple[Any, list, float, bool] | None:
    rings = clip_polygon(shape["points"], image.width, image.height)
    if not rings:
        return None
    truncated = not all(0 <= x <= image.width and 0 <= y <= image.height for x, y in shape["points"])
    bbox = ring_bbox([point for ring in rings for point in ring])
    return bbox, rings, sum(ring_area(r) for r in rings), truncated

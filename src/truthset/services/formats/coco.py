"""COCO object detection / instance segmentation JSON (``boxes`` and ``polygons`` questions).

One ``images`` entry per task with a final shape answer (``id`` numbered from 1; ``file_name``
``<task id><ext>``, the name the YOLO and VOC exports give the image; ``width``/``height`` from the
uploaded image; plus ``task_id``, ``unique_id`` and ``image``, the task's reference), one
``annotations`` entry per final shape (``bbox`` ``[x, y, w, h]`` in pixels, ``area``, ``iscrowd``
0, ``segmentation`` the polygon's rings, empty for a box, and ``score``: the shape's confidence),
and ``categories`` (each label of each shape question, ``supercategory`` the question's name).

Written as it streams: images go straight to the output, annotations to a temporary file that is
appended at the end, so memory stays flat however many images there are.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson

from truthset.services.formats._common import require_questions
from truthset.services.formats._detection import Detection
from truthset.services.formats._shapes import SHAPE_TYPES, ShapeObject, image_field
from truthset.services.formats.images import MediaFiles

NAME = "coco"


class CocoWriter:
    name = NAME
    media_type = "application/json"
    extension = "json"
    needs_media = True

    def check(self, project: dict[str, Any]) -> None:
        image_field(NAME, require_questions(project, NAME, *SHAPE_TYPES))

    def write(
        self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO, *, media: MediaFiles | None = None
    ) -> int:
        detection = Detection.prepare(NAME, project, media)
        out.write(_header(project, [_category(c) for c in detection.categories.values()]))
        images = annotation_id = 0
        with tempfile.TemporaryFile() as annotations:
            for row, image, shapes in detection.images(rows):
                images += 1
                entry = {
                    "id": images,
                    "file_name": f"{row['task_id']}{image.extension}",
                    "width": image.width,
                    "height": image.height,
                    "task_id": row["task_id"],
                    "unique_id": row.get("unique_id"),
                    "image": row["data"][detection.field],
                }
                out.write((b"," if images > 1 else b"") + orjson.dumps(entry))
                for found in shapes:
                    annotation_id += 1
                    prefix = b"," if annotation_id > 1 else b""
                    annotations.write(prefix + orjson.dumps(_annotation(annotation_id, images, found)))
            out.write(b'],"annotations":[')
            annotations.seek(0)
            shutil.copyfileobj(annotations, out)
        out.write(b"]}")
        return images


def _header(project: dict[str, Any], cats: list[dict[str, Any]]) -> bytes:
    info = {
        "description": project.get("name", ""),
        "version": "1.0",
        "contributor": "truthset",
        "date_created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    head = orjson.dumps({"info": info, "licenses": [], "categories": cats})
    return head[:-1] + b',"images":['  # the object stays open: images and annotations stream in


def _category(category: Any) -> dict[str, Any]:
    return {"id": category.index + 1, "name": category.label, "supercategory": category.question}


def _annotation(annotation_id: int, image_id: int, found: ShapeObject) -> dict[str, Any]:
    segmentation = [[round(c, 3) for point in ring for c in point] for ring in found.rings or []]
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": found.category.index + 1,
        "bbox": [round(v, 3) for v in found.bbox],
        "area": round(found.area, 3),
        "iscrowd": 0,
        "segmentation": segmentation,
        "score": found.confidence,
    }


WRITER = CocoWriter()

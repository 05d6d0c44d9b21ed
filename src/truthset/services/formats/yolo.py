"""YOLO (Ultralytics) dataset as a zip: ``data.yaml``, ``images/`` and ``labels/``.

Each task with a final shape answer gives ``images/<task id><ext>`` (the uploaded image) and
``labels/<task id>.txt``: one line per object, ``class x_center y_center width height`` for boxes
(the detect format) or ``class x1 y1 x2 y2 ...`` for polygons (the segment format), coordinates as
fractions of the image's width and height. Classes are numbered from 0 in spec order (each label of
each shape question); ``data.yaml`` names them. A shape is cut to its image first; a polygon cut
into pieces by the border keeps its largest piece. YOLO has no place for a confidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from truthset.errors import InvalidInput
from truthset.questions import QuestionConfig
from truthset.services.formats._common import require_questions
from truthset.services.formats._detection import Detection
from truthset.services.formats._shapes import SHAPE_TYPES, ShapeObject, image_field
from truthset.services.formats._zip import add_file, add_text, open_zip
from truthset.services.formats.images import ImageFile, MediaFiles, ring_area

NAME = "yolo"


class YoloWriter:
    name = NAME
    media_type = "application/zip"
    extension = "zip"
    needs_media = True

    def check(self, project: dict[str, Any]) -> None:
        _questions(project)

    def write(
        self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO, *, media: MediaFiles | None = None
    ) -> int:
        detection = Detection.prepare(NAME, project, media, _questions(project))
        written = 0
        with open_zip(out) as archive:
            for row, image, shapes in detection.images(rows):
                add_file(archive, f"images/{row['task_id']}{image.extension}", image.path)
                add_text(archive, f"labels/{row['task_id']}.txt", "".join(_line(found, image) for found in shapes))
                written += 1
            add_text(archive, "data.yaml", _data_yaml([c.label for c in detection.categories.values()]))
        return written


def _questions(project: dict[str, Any]) -> list[QuestionConfig]:
    """The shape questions: all boxes or all polygons (a label file is in one format, detect or segment)."""
    questions = require_questions(project, NAME, *SHAPE_TYPES)
    if len({q.type for q in questions}) > 1:
        kinds = "; ".join(f"{kind}: {', '.join(q.name for q in questions if q.type == kind)}" for kind in SHAPE_TYPES)
        raise InvalidInput(
            "yolo: the spec has both boxes and polygons questions; a YOLO dataset holds one kind "
            f"(boxes: detect, polygons: segment): name the questions of one kind to export ({kinds})",
            details={"field": "questions", "format": NAME},
        )
    image_field(NAME, questions)
    return questions


def _line(found: ShapeObject, image: ImageFile) -> str:
    w, h = image.width, image.height
    if found.rings is None:
        x, y, bw, bh = found.bbox
        values = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
    else:
        ring = max(found.rings, key=ring_area)
        values = [c for px, py in ring for c in (px / w, py / h)]
    return " ".join([str(found.category.index), *(f"{v:.6f}" for v in values)]) + "\n"


def _data_yaml(names: list[str]) -> str:
    """Ultralytics' dataset file. Values are JSON strings: JSON is valid YAML, and quoting every name
    keeps a label like ``no`` or ``1.0`` a string (no YAML writer needed for five lines)."""
    lines = ["path: .", "train: images", "val: images", f"nc: {len(names)}", "names:"]
    lines += [f"  {i}: {json.dumps(name)}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


WRITER = YoloWriter()

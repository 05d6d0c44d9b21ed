"""Pascal VOC as a zip: ``Annotations/*.xml``, ``JPEGImages/`` and ``ImageSets/Main/default.txt``.

Each task with a final shape answer gives ``JPEGImages/<task id><ext>`` (the uploaded image, in its
own format: the folder keeps VOC's name) and ``Annotations/<task id>.xml`` with the image's
``size`` and one ``object`` per shape: ``name`` (the label), ``pose`` Unspecified, ``truncated``
(1 when the shape was cut at the image's border), ``difficult`` 0, and ``bndbox`` in VOC's own
convention: whole 1-based pixel indexes, both ends included (``xmin = round(x) + 1``,
``xmax = round(x + width)``). VOC has no polygons: a polygon is written as its bounding box. VOC has
no place for a confidence. ``ImageSets/Main/default.txt`` lists the images.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.etree import ElementTree as ET

from truthset.services.formats._common import require_questions
from truthset.services.formats._detection import Detection
from truthset.services.formats._shapes import SHAPE_TYPES, ShapeObject, image_field
from truthset.services.formats._zip import add_file, add_text, open_zip
from truthset.services.formats.images import ImageFile, MediaFiles

NAME = "voc"


class VocWriter:
    name = NAME
    media_type = "application/zip"
    extension = "zip"
    needs_media = True

    def check(self, project: dict[str, Any]) -> None:
        image_field(NAME, require_questions(project, NAME, *SHAPE_TYPES))

    def write(
        self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO, *, media: MediaFiles | None = None
    ) -> int:
        detection = Detection.prepare(NAME, project, media)
        written = 0
        with open_zip(out) as archive, tempfile.TemporaryFile() as names:
            for row, image, found in detection.images(rows):
                file_name = f"{row['task_id']}{image.extension}"
                add_file(archive, f"JPEGImages/{file_name}", image.path)
                add_text(archive, f"Annotations/{row['task_id']}.xml", _xml(file_name, image, found, row))
                names.write(f"{row['task_id']}\n".encode())
                written += 1
            names.seek(0)
            with archive.open("ImageSets/Main/default.txt", "w") as entry:
                shutil.copyfileobj(names, entry)
            add_text(archive, "labelmap.txt", "".join(f"{label}\n" for label in _labels(detection.categories)))
        return written


def _labels(cats: dict) -> list[str]:
    return list(dict.fromkeys(c.label for c in cats.values()))


def _xml(file_name: str, image: ImageFile, found: list[ShapeObject], row: dict[str, Any]) -> bytes:
    root = ET.Element("annotation")
    _text(root, "folder", "JPEGImages")
    _text(root, "filename", file_name)
    source = ET.SubElement(root, "source")
    _text(source, "database", "truthset")
    _text(source, "annotation", row.get("unique_id") or row["task_id"])
    size = ET.SubElement(root, "size")
    _text(size, "width", image.width)
    _text(size, "height", image.height)
    _text(size, "depth", 3)
    _text(root, "segmented", 0)
    for shape in found:
        root.append(_object(shape, image))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _object(shape: ShapeObject, image: ImageFile) -> ET.Element:
    element = ET.Element("object")
    _text(element, "name", shape.category.label)
    _text(element, "pose", "Unspecified")
    _text(element, "truncated", int(shape.truncated))
    _text(element, "difficult", 0)
    x, y, w, h = shape.bbox
    xmin, ymin = round(x) + 1, round(y) + 1
    box = ET.SubElement(element, "bndbox")
    for key, value in (
        ("xmin", xmin),
        ("ymin", ymin),
        ("xmax", min(image.width, max(xmin, round(x + w)))),
        ("ymax", min(image.height, max(ymin, round(y + h)))),
    ):
        _text(box, key, value)
    return element


def _text(parent: ET.Element, tag: str, value: Any) -> None:
    ET.SubElement(parent, tag).text = str(value)


WRITER = VocWriter()

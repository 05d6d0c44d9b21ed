"""YOLO and Pascal VOC zips: images and label files read back (YOLO lines, VOC with xml.etree)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import pytest
import yaml
from PIL import Image

from truthset.errors import InvalidInput
from truthset.services.formats import voc, yolo
from truthset.services.formats.images import MediaStore

if TYPE_CHECKING:
    from conftest import Org

BOXES: dict[str, Any] = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "objects", "type": "boxes", "field": "photo", "labels": ["car", "no"]}],
}
POLYGONS: dict[str, Any] = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "outline", "type": "polygons", "field": "photo", "labels": ["road", "tree"]}],
}


def box(label: str, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    return {"label": label, "x": x, "y": y, "width": w, "height": h}


def archive(writer: Any, project: dict, rows: list[dict], store: MediaStore) -> zipfile.ZipFile:
    out = io.BytesIO()
    assert writer.write(project, iter(rows), out, media=store) == len(rows)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def test_yolo_detect_labels_are_normalised_centres(
    org: Org, labelled: Callable, upload: Callable, store: MediaStore
) -> None:
    ref = upload(200, 100)
    answer = {"objects": [box("car", 10, 20, 50, 40), box("no", 150, 50, 100, 100)]}  # the 2nd overflows
    project, rows = labelled(org, BOXES, [{"data": {"photo": ref}}], [[answer]] * 3)
    task = rows[0]["task_id"]
    zipped = archive(yolo.WRITER, project, rows, store)
    assert sorted(zipped.namelist()) == ["data.yaml", f"images/{task}.png", f"labels/{task}.txt"]
    assert yaml.safe_load(zipped.read("data.yaml"))["names"] == {0: "car", 1: "no"}  # "no" stays a string
    assert Image.open(zipped.open(f"images/{task}.png")).size == (200, 100)
    lines = [line.split() for line in zipped.read(f"labels/{task}.txt").decode().splitlines()]
    assert lines == [
        ["0", "0.175000", "0.400000", "0.250000", "0.400000"],
        ["1", "0.875000", "0.750000", "0.250000", "0.500000"],  # cut to x 150..200, y 50..100
    ]


def test_yolo_segment_lines_are_normalised_points(
    org: Org, labelled: Callable, upload: Callable, store: MediaStore
) -> None:
    ref = upload(100, 50)
    triangle = {"label": "tree", "points": [[0, 0], [100, 0], [50, 50]]}
    project, rows = labelled(org, POLYGONS, [{"data": {"photo": ref}}], [[{"outline": [triangle]}]])
    zipped = archive(yolo.WRITER, project, rows, store)
    line = zipped.read(f"labels/{rows[0]['task_id']}.txt").decode().split()
    assert line[0] == "1" and [float(v) for v in line[1:]] == [0, 0, 1, 0, 0.5, 1]


def test_yolo_refuses_boxes_and_polygons_together(org: Org) -> None:
    spec = {**BOXES, "questions": BOXES["questions"] + [{**POLYGONS["questions"][0], "required": False}]}
    with pytest.raises(InvalidInput, match="yolo: the spec has both boxes and polygons") as refused:
        yolo.WRITER.check(org.make_project(spec=spec))
    named = "name the questions of one kind to export (boxes: objects; polygons: outline)"
    assert refused.value.message.endswith(named)


def test_voc_annotations_use_one_based_inclusive_pixels(
    org: Org, labelled: Callable, upload: Callable, store: MediaStore
) -> None:
    refs = [upload(200, 100, "JPEG"), upload(64, 64)]
    items = [{"data": {"photo": ref}, "unique_id": f"img-{i}"} for i, ref in enumerate(refs)]
    answers = [{"objects": [box("car", 10, 20, 50, 40), box("no", 150, 50, 100, 100)]}, {"objects": []}]
    project, rows = labelled(org, BOXES, items, [answers] * 3)
    zipped = archive(voc.WRITER, project, rows, store)
    first, second = (row["task_id"] for row in rows)
    assert zipped.read("ImageSets/Main/default.txt").decode().split() == [first, second]
    assert zipped.read("labelmap.txt").decode().split() == ["car", "no"]
    assert f"JPEGImages/{first}.jpg" in zipped.namelist()

    root = ET.fromstring(zipped.read(f"Annotations/{first}.xml"))
    assert root.findtext("filename") == f"{first}.jpg"
    assert (root.findtext("size/width"), root.findtext("size/height")) == ("200", "100")
    objects = [
        (
            o.findtext("name"),
            o.findtext("truncated"),
            [int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")],
        )
        for o in root.iter("object")
    ]
    assert objects == [("car", "0", [11, 21, 60, 60]), ("no", "1", [151, 51, 200, 100])]
    assert list(ET.fromstring(zipped.read(f"Annotations/{second}.xml")).iter("object")) == []


def test_voc_writes_a_polygon_as_its_bounding_box(
    org: Org, labelled: Callable, upload: Callable, store: MediaStore
) -> None:
    triangle = {"label": "road", "points": [[10, 10], [90, 10], [50, 40]]}
    project, rows = labelled(org, POLYGONS, [{"data": {"photo": upload(100, 50)}}], [[{"outline": [triangle]}]])
    root = ET.fromstring(archive(voc.WRITER, project, rows, store).read(f"Annotations/{rows[0]['task_id']}.xml"))
    assert [root.findtext(f"object/bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")] == ["11", "11", "90", "40"]

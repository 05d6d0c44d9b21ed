"""COCO: boxes and polygons of the final answers, read back with pycocotools."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pycocotools.coco import COCO
from sqlalchemy import update

from truthset.errors import InvalidInput
from truthset.services import export, tasks
from truthset.services.formats import coco, conll
from truthset.services.formats.images import MediaStore, write_options
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

SPEC: dict[str, Any] = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [
        {"name": "objects", "type": "boxes", "field": "photo", "labels": ["car", "person"]},
        {"name": "outline", "type": "polygons", "field": "photo", "labels": ["road"], "required": False},
    ],
}
ROAD = [[0, 50], [200, 50], [200, 100], [0, 100]]


def box(label: str, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    return {"label": label, "x": x, "y": y, "width": w, "height": h}


def write(project: dict, rows: list[dict], store: MediaStore) -> bytes:
    out = io.BytesIO()
    assert coco.WRITER.write(project, iter(rows), out, media=store) == len(rows)
    return out.getvalue()


# pycocotools' compiled mask decoder predates NumPy 2's __array__ copy keyword (its warning, not ours)
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_pycocotools_reads_the_consensus_boxes_and_polygons(
    org: Org, labelled: Callable, upload: Callable, store: MediaStore, tmp_path: Path
) -> None:
    images = [upload(200, 100), upload(640, 480, "JPEG")]
    items = [{"data": {"photo": ref}, "unique_id": f"img-{i}"} for i, ref in enumerate(images)]
    first = {"objects": [box("car", 10, 10, 50, 40)], "outline": [{"label": "road", "points": ROAD}]}
    second = {"objects": [box("person", 100, 100, 30, 60), box("car", 300, 200, 500, 500)]}  # 2nd box overflows
    project, rows = labelled(org, SPEC, items, [[first, second]] * 3)
    path = tmp_path / "coco.json"
    path.write_bytes(write(project, rows, store))

    dataset = COCO(str(path))
    assert [c["name"] for c in dataset.loadCats(dataset.getCatIds())] == ["car", "person", "road"]
    by_task = {image["unique_id"]: image for image in dataset.loadImgs(dataset.getImgIds())}
    assert (by_task["img-0"]["width"], by_task["img-0"]["height"]) == (200, 100)
    assert (by_task["img-1"]["width"], by_task["img-1"]["height"]) == (640, 480)
    assert by_task["img-1"]["file_name"].endswith(".jpg") and by_task["img-1"]["image"] == images[1]

    first_anns = dataset.loadAnns(dataset.getAnnIds(imgIds=[by_task["img-0"]["id"]]))
    car, road = sorted(first_anns, key=lambda a: a["category_id"])
    assert car["bbox"] == [10, 10, 50, 40] and car["area"] == 2000 and car["segmentation"] == []
    assert 0 < car["score"] < 1
    assert road["segmentation"] == [[0, 50, 200, 50, 200, 100, 0, 100]] and road["area"] == 10_000
    assert road["bbox"] == [0, 50, 200, 50]
    assert dataset.annToMask(road).sum() == 200 * 50  # pycocotools rasterises the polygon

    second_anns = dataset.loadAnns(dataset.getAnnIds(imgIds=[by_task["img-1"]["id"]]))
    boxes = {dataset.loadCats(a["category_id"])[0]["name"]: a["bbox"] for a in second_anns}
    assert boxes == {"person": [100, 100, 30, 60], "car": [300, 200, 340, 280]}  # cut to the 640 x 480 image


def test_an_external_url_image_is_refused_naming_the_task(org: Org, labelled: Callable, store: MediaStore) -> None:
    items = [{"data": {"photo": "https://example.com/a.jpg"}, "unique_id": "remote-1"}]
    project, rows = labelled(org, SPEC, items, [[{"objects": [box("car", 1, 1, 5, 5)]}]])
    with pytest.raises(InvalidInput, match=r"coco: task remote-1: .*external URL.*width and height"):
        write(project, rows, store)


def test_another_organizations_image_is_never_read(
    org: Org, other_org: Org, labelled: Callable, upload: Callable, media_dir: Path
) -> None:
    """A task can no longer be made naming another organization's image (tasks.create_task and the
    importer refuse it); one stored before that check (made here by changing its data) is still
    refused by the export, which reads media only through the organization."""
    theirs = upload(50, 50, owner=other_org)
    refused = tasks.import_tasks(
        org.db, org.owner.principal, org.make_project(spec=SPEC)["id"], [(1, {"data": {"photo": theirs}})]
    )
    assert refused.created == 0 and "no uploaded image" in refused.errors[0]["message"]
    project, _ = labelled(org, SPEC, [{"data": {"photo": upload(50, 50)}}], [[{"objects": []}]])
    with org.db.write() as conn:
        conn.execute(update(t.tasks).where(t.tasks.c.project_id == project["id"]).values(data={"photo": theirs}))
    rows = list(export.export_rows(org.db, org.owner.principal, project["id"]))
    with pytest.raises(InvalidInput, match="not an uploaded image of this organization"):
        write(project, rows, MediaStore(org.db, org.id, media_dir))


def test_a_project_without_shape_questions_is_refused(org: Org) -> None:
    project = org.make_project()
    with pytest.raises(InvalidInput, match="coco: the spec has no boxes or polygons question"):
        coco.WRITER.check(project)


def test_an_empty_answer_is_an_image_without_objects(
    org: Org, labelled: Callable, upload: Callable, store: MediaStore
) -> None:
    project, rows = labelled(org, SPEC, [{"data": {"photo": upload(20, 20)}}], [[{"objects": []}]])
    written = json.loads(write(project, rows, store))
    assert len(written["images"]) == 1 and written["annotations"] == []


def test_an_image_whose_file_is_gone_is_refused_naming_the_task(
    org: Org, labelled: Callable, upload: Callable, store: MediaStore, media_dir: Path
) -> None:
    ref = upload(30, 30)
    project, rows = labelled(org, SPEC, [{"data": {"photo": ref}, "unique_id": "lost"}], [[{"objects": []}]])
    for blob in media_dir.rglob("*"):
        if blob.is_file():
            blob.unlink()
    with pytest.raises(InvalidInput, match=r"coco: task lost: .*missing from the media store"):
        write(project, rows, store)


def test_write_options_give_image_writers_the_organizations_media(org: Org, media_dir: Path) -> None:
    assert isinstance(write_options(coco.WRITER, org.db, org.id, media_dir)["media"], MediaStore)
    assert write_options(conll.WRITER, org.db, org.id, media_dir) == {}

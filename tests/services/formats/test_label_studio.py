"""Label Studio JSON: each question type in Label Studio's result shape; responses as annotations,
the result as a prediction; everything else kept in meta for the round trip."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from truthset.errors import InvalidInput
from truthset.services.formats import label_studio
from truthset.services.formats.images import MediaStore
from truthset.storage import repositories as repo

if TYPE_CHECKING:
    from conftest import Org

TEXT_SPEC: dict[str, Any] = {
    "fields": [{"name": "review", "type": "text"}, {"name": "replies", "type": "responses"}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["pos", "neg"]},
        {"name": "topics", "type": "labels", "options": ["price", "service"]},
        {"name": "stars", "type": "rating", "min": 1, "max": 5},
        {"name": "price", "type": "number", "min": 0, "max": 1000},
        {"name": "summary", "type": "text"},
        {"name": "quality", "type": "rubric", "criteria": [{"name": "clarity", "comment": "optional"}]},
        {"name": "places", "type": "spans", "field": "review", "labels": ["LOC"]},
        {"name": "best", "type": "ranking", "field": "replies", "mode": "order"},
    ],
}
IMAGE_SPEC: dict[str, Any] = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [
        {"name": "cars", "type": "boxes", "field": "photo", "labels": ["car"]},
        {"name": "roads", "type": "polygons", "field": "photo", "labels": ["road"], "required": False},
    ],
}
PAIRWISE: dict[str, Any] = {"name": "better", "type": "ranking", "field": "pair", "allow_tie": True}
REVIEW = "Great pizza in Naples, fair price."


def with_responses(org: Org, rows: list[dict]) -> list[dict]:
    """The rows as the export gives them with each task's responses (the provenance rows' contract)."""
    with org.db.read() as conn:
        return [{**row, "responses": repo.responses_of_task(conn, org.id, row["task_id"])} for row in rows]


def write(project: dict, rows: list[dict], store: MediaStore | None = None) -> list[dict]:
    out = io.BytesIO()
    assert label_studio.WRITER.write(project, iter(rows), out, media=store) == len(rows)
    return json.loads(out.getvalue())


def by_name(result: list[dict]) -> dict[str, dict]:
    return {item["from_name"]: item for item in result}


def test_every_text_question_type_in_label_studio_shape(org: Org, labelled: Callable) -> None:
    answer = {
        "sentiment": "pos",
        "topics": ["price"],
        "stars": 4,
        "price": 12.5,
        "summary": "good pizza",
        "quality": {"clarity": {"score": 4, "comment": "clear"}},
        "places": [{"start": 15, "end": 21, "label": "LOC"}],
        "best": {"order": [1, 0]},
    }
    items = [{"data": {"review": REVIEW, "replies": ["thanks", "thank you!"]}, "unique_id": "r-1"}]
    project, rows = labelled(org, TEXT_SPEC, items, [[answer]] * 2)
    (task,) = write(project, with_responses(org, rows))

    assert task["id"] == rows[0]["task_id"] and task["data"] == items[0]["data"]
    assert len(task["annotations"]) == 2
    annotation = task["annotations"][0]
    assert annotation["completed_by"] in rows[0]["result"]["workers"]
    results = by_name(annotation["result"])
    assert results["sentiment"] == {
        "id": "r0",
        "from_name": "sentiment",
        "to_name": "review",
        "type": "choices",
        "value": {"choices": ["pos"]},
    }
    assert results["topics"]["value"] == {"choices": ["price"]}
    assert (results["stars"]["type"], results["stars"]["value"]) == ("rating", {"rating": 4})
    assert (results["price"]["type"], results["price"]["value"]) == ("number", {"number": 12.5})
    assert (results["summary"]["type"], results["summary"]["value"]) == ("textarea", {"text": ["good pizza"]})
    assert results["quality.clarity"]["value"] == {"rating": 4}
    assert results["quality.clarity.comment"]["value"] == {"text": ["clear"]}
    assert results["places"]["type"] == "labels"
    assert results["places"]["value"] == {"start": 15, "end": 21, "text": "Naples", "labels": ["LOC"]}
    assert (results["best"]["type"], results["best"]["to_name"]) == ("ranker", "replies")
    assert results["best"]["value"] == {"ranker": {"best": ["1", "0"]}}
    assert len({item["id"] for item in annotation["result"]}) == len(annotation["result"])

    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "truthset" and prediction["score"] == rows[0]["confidence"]
    predicted = by_name(prediction["result"])
    assert predicted["sentiment"]["value"] == {"choices": ["pos"]}
    assert predicted["sentiment"]["score"] == rows[0]["result"]["confidence"]["sentiment"]

    meta = task["meta"]["truthset"]
    assert (meta["unique_id"], meta["result"]) == ("r-1", rows[0]["result"])
    assert [r["answer"]["best"]["order"] for r in meta["responses"]] == [[1, 0], [1, 0]]


def test_shapes_are_in_percent_of_the_image(org: Org, labelled: Callable, upload: Callable, store: MediaStore) -> None:
    answer = {
        "cars": [{"label": "car", "x": 50, "y": 25, "width": 100, "height": 50}],
        "roads": [{"label": "road", "points": [[0, 0], [200, 0], [200, 100]]}],
    }
    project, rows = labelled(org, IMAGE_SPEC, [{"data": {"photo": upload(200, 100)}}], [[answer]])
    (task,) = write(project, with_responses(org, rows), store)
    results = by_name(task["annotations"][0]["result"])
    box = results["cars"]
    assert (box["type"], box["to_name"], box["original_width"], box["original_height"]) == (
        "rectanglelabels",
        "photo",
        200,
        100,
    )
    assert box["value"] == {"x": 25, "y": 25, "width": 50, "height": 50, "rotation": 0, "rectanglelabels": ["car"]}
    assert results["roads"]["type"] == "polygonlabels"
    assert results["roads"]["value"]["points"] == [[0, 0], [100, 0], [100, 100]]
    assert by_name(task["predictions"][0]["result"])["cars"]["value"]["x"] == 25


def test_shapes_on_an_external_image_are_refused(org: Org, labelled: Callable, store: MediaStore) -> None:
    answer = {"cars": [{"label": "car", "x": 1, "y": 1, "width": 2, "height": 2}]}
    items = [{"data": {"photo": "https://example.com/x.png"}, "unique_id": "far"}]
    project, rows = labelled(org, IMAGE_SPEC, items, [[answer]])
    with pytest.raises(InvalidInput, match=r"label_studio: task far: .*external URL"):
        write(project, rows, store)


def test_pairwise_rankings_are_left_or_right_and_a_tie_has_no_result() -> None:
    question = label_studio.spec_of(
        {"spec": {"fields": [{"name": "pair", "type": "responses"}], "questions": [PAIRWISE]}}
    ).questions[0]
    head = {"from_name": "better", "to_name": "pair"}
    assert label_studio._ranking(question, head, {"winner": 0})[0]["value"] == {"selected": "left"}
    assert label_studio._ranking(question, head, 1)[0]["value"] == {"selected": "right"}  # a final answer
    assert label_studio._ranking(question, head, {"winner": "tie"}) == []

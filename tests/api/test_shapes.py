"""`boxes` and `polygons` through the API: a project with the type, answers, the result, agreement."""

from __future__ import annotations

import json
from typing import Any

from .helpers import API, Api, Org, assert_error

SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}, {"name": "photo", "type": "image", "required": False}],
    "questions": [
        {"name": "objects", "type": "boxes", "field": "photo", "labels": [{"value": "car", "hotkey": "c"}, "person"]},
        {"name": "outline", "type": "polygons", "field": "photo", "labels": ["car"], "required": False},
    ],
}


def _box(label: str, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    return {"label": label, "x": x, "y": y, "width": w, "height": h}


def test_question_types_list_boxes_and_polygons(api: Api, org: Org) -> None:
    types = {item["name"]: item for item in api.get(f"{API}/question-types", auth=org.owner).json()}
    assert {"boxes", "polygons"} <= set(types)
    assert "iou_threshold" in types["boxes"]["config_schema"]["properties"]


def test_a_spec_whose_boxes_name_no_image_field_is_refused(api: Api, org: Org) -> None:
    spec = {**SPEC, "questions": [{**SPEC["questions"][0], "field": "text"}]}
    error = assert_error(api.post(f"{API}/projects", auth=org.owner, json={"name": "bad", "spec": spec}), 422)
    assert "questions[0].field" in error["message"], error


def test_three_workers_draw_boxes_and_the_result_is_the_consensus(api: Api, org: Org) -> None:
    project = org.make_project(overlap=3, spec=SPEC)
    task = org.make_task(project["id"])
    drawn = [[_box("car", 10, 10, 100, 50)], [_box("car", 12, 11, 98, 52)], [_box("person", 300, 300, 50, 50)]]
    square = [[0, 0], [10, 0], [10, 10], [0, 10]]
    for boxes in drawn:
        worker = org.add_member("annotator")
        assert api.post(f"{API}/projects/{project['id']}/next", auth=worker).status_code == 200
        answer = {"objects": boxes, "outline": [{"label": "car", "points": square}]}
        r = api.post(f"{API}/tasks/{task['id']}/responses", auth=worker, json={"answer": answer})
        assert r.status_code == 201, r.text
        assert r.json()["response"]["answer"]["objects"] == boxes  # stored as sent
    done = api.get(f"{API}/tasks/{task['id']}", auth=org.owner).json()
    assert done["status"] == "completed"
    assert done["result"]["answer"]["objects"] == [
        {"label": "car", "x": 11.0, "y": 10.5, "width": 99.0, "height": 51.0, "confidence": 0.6}
    ]
    assert done["result"]["answer"]["outline"] == [{"label": "car", "points": square, "confidence": 0.8}]
    # the JSONL export carries the result as stored: consensus shapes with their confidences
    [line] = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner).text.splitlines()
    exported = json.loads(line)
    assert exported["answer"] == done["result"]["answer"] and exported["confidence"] == done["confidence"]
    (objects, outline) = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()["questions"]
    # pairs: (1, 2) IoU 98 * 49 / (5000 + 5096 - 4802) (matched, F1 1); (1, 3) and (2, 3) IoU 0 (F1 0)
    assert abs(objects["measures"]["mean_iou"] - 4802 / 5294 / 3) < 1e-6
    assert abs(objects["measures"]["f1_iou50"] - 1 / 3) < 1e-6  # served rounded to 6 places
    # the dashboard serves the same measures (its Agreement column shows them), without the API's pointer
    dashboard = api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.owner).json()
    shown = {q["question"]: q for q in dashboard["agreement"]}["objects"]
    assert shown["measures"] == objects["measures"] and shown["percent_agreement"] is None
    assert outline["measures"] == {"mean_iou": 1.0, "f1_iou50": 1.0}


def test_a_bad_box_is_a_422_naming_the_answer_field(api: Api, org: Org) -> None:
    project = org.make_project(spec=SPEC)
    task = org.make_task(project["id"])
    worker = org.add_member("annotator")
    api.post(f"{API}/projects/{project['id']}/next", auth=worker)
    bad = {"objects": [_box("car", 0, 0, -5, 10)]}
    error = assert_error(api.post(f"{API}/tasks/{task['id']}/responses", auth=worker, json={"answer": bad}), 422)
    assert error["message"].startswith("answer.objects: [0].width must not be negative"), error


def test_agreement_without_two_answers_says_so_rather_than_pointing_at_no_measures(api: Api, org: Org) -> None:
    project = org.make_project(overlap=1, spec=SPEC)
    task = org.make_task(project["id"])
    worker = org.add_member("annotator")
    assert api.post(f"{API}/projects/{project['id']}/next", auth=worker).status_code == 200
    answer = {"objects": [_box("car", 10, 10, 100, 50)]}
    assert api.post(f"{API}/tasks/{task['id']}/responses", auth=worker, json={"answer": answer}).status_code == 201
    objects = api.get(f"{API}/projects/{project['id']}/agreement", auth=org.owner).json()["questions"][0]
    assert objects["measures"] == {} and objects["reasons"]["fleiss_kappa"].startswith("no task has two")
    shown = api.get(f"{API}/projects/{project['id']}/dashboard", auth=org.owner).json()["agreement"][0]
    assert shown["measures"] == {} and shown["reason"] == objects["reasons"]["percent_agreement"]

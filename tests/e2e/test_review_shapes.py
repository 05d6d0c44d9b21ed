"""The reviewer workbench on the types that are not one word: boxes and polygons are shown in words and
fixed with the annotator's drawing widget (keyboard and mouse); rubric and number answers are shown as
criterion: score (comment) and with their unit. A real server, a real Chromium; what was stored is read
back through the REST API."""

from __future__ import annotations

import pytest

from .support import Server, Tab, log_in
from .test_review import _annotator_client
from .test_shapes import HEIGHT, WIDTH, Stage, _box, _near, _png

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

LABELS = [{"value": "car", "label": "Car"}, {"value": "person", "label": "Person"}]
SPEC = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [
        {"name": "objects", "type": "boxes", "field": "photo", "labels": LABELS},
        {"name": "outline", "type": "polygons", "field": "photo", "labels": LABELS, "required": False},
        {"name": "weight", "type": "number", "min": 0, "max": 500, "unit": "kg", "required": False},
        {
            "name": "quality",
            "type": "rubric",
            "required": False,
            "criteria": [{"name": "sharpness", "comment": "optional"}, {"name": "framing"}],
        },
    ],
}
ANSWER = {
    "objects": [{"label": "car", "x": 50, "y": 40, "width": 120, "height": 100}],
    "outline": [{"label": "person", "points": [[200, 50], [300, 50], [250, 150]]}],
    "weight": 72.5,
    "quality": {"sharpness": {"score": 4, "comment": "a bit soft"}, "framing": {"score": 2}},
}


def _task_waiting_for_review(server: Server) -> tuple[str, str]:
    """A project sending every task to review, its one task answered with ANSWER: (project, task)."""
    with server.api() as owner:
        media = owner.post("/media", files={"file": ("grey.png", _png(WIDTH, HEIGHT), "image/png")})
        media.raise_for_status()
        quality = {"overlap": 1, "review": {"sample_rate": 1.0}}
        project = owner.post("/projects", json={"name": "Review shapes", "spec": SPEC, "quality": quality})
        project.raise_for_status()
        project_id = project.json()["id"]
        task = owner.post(f"/projects/{project_id}/tasks", json={"data": {"photo": f"media:{media.json()['id']}"}})
        task.raise_for_status()
        with _annotator_client(server, owner) as annotator:
            lease = annotator.post(f"/projects/{project_id}/next").json()
            body = {"answer": ANSWER, "assignment_id": lease["id"]}
            assert annotator.post(f"/tasks/{lease['task']['id']}/responses", json=body).status_code == 201
    return project_id, task.json()["id"]


def test_a_reviewer_reads_and_redraws_shapes(tab: Tab, server: Server) -> None:
    project_id, task_id = _task_waiting_for_review(server)
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project_id}/review")
    expect(page.locator("#task")).to_have_attribute("data-task", task_id)
    # every answer in words, not JSON: the response and the result alike
    response = page.locator("#responses li")
    expect(response).to_contain_text("objects: Car: box 50,40 120x100")
    expect(response).to_contain_text("outline: Person: polygon 3 points 200,50 300,50 250,150")
    expect(response).to_contain_text("weight: 72.5 kg")
    expect(response).to_contain_text("quality: sharpness: 4 (a bit soft); framing: 2")
    expect(page.locator('#result dd[data-question="objects"] strong')).to_have_text("Car: box 50,40 120x100")
    expect(page.locator('#result dd[data-question="weight"] strong')).to_have_text("72.5 kg")
    expect(page.locator("#task")).not_to_contain_text('"label"')
    # and drawn over a thumbnail of the image, where they are in pixels
    preview = page.locator('#result dd[data-question="objects"] .shape-preview')
    expect(preview).to_have_attribute("data-ready", "true")
    image, rect = preview.locator("img").bounding_box(), preview.locator("rect").bounding_box()
    scale = image["width"] / WIDTH
    assert abs(rect["x"] - image["x"] - 50 * scale) <= 2 and abs(rect["width"] - 120 * scale) <= 3, (image, rect)
    assert abs(rect["y"] - image["y"] - 40 * scale) <= 2 and abs(rect["height"] - 100 * scale) <= 3, (image, rect)
    polygon = page.locator('#responses li .shape-preview[data-question="outline"] polygon')
    expect(polygon).to_have_attribute("points", "200,50 300,50 250,150")
    expect(polygon).to_have_class("shape-preview-shape span-c1")  # the second label's colour

    keymap = page.locator(".keymap")  # the drawing keys are listed with the reviewer's
    expect(keymap).to_contain_text("fix: select the previous / next shape")
    expect(keymap).to_contain_text("fix: delete the selected shape")
    page.keyboard.press("f")
    widget = page.locator('#fix-form [data-question="objects"]')
    stage = Stage(page, "objects")  # the result's box, drawn on the task's image
    expect(widget.locator(".shape-count")).to_have_text("1 box")
    widget.focus()
    page.keyboard.press("]")  # select the result's box
    page.keyboard.press("2")  # and make it a person, by the keyboard
    expect(widget.locator(".shape-item button").first).to_have_text("1. Person")
    page.keyboard.press("Escape")  # unselects the box: the fix form stays
    expect(page.locator("#fix-form")).to_be_visible()
    widget.get_by_text("Car").click()  # by the mouse: the next box is a car
    expect(widget.locator(".shape-item button").first).to_have_text("1. Person")
    stage.drag((250, 200), (350, 280))
    expect(widget.locator(".shape-count")).to_have_text("2 boxes")
    page.locator("#fix-confirm").click()
    expect(page.locator('[data-panel="empty"]')).to_be_visible()

    with server.api() as owner:
        task = owner.get(f"/tasks/{task_id}").json()
        [review] = owner.get(f"/tasks/{task_id}/reviews").json()
    fix = next(r for r in server.responses(task_id) if r["answer"]["objects"] != ANSWER["objects"])
    person, car = fix["answer"]["objects"]
    assert person["label"] == "person" and _near(_box(person), [50, 40, 120, 100]), person
    assert car["label"] == "car" and _near(_box(car), [250, 200, 100, 80]), car
    assert review["verdict"] == "fix" and task["review_status"] == "fixed"
    assert task["result"]["answer"]["objects"] == fix["answer"]["objects"]
    # the untouched questions keep the result's answers (the fix form was filled with them)
    assert fix["answer"]["outline"] == ANSWER["outline"] and fix["answer"]["weight"] == 72.5
    assert fix["answer"]["quality"] == {"sharpness": {"score": 4}, "framing": {"score": 2}}  # comments: not in a result
    assert tab.script_errors() == [], tab.script_errors()

    # the task's page says the same in words: the result and every response (its stored JSON below)
    page.goto(f"/tasks/{task_id}")
    boxes = "; ".join(
        f"{_name(s['label'])}: box {s['x']:g},{s['y']:g} {s['width']:g}x{s['height']:g}"
        for s in fix["answer"]["objects"]
    )
    expect(page.locator('#task-result dd[data-question="objects"] strong')).to_have_text(boxes)
    expect(page.locator('#task-result dd[data-question="objects"] .shape-preview rect')).to_have_count(2)
    expect(page.locator('#task-result dd[data-question="weight"] strong')).to_have_text("72.5 kg")
    expect(page.locator('#task-result dd[data-question="quality"] strong')).to_have_text("sharpness: 4; framing: 2")
    words = page.locator('#history tr[data-kind="response"] .answer-words')
    expect(words).to_have_count(2)
    expect(words.first).to_contain_text("objects: Car: box 50,40 120x100 · outline: Person: polygon 3 points")
    expect(words.first).to_contain_text("quality: sharpness: 4 (a bit soft); framing: 2")
    expect(words.last).to_contain_text(f"objects: {boxes}")
    expect(page.locator('#history tr[data-kind="response"] code').first).to_contain_text('"width": 120')
    assert tab.script_errors() == [], tab.script_errors()


def _name(value: str) -> str:
    return next(label["label"] for label in LABELS if label["value"] == value)

"""`boxes` and `polygons` in the workbench: a real server, a real Chromium, shapes drawn with the mouse
(Annotorious draws them) and handled with the keyboard or the mouse; the stored answer is read back
through the REST API in natural image pixels."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

WIDTH, HEIGHT = 400, 300


def _png(width: int, height: int) -> bytes:
    """A real grey PNG (the standard library only)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x90" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _project(server: Server, name: str) -> tuple[str, str]:
    """A project asking for boxes and polygons on one uploaded image, with one task: (project, task)."""
    with server.api() as client:
        media = client.post("/media", files={"file": ("grey.png", _png(WIDTH, HEIGHT), "image/png")})
        media.raise_for_status()
        labels = [{"value": "car", "label": "Car"}, {"value": "person", "label": "Person"}]
        spec = {
            "fields": [{"name": "photo", "type": "image"}],
            "questions": [
                {"name": "objects", "type": "boxes", "field": "photo", "labels": labels},
                {"name": "outline", "type": "polygons", "field": "photo", "labels": labels, "required": False},
            ],
        }
        project = client.post("/projects", json={"name": name, "spec": spec})
        project.raise_for_status()
        project_id = project.json()["id"]
        task = client.post(f"/projects/{project_id}/tasks", json={"data": {"photo": f"media:{media.json()['id']}"}})
        task.raise_for_status()
        return project_id, task.json()["id"]


class Stage:
    """Page coordinates of natural image pixels in one question's stage (whatever the zoom)."""

    def __init__(self, page: Any, question: str) -> None:
        self.page = page
        self.image = page.locator(f'[data-question="{question}"] img.shape-image')
        # the drawing layer starts once the image has loaded
        expect(page.locator(f'[data-question="{question}"] .shape-stage')).to_have_attribute("data-ready", "true")
        self.image.scroll_into_view_if_needed()  # the mouse only reaches what is on screen

    def at(self, x: float, y: float) -> tuple[float, float]:
        box = self.image.bounding_box()
        scale = box["width"] / WIDTH
        return box["x"] + x * scale, box["y"] + y * scale

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        mouse = self.page.mouse
        mouse.move(*self.at(*start))
        mouse.down()
        mouse.move(*self.at(*end), steps=8)
        mouse.up()

    def click(self, x: float, y: float) -> None:
        self.page.mouse.click(*self.at(x, y))


def _near(actual: list[float], expected: list[float]) -> bool:
    return all(abs(a - e) <= 1.0 for a, e in zip(actual, expected, strict=True)) and len(actual) == len(expected)


def _box(shape: dict[str, Any]) -> list[float]:
    return [shape["x"], shape["y"], shape["width"], shape["height"]]


def _open(tab: Tab, project_id: str) -> Any:
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    page.goto(f"/projects/{project_id}/label")
    expect(page.locator("form#task")).to_be_visible()
    return page


def test_boxes_and_a_polygon_with_the_keyboard(tab: Tab, server: Server) -> None:
    project_id, task_id = _project(server, "Shapes by keyboard")
    page = _open(tab, project_id)
    expect(page.locator('#fields [data-field="photo"]')).to_have_count(0)  # shown in the widgets, not twice
    boxes = Stage(page, "objects")
    page.keyboard.press("2")  # the next shape is a person
    boxes.drag((50, 40), (150, 120))
    expect(page.locator('[data-question="objects"] .shape-count')).to_have_text("1 box")
    boxes.drag((150, 120), (170, 140))  # the new box is selected: its bottom-right corner resizes it
    # a click on the image outside the box ends the edit; Annotorious draws no new shape while one is
    # being edited, and on a loaded machine the resize's edit is still open here
    boxes.click(20, 200)
    expect(page.locator('[data-question="objects"] .shape-item.selected')).to_have_count(0)
    boxes.drag((20, 200), (60, 260))  # a second box, then deleted with the keyboard
    expect(page.locator('[data-question="objects"] .shape-count')).to_have_text("2 boxes")
    page.locator('[data-question="objects"]').focus()
    page.keyboard.press("]")  # select the first box
    page.keyboard.press("]")  # then the second
    page.keyboard.press("Delete")
    expect(page.locator('[data-question="objects"] .shape-count')).to_have_text("1 box")
    page.keyboard.press("n")  # on to the polygons
    outline = Stage(page, "outline")
    page.keyboard.press("1")  # car
    outline.click(20, 20)
    outline.click(80, 20)
    page.keyboard.press("Escape")  # drops the half-drawn outline, not the task
    expect(page.locator("form#task")).to_be_visible()
    for x, y in ((200, 50), (300, 50), (300, 150), (200, 150)):
        outline.click(x, y)
    outline.click(200, 50)  # the first point again closes the outline
    expect(page.locator('[data-question="outline"] .shape-count')).to_have_text("1 polygon")
    page.locator('[data-question="outline"]').focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="No more tasks")).to_be_visible()  # the only task is answered
    [stored] = server.responses(task_id)
    [box] = stored["answer"]["objects"]
    assert box["label"] == "person" and _near(_box(box), [50, 40, 120, 100]), box
    [polygon] = stored["answer"]["outline"]
    assert polygon["label"] == "car"
    assert _near([c for p in polygon["points"] for c in p], [200, 50, 300, 50, 300, 150, 200, 150]), polygon
    assert tab.script_errors() == [], tab.script_errors()


def test_boxes_with_the_mouse_at_a_zoom(tab: Tab, server: Server) -> None:
    project_id, task_id = _project(server, "Shapes by mouse")
    page = _open(tab, project_id)
    widget = page.locator('[data-question="objects"]')
    stage = Stage(page, "objects")
    widget.get_by_text("Person").click()
    stage.drag((10, 10), (60, 60))
    expect(widget.locator(".shape-count")).to_have_text("1 box")
    widget.get_by_role("button", name="Delete box 1").click()
    expect(widget.locator(".shape-count")).to_have_text("0 boxes")
    widget.get_by_role("button", name="Zoom in").click()
    widget.get_by_role("button", name="Zoom in").click()
    expect(widget.locator(".shape-stage")).not_to_have_attribute("data-zoom", "1")
    widget.get_by_text("Car").click()
    stage.drag((100, 80), (140, 130))  # drawn on the zoomed image: stored in natural pixels
    expect(widget.locator(".shape-count")).to_have_text("1 box")
    stage.drag((120, 105), (130, 95))  # the selected box, moved by its middle: 10 right, 10 up
    page.reload()  # the draft comes back, box (where it was moved to) and label
    expect(page.locator("#draft")).to_have_text("Draft restored")
    expect(widget.locator(".shape-count")).to_have_text("1 box")
    expect(widget.locator(".shape-item")).to_contain_text("1. Car")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="No more tasks")).to_be_visible()  # the only task is answered
    [stored] = server.responses(task_id)
    [box] = stored["answer"]["objects"]
    assert box["label"] == "car" and _near(_box(box), [110, 70, 40, 50]), box
    assert tab.script_errors() == [], tab.script_errors()

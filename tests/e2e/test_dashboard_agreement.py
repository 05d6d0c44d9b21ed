"""The dashboard's Agreement column for a type with figures of its own (a real server, a real
Chromium): two workers box the same image and the column shows the mean IoU and F1 of their boxes,
not a pointer to an API field."""

from __future__ import annotations

import uuid

import httpx
import pytest

from .support import Server, Tab, log_in
from .test_shapes import HEIGHT, WIDTH, _png

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def _box(x: float, y: float, width: float, height: float) -> dict[str, object]:
    return {"label": "car", "x": x, "y": y, "width": width, "height": height}


def _worker_client(server: Server, client: httpx.Client) -> httpx.Client:
    """A second annotator of the organization, with an API key the owner made for them."""
    member = client.post("/members", json={"email": f"box-{uuid.uuid4().hex[:8]}@example.com", "role": "annotator"})
    member.raise_for_status()
    key = client.post("/keys", json={"name": "boxes", "member_id": member.json()["id"]})
    key.raise_for_status()
    headers = {"Authorization": f"Bearer {key.json()['key']}"}
    return httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=10)


def test_the_dashboard_shows_box_agreement_as_iou(tab: Tab, server: Server) -> None:
    with server.api() as client:
        media = client.post("/media", files={"file": ("grey.png", _png(WIDTH, HEIGHT), "image/png")})
        media.raise_for_status()
        spec = {
            "fields": [{"name": "photo", "type": "image"}],
            "questions": [{"name": "objects", "type": "boxes", "field": "photo", "labels": ["car"]}],
        }
        body = {"name": f"boxes {uuid.uuid4().hex[:6]}", "spec": spec, "quality": {"overlap": 2}}
        project = client.post("/projects", json=body)
        project.raise_for_status()
        pid = project.json()["id"]
        task = client.post(f"/projects/{pid}/tasks", json={"data": {"photo": f"media:{media.json()['id']}"}})
        task.raise_for_status()
        with _worker_client(server, client) as first, _worker_client(server, client) as second:
            for worker, box in ((first, _box(10, 10, 100, 50)), (second, _box(12, 11, 98, 52))):
                answered = worker.post(f"/tasks/{task.json()['id']}/responses", json={"answer": {"objects": [box]}})
                assert answered.status_code == 201, answered.text
        measures = client.get(f"/projects/{pid}/agreement").json()["questions"][0]["measures"]

    log_in(tab.page, server.owner_email, server.owner_password)
    tab.page.goto(f"/projects/{pid}/dashboard")
    row = tab.page.locator("#agreement-rows tr").filter(has_text="objects")
    expect(row).to_contain_text(f"mean IoU {measures['mean_iou']:.3f}")
    expect(row).to_contain_text("F1 of matched shapes 1.000")
    expect(row).not_to_contain_text("see measures")
    assert tab.script_errors() == []

"""The import page takes a list of image URLs (it offered every other import format, and URLs only
through the API, SDK and CLI): a real ``truthset serve`` whose outbound guard lets it reach
127.0.0.1, an image server started by the test, a real Chromium uploading the list."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from receiver import Reply, Request, running

from .support import OutboundServer, new_project, outbound_server, signed_in_page

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "kind", "type": "label", "options": ["cat", "dog"]}],
}


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, format="PNG")
    return out.getvalue()


def _images(request: Request, n: int) -> Reply:
    return Reply(200, _png((6, 4)), {"Content-Type": "image/png"})


@pytest.fixture(scope="module")
def url_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutboundServer]:
    with outbound_server(tmp_path_factory.mktemp("e2e-urls"), "urls-owner@example.com") as server:
        yield server


def test_a_manager_imports_a_list_of_image_urls_from_the_import_page(browser: Any, url_server: OutboundServer) -> None:
    with url_server.api() as api:
        project_id = new_project(api, SPEC)
    with signed_in_page(browser, url_server) as page:
        page.goto(f"/projects/{project_id}/import")
        with running(_images) as images:
            listing = f"{images.url}/a.png\n{images.url}/b.png\n".encode()
            page.get_by_label("File of tasks", exact=True).set_input_files(
                {"name": "photos.txt", "mimeType": "text/plain", "buffer": listing}
            )
            page.get_by_label("Format").select_option("urls")  # named: the page offers it beside the others
            page.get_by_role("button", name="Import").click()
            expect(page.locator("#import-progress")).to_have_attribute("data-status", "succeeded", timeout=30_000)
        expect(page.locator('[data-report="created"]')).to_have_text("2")
        with url_server.api() as api:
            tasks = api.get("/tasks", params={"project_id": project_id}).json()["items"]
        assert sorted(t["metadata"]["url"].rsplit("/", 1)[-1] for t in tasks) == ["a.png", "b.png"]
        assert all(t["data"]["photo"].startswith("media:") and t["metadata"]["width"] == 6 for t in tasks)

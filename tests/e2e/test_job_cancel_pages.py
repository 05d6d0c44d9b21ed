"""Canceling an export or an import from its page (a real ``truthset serve`` without its job runner,
so the jobs stay queued until canceled; a real Chromium). Jobs could be canceled only through the
API, SDK and CLI (``truthset jobs cancel``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .support import OutboundServer, new_project, outbound_server, signed_in_page

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutboundServer]:
    """A server whose jobs wait for a `truthset worker` that never comes."""
    env = {"TRUTHSET_JOBS_IN_PROCESS": "false"}
    with outbound_server(tmp_path_factory.mktemp("e2e-cancel"), "cancel-owner@example.com", env) as server:
        yield server


def test_an_export_waiting_for_a_worker_is_canceled_from_the_exports_page(
    browser: Any, idle_server: OutboundServer
) -> None:
    with idle_server.api() as api:
        project_id = new_project(api, SPEC)
    with signed_in_page(browser, idle_server) as page:
        page.goto(f"/projects/{project_id}/exports")
        page.get_by_role("button", name="Start export").click()
        row = page.locator("#export-rows tr").first
        expect(row).to_have_attribute("data-status", "queued")
        row.get_by_role("button", name="Cancel").click()
        expect(row).to_have_attribute("data-status", "canceled")
        expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
        with idle_server.api() as api:
            (job,) = api.get("/jobs", params={"kind": "export"}).json()["items"]
        assert job["status"] == "canceled"


def test_an_import_waiting_for_a_worker_is_canceled_from_the_import_page(
    browser: Any, idle_server: OutboundServer
) -> None:
    with idle_server.api() as api:
        project_id = new_project(api, SPEC)
    with signed_in_page(browser, idle_server) as page:
        page.goto(f"/projects/{project_id}/import")
        lines = b'{"data": {"text": "a cat"}}\n{"data": {"text": "a dog"}}\n'
        page.get_by_label("File of tasks", exact=True).set_input_files(
            {"name": "tasks.jsonl", "mimeType": "application/x-ndjson", "buffer": lines}
        )
        page.get_by_role("button", name="Import").click()
        expect(page.locator("#import-progress")).to_have_attribute("data-status", "queued")
        page.get_by_role("button", name="Cancel the import").click()
        expect(page.locator("#import-progress")).to_have_attribute("data-status", "canceled")
        expect(page.locator("#import-state")).to_contain_text("canceled")
        expect(page.get_by_role("button", name="Cancel the import")).to_be_hidden()
        with idle_server.api() as api:
            assert api.get("/tasks", params={"project_id": project_id}).json()["items"] == []

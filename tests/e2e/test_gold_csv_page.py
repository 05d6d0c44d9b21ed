"""Gold from a CSV on the import page (a real server, a real Chromium): a wrong line is named by its
number and nothing is marked; the corrected file marks the tasks, as the gold listing then says;
a task's page unmarks it. Both could be done only through the API, SDK and CLI."""

from __future__ import annotations

import uuid

import pytest

from .support import Server, Tab, log_in, new_project

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}


def test_a_manager_marks_gold_from_a_csv_on_the_import_page(tab: Tab, server: Server) -> None:
    tag = uuid.uuid4().hex[:8]
    with server.api() as client:
        pid = new_project(
            client, SPEC, [{"data": {"text": f"animal {i}"}, "unique_id": f"g-{tag}-{i}"} for i in range(3)]
        )

    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{pid}/import")
    expect(page.locator("#gold-form")).to_contain_text("animal")  # the columns it takes, by question
    wrong = f"unique_id,animal\ng-{tag}-0,cat\ng-{tag}-1,horse\n".encode()
    page.get_by_label("Gold CSV").set_input_files({"name": "gold.csv", "mimeType": "text/csv", "buffer": wrong})
    page.get_by_role("button", name="Mark gold").click()
    expect(page.locator("#err-gold")).to_contain_text("line 3")
    with server.api() as client:
        assert client.get(f"/projects/{pid}/gold").json()["items"] == []  # all lines or none

    right = f"unique_id,animal\ng-{tag}-0,cat\ng-{tag}-1,dog\n".encode()
    page.get_by_label("Gold CSV").set_input_files({"name": "gold.csv", "mimeType": "text/csv", "buffer": right})
    page.get_by_role("button", name="Mark gold").click()
    expect(page.locator("#gold-status")).to_have_text("2 lines: 2 tasks marked gold, 0 gold answers replaced.")
    expect(page.locator("#err-gold")).to_be_hidden()
    with server.api() as client:
        gold = client.get(f"/projects/{pid}/gold").json()["items"]
    assert sorted(item["gold"]["animal"] for item in gold) == ["cat", "dog"]

    # and unmarked from the task's page (it could be unmarked only through the API, SDK and CLI)
    cat = next(item for item in gold if item["gold"]["animal"] == "cat")
    page.goto(f"/tasks/{cat['id']}")
    page.get_by_role("button", name="Unmark gold").click()
    expect(page.locator(".page-head .badge")).to_have_text("pending")  # no answers yet: back in the queue
    expect(page.get_by_role("button", name="Unmark gold")).to_have_count(0)
    with server.api() as client:
        left = client.get(f"/projects/{pid}/gold").json()["items"]
    assert [item["gold"]["animal"] for item in left] == ["dog"]
    assert tab.script_errors() == []

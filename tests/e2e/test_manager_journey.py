"""The chained proof of the web app for the people who run projects (a real server, a real Chromium).

One person who runs projects (an admin: a manager's pages, plus the members a manager may not
change) creates a project in the spec editor (an invalid spec is refused naming the field), imports
tasks from a file (the report names the invalid line), watches the dashboard move while an
annotator labels in another browser context, finds a task in the browser by a metadata filter and
opens it, changes a member's role, revokes a key, starts an export and downloads it (its content is
checked). The annotator meanwhile gets 403 on the manager pages and sees none of their links.
Stored state is checked through the REST API; screenshots of every page go to
``TRUTHSET_E2E_SCREENSHOTS`` when it is set.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in

SCREENSHOTS = Path(os.environ["TRUTHSET_E2E_SCREENSHOTS"]) if os.environ.get("TRUTHSET_E2E_SCREENSHOTS") else None

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "a long journey password 1"
SPEC = {
    "fields": [{"name": "review", "type": "text", "label": "Review"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
INVALID_SPEC = {**SPEC, "questions": [{"name": "sentiment", "type": "label", "options": ["only one"]}]}
LINES = [
    {"unique_id": "j-1", "data": {"review": "Lovely soup"}, "metadata": {"lang": "en"}},
    {"unique_id": "j-2", "data": {"review": "Schreckliches Essen"}, "metadata": {"lang": "de"}},
    {"unique_id": "j-3", "data": {"review": "Fine"}, "metadata": {"lang": "en"}},
]


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"journey-{name}.png"), full_page=True)


def _member(server: Server, role: str, name: str) -> dict[str, Any]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    with server.api() as client:
        made = client.post("/members", json={"email": email, "role": role, "password": PASSWORD, "name": name})
        assert made.status_code == 201, made.text
    body = made.json()
    return body.get("member", body)  # with a password given, no one-time secret: the member itself


def _create_project(page: Any) -> str:
    page.get_by_role("link", name="New project").click()
    page.wait_for_url("**/projects/new")
    page.get_by_label("Name", exact=True).fill("Journey reviews")
    page.get_by_label("Spec (JSON)").fill(json.dumps(INVALID_SPEC))
    expect(page.locator("#err-spec")).to_contain_text("spec.questions[0].options")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#err-spec")).to_contain_text("spec.questions[0].options")
    assert page.url.endswith("/projects/new")
    _shot(page, "editor-invalid")
    page.get_by_label("Spec (JSON)").fill(json.dumps(SPEC))
    page.get_by_label("Quality policy (JSON)").fill(json.dumps({"overlap": 1, "price_per_judgment": 0.5}))
    expect(page.locator("#err-spec")).to_be_hidden()
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(re.compile(r"/projects/[0-9a-f]{24}$"))
    return page.url.rsplit("/", 1)[-1]


def _import(page: Any, project_id: str) -> None:
    page.get_by_role("link", name="Import tasks").click()
    page.wait_for_url(f"**/projects/{project_id}/import")
    body = b"".join(orjson.dumps(line) + b"\n" for line in LINES) + b"{not json\n"
    page.get_by_label("File of tasks", exact=True).set_input_files(
        {"name": "reviews.jsonl", "mimeType": "application/x-ndjson", "buffer": body}
    )
    page.get_by_label("store the valid lines, report the others").check()
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-progress")).to_have_attribute("data-status", "succeeded")
    expect(page.locator('[data-report="created"]')).to_have_text("3")
    expect(page.locator('[data-report="invalid"]')).to_have_text("1")
    expect(page.locator("#import-error-rows tr td").first).to_have_text("4")  # the broken line's number
    _shot(page, "import")


def _label_one(annotator: Any, project_id: str) -> str:
    annotator.goto(f"/projects/{project_id}/label")
    form = annotator.locator("form#task")
    expect(form).to_be_visible()
    task_id = str(form.get_attribute("data-task"))
    annotator.keyboard.press("1")
    annotator.keyboard.press("Enter")
    expect(form).not_to_have_attribute("data-task", task_id)
    return task_id


def _watch_the_dashboard(page: Any, annotator: Any, project_id: str) -> None:
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"**/projects/{project_id}/dashboard")
    completed = page.locator('[data-progress="completed"]')
    expect(completed).to_have_text("0")
    expect(page.locator('[data-progress="pending"]')).to_have_text("3")
    expect(page.locator("#chart-throughput canvas")).to_have_count(1)  # uPlot drew (CSP-clean)
    _label_one(annotator, project_id)
    expect(completed).to_have_text("1", timeout=20_000)  # the page refreshes by itself
    _label_one(annotator, project_id)
    expect(completed).to_have_text("2", timeout=20_000)
    expect(page.locator("#throughput-summary")).to_have_attribute("data-total", "2")
    expect(page.locator("#cost-total")).to_have_text("1")  # 2 judgments x 0.5
    expect(page.locator("#worker-rows tr")).to_have_count(1)
    expect(page.locator("#worker-rows tr th")).to_have_text("Ann Otator")
    _shot(page, "dashboard")


def _find_and_open(page: Any, project_id: str) -> None:
    page.goto(f"/projects/{project_id}")
    page.get_by_role("link", name="Browse tasks").click()
    page.get_by_label("Metadata").fill("lang=de")
    page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("table.task-table tbody tr")
    expect(rows).to_have_count(1)
    _shot(page, "tasks")
    rows.get_by_role("link", name="j-2").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Task")
    expect(page.get_by_text("Schreckliches Essen")).to_be_visible()
    _shot(page, "task")


def _change_role_and_revoke(page: Any, server: Server, rita: dict[str, Any]) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    row = page.locator("tr", has_text=rita["email"])
    row.get_by_label(f"Role of {rita['email']}", exact=True).select_option("reviewer")
    row.get_by_role("button", name=f"Change the role of {rita['email']}").click()
    expect(page.get_by_role("heading", name=f"{rita['email']} is now reviewer")).to_be_visible()
    _shot(page, "members")
    with server.api() as client:
        assert client.get(f"/members/{rita['id']}").json()["role"] == "reviewer"
        key = client.post("/keys", json={"name": "rita pipeline", "member_id": rita["id"]}).json()
    assert httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {key['key']}"}).status_code == 200
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_role("link", name=re.compile("Revoke the key rita pipeline")).click()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("heading", name=re.compile("is revoked"))).to_be_visible()
    _shot(page, "keys")
    assert httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {key['key']}"}).status_code == 401


def _export(page: Any, project_id: str, labeled: set[str]) -> None:
    page.goto(f"/projects/{project_id}")
    page.get_by_role("link", name="Exports").click()
    page.wait_for_url(f"**/projects/{project_id}/exports")
    expect(page.get_by_text("No export yet.")).to_be_visible()
    page.get_by_label("Format").select_option("jsonl")
    page.get_by_label("Confidence at least").fill("lots")
    page.get_by_role("button", name="Start export").click()
    expect(page.locator("#err-min_confidence")).to_contain_text("min_confidence")  # refused, field named
    page.get_by_label("Confidence at least").fill("")
    page.get_by_role("button", name="Start export").click()
    row = page.locator("#export-rows tr").first
    expect(row).to_have_attribute("data-status", "succeeded", timeout=20_000)
    _shot(page, "exports")
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("Download")).click()
    content = Path(download.value.path()).read_bytes()
    exported = [orjson.loads(line) for line in content.splitlines() if line.strip()]
    assert {task["task_id"] for task in exported} == labeled  # completed tasks only: the two labeled
    assert all(task["result"]["answer"]["sentiment"] == "positive" for task in exported)
    # a delta export: the tasks changed since the cursor (10 minutes before the export above)
    page.reload()
    expect(page.locator("#delta-hint")).to_have_text(re.compile(r"^Changed since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: "))
    page.get_by_label("Only tasks changed since the last export").check()
    page.get_by_role("button", name="Start export").click()
    expect(page.locator("#export-rows tr")).to_have_count(2)
    delta = page.locator("#export-rows tr").first
    expect(delta).to_have_attribute("data-status", "succeeded", timeout=20_000)
    expect(delta).to_contain_text("updated since 20")  # the filter the job was given: the cursor
    with page.expect_download() as download:
        delta.get_by_role("link", name=re.compile("Download")).click()
    again = [orjson.loads(line) for line in Path(download.value.path()).read_bytes().splitlines() if line.strip()]
    assert {task["task_id"] for task in again} == labeled  # changed within the last 10 minutes


def _annotator_is_refused(annotator: Any, project_id: str) -> None:
    for page_name in ("dashboard", "exports", "import"):
        response = annotator.goto(f"/projects/{project_id}/{page_name}")
        assert response is not None and response.status == 403, page_name
        expect(annotator.get_by_role("heading", name="Not allowed")).to_be_visible()
    _shot(annotator, "annotator-403")
    annotator.goto("/")
    for page_name in ("dashboard", "exports", "import"):
        expect(annotator.locator(f'a[href="/projects/{project_id}/{page_name}"]')).to_have_count(0)
    _shot(annotator, "annotator-home")


def test_a_project_runners_day(tab: Tab, server: Server, browser: Any) -> None:
    page = tab.page
    admin = _member(server, "admin", "Ada Admin")
    rita = _member(server, "annotator", "Rita")
    log_in(page, admin["email"], PASSWORD)
    project_id = _create_project(page)
    _shot(page, "project")
    _import(page, project_id)
    page.goto(f"/projects/{project_id}")

    worker_context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800})
    try:
        annotator = worker_context.new_page()
        log_in(annotator, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
        _watch_the_dashboard(page, annotator, project_id)
        _annotator_is_refused(annotator, project_id)
    finally:
        worker_context.close()
    with server.api() as client:
        done = client.get("/tasks", params={"project_id": project_id, "status": "completed"}).json()["items"]
    labeled = {task["id"] for task in done}
    assert len(labeled) == 2

    _find_and_open(page, project_id)
    _change_role_and_revoke(page, server, rita)
    _export(page, project_id, labeled)
    assert tab.script_errors() == []


def test_a_manager_reinstates_a_worker_paused_by_gold_from_the_dashboard(tab: Tab, server: Server) -> None:
    page = tab.page
    manager = _member(server, "manager", "Mona Manager")
    worker = _member(server, "annotator", "Walt Wrong")
    with server.api() as owner:
        policy = {"overlap": 1, "gold": {"qualification": 2, "min_accuracy": 0.6}}
        project = owner.post("/projects", json={"name": "Gold journey", "spec": SPEC, "quality": policy}).json()
        imported = owner.post(
            f"/projects/{project['id']}/tasks/bulk",
            json=[{"data": {"review": f"review {i}"}, "unique_id": f"g-{i}"} for i in range(4)],
        )
        assert imported.status_code in (200, 201), imported.text
        listed = owner.get("/tasks", params={"project_id": project["id"]}).json()["items"]
        for task in listed[:2]:
            marked = owner.put(f"/tasks/{task['id']}/gold", json={"answer": {"sentiment": "positive"}})
            assert marked.status_code == 200, marked.text
        key = owner.post("/keys", json={"name": "walt", "member_id": worker["id"]}).json()["key"]
    with httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}) as walt:
        for _ in range(2):  # the qualification set, both wrong: paused
            lease = walt.post(f"/projects/{project['id']}/next").json()
            answer = {"answer": {"sentiment": "negative"}, "assignment_id": lease["id"]}
            assert walt.post(f"/tasks/{lease['task']['id']}/responses", json=answer).status_code == 201
        assert walt.post(f"/projects/{project['id']}/next").status_code == 403

    log_in(page, manager["email"], PASSWORD)
    page.goto(f"/projects/{project['id']}/dashboard")
    row = page.locator("#worker-rows tr", has_text="Walt Wrong")
    expect(row.locator(".badge")).to_have_text("paused")
    expect(row).to_contain_text("0.0% (0.0%")  # accuracy on gold with its interval
    _shot(page, "dashboard-paused")
    row.get_by_role("button", name="Reinstate").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Reinstate Walt Wrong?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(row.locator(".badge")).to_have_text("paused")  # nothing without confirming
    row.get_by_role("button", name="Reinstate").click()
    dialog.get_by_role("button", name="Reinstate").click()
    expect(row.locator(".badge")).to_have_text("active")
    expect(row.get_by_role("button", name="Reinstate")).to_have_count(0)
    with httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}) as walt:
        assert walt.post(f"/projects/{project['id']}/next").status_code == 200
    assert tab.script_errors() == []


def test_the_dashboard_shows_what_the_fit_measured_of_each_worker(tab: Tab, server: Server) -> None:
    page = tab.page
    manager = _member(server, "manager", "Mo Measure")
    workers = [_member(server, "annotator", name) for name in ("Alma Agree", "Bert Both")]
    with server.api() as owner:
        project = owner.post("/projects", json={"name": "Fit journey", "spec": SPEC, "quality": {"overlap": 2}}).json()
        lines = [{"data": {"review": f"fit {i}"}, "unique_id": f"f-{i}"} for i in range(12)]
        assert owner.post(f"/projects/{project['id']}/tasks/bulk", json=lines).status_code in (200, 201)
        keys = [owner.post("/keys", json={"name": w["name"], "member_id": w["id"]}).json()["key"] for w in workers]
    for key in keys:  # both answer every task: 24 answers, each task answered twice
        with httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}) as client:
            for _ in range(12):
                lease = client.post(f"/projects/{project['id']}/next").json()
                body = {"answer": {"sentiment": "positive"}, "assignment_id": lease["id"]}
                assert client.post(f"/tasks/{lease['task']['id']}/responses", json=body).status_code == 201
    with server.api() as owner:
        job = owner.post(f"/projects/{project['id']}/refit").json()
        for _ in range(120):
            job = owner.get(f"/jobs/{job['id']}").json()
            if job["status"] in ("succeeded", "failed"):
                break
            page.wait_for_timeout(250)
        assert job["status"] == "succeeded", job

    log_in(page, manager["email"], PASSWORD)
    page.goto(f"/projects/{project['id']}/dashboard")
    row = page.locator("#worker-rows tr", has_text="Alma Agree")
    expect(row.locator("[data-measured]")).to_contain_text(re.compile(r"sentiment \d+\.\d%"))
    expect(row.locator("[data-estimated]")).to_have_text("—")  # two answers per task: no other two to compare with
    _shot(page, "dashboard-measured")
    # the models those figures come from, and a refit on demand (a manager may start one)
    model = page.locator('#quality-model-rows tr[data-model="sentiment"]')
    expect(model).to_contain_text("dawid_skene")
    expect(model.locator('[data-cell="calibration"]')).to_contain_text("from the answers alone")
    expect(page.locator("#quality-models-no-gold")).to_contain_text("Mark 30 or more gold tasks")
    version = int(model.locator("td").nth(1).inner_text())
    refit = page.get_by_role("button", name="Refit now")
    # in its place in the card: a sticky form toolbar floated it over the card's text while scrolling
    assert refit.evaluate("button => getComputedStyle(button.parentElement).position") == "static"
    refit.click()
    expect(page.locator("#refit-status")).to_have_text(re.compile(r"Refitted: \d+ answers changed\."))
    expect(model.locator("td").nth(1)).to_have_text(str(version + 1))
    _shot(page, "dashboard-quality-models")
    assert tab.script_errors() == []

"""The project pages end to end (a real server, a real Chromium): a manager creates a project in the
spec editor, edits it within the rules, duplicates, archives and deletes it, and runs its batches;
roles below manager get no such page or button. Stored state is checked through the REST API."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in

#: Set TRUTHSET_E2E_SCREENSHOTS=<dir> to keep screenshots of the pages for a look.
SCREENSHOTS = Path(os.environ["TRUTHSET_E2E_SCREENSHOTS"]) if os.environ.get("TRUTHSET_E2E_SCREENSHOTS") else None

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "a long test password 1"
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}

INVALID_SPEC = {
    "fields": [{"name": "review", "type": "text", "label": "Review"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["only one"]}],
}
VALID_SPEC = {
    "fields": [{"name": "review", "type": "text", "label": "Review"}],
    "questions": [
        {
            "name": "sentiment",
            "type": "label",
            "prompt": "How does it *feel*?",
            "options": ["positive", "negative", "neutral"],
        }
    ],
}


def _member(server: Server, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    with server.api() as client:
        made = client.post("/members", json={"email": email, "role": role, "password": PASSWORD, "name": role.title()})
        assert made.status_code == 201, made.text
    return email


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"project-{name}.png"), full_page=True)


def _set_json(page: Any, label: str, value: Any) -> None:
    page.get_by_label(label).fill(json.dumps(value, indent=2))


def _admin_ready(page: Any) -> None:
    """Wait for the project page's module (static/project-admin.js): the buttons are in the HTML before
    it runs, and a click before then does nothing (a loaded machine made that race real in CI)."""
    expect(page.locator("#batches")).to_have_attribute("data-state", "ready")


def _project_id(page: Any) -> str:
    """The id of the project page the editor went to after saving."""
    page.wait_for_url(lambda url: re.search(r"/projects/[0-9A-Za-z]+$", url) and not url.endswith("/new"))
    return page.url.rsplit("/", 1)[-1]


def test_a_manager_creates_edits_duplicates_archives_and_deletes_a_project(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, _member(server, "manager"), PASSWORD)
    page.get_by_role("link", name="New project").click()
    page.wait_for_url("**/projects/new")
    page.get_by_label("Name", exact=True).fill("Spec editor project")
    page.get_by_label("Instructions for workers (Markdown)").fill("Read **carefully**.")
    expect(page.locator("#instructions-preview strong")).to_have_text("carefully")

    # an invalid spec: the server's message, naming the field, next to the editor
    _set_json(page, "Spec (JSON)", INVALID_SPEC)
    spec_error = page.locator("#err-spec")
    expect(spec_error).to_contain_text("spec.questions[0].options")
    expect(page.get_by_label("Spec (JSON)")).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Create project").click()
    expect(spec_error).to_contain_text("spec.questions[0].options")
    assert "/projects/new" in page.url
    _shot(page, "new-invalid")

    # a valid one: the preview shows the real widget, and the form adds a question to the same JSON
    _set_json(page, "Spec (JSON)", VALID_SPEC)
    expect(spec_error).to_be_hidden()
    preview = page.locator("#preview-questions")
    expect(preview.locator('fieldset[data-question="sentiment"] input[type="radio"]')).to_have_count(3)
    expect(page.locator('#preview-fields [data-field="review"]')).to_be_visible()
    page.get_by_label("Question name").fill("notes")
    page.get_by_label("Question type").select_option("text")
    page.locator("#aq-required").uncheck()
    page.get_by_role("button", name="Add question").click()
    expect(preview.locator('fieldset[data-question="notes"]')).to_be_visible()
    assert '"notes"' in page.get_by_label("Spec (JSON)").input_value()
    _shot(page, "new-valid")
    page.get_by_role("button", name="Create project").click()
    project_id = _project_id(page)
    with server.api() as client:
        stored = client.get(f"/projects/{project_id}").json()
    assert [q["name"] for q in stored["spec"]["questions"]] == ["sentiment", "notes"]
    assert stored["instructions"] == "Read **carefully**."

    # batches: create one, add a task, finalize it; the task is answered, so the spec holds answers
    page.get_by_label("New batch name").fill("first")
    page.get_by_role("button", name="Create batch").click()
    batch_row = page.locator('tr[data-batch="first"]')
    expect(batch_row).to_have_attribute("data-status", "open")
    with server.api() as client:
        batch_id = batch_row.get_attribute("data-batch-id")
        task = client.post(f"/projects/{project_id}/tasks", json={"data": {"review": "Lovely"}, "batch_id": batch_id})
        assert task.status_code == 201, task.text
    page.reload()
    expect(batch_row.locator('[data-count="staged"]')).to_have_text("1")
    batch_row.get_by_role("button", name="Finalize").click()
    expect(batch_row).to_have_attribute("data-status", "finalized")
    expect(batch_row.locator('[data-count="pending"]')).to_have_text("1")
    batch_row.get_by_role("button", name="Pause").click()
    expect(batch_row).to_have_attribute("data-status", "paused")
    expect(batch_row.locator('[data-count="staged"]')).to_have_text("1")
    batch_row.get_by_role("button", name="Resume").click()
    expect(batch_row).to_have_attribute("data-status", "finalized")
    expect(batch_row.locator('[data-count="pending"]')).to_have_text("1")
    with server.api() as client:
        answered = client.post(f"/tasks/{task.json()['id']}/responses", json={"answer": {"sentiment": "positive"}})
        assert answered.status_code == 201, answered.text
    page.reload()
    expect(batch_row).to_have_attribute("data-status", "completed")
    _shot(page, "page")

    # a second batch, canceled after confirming
    page.get_by_label("New batch name").fill("second")
    page.get_by_role("button", name="Create batch").click()
    second = page.locator('tr[data-batch="second"]')
    second.get_by_role("button", name="Cancel").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Keep it").click()
    expect(second).to_have_attribute("data-status", "open")
    second.get_by_role("button", name="Cancel").click()
    dialog.get_by_role("button", name="Cancel the batch").click()
    expect(second).to_have_attribute("data-status", "canceled")

    # editing: removing an option answers use is refused by name; rewording is saved
    page.get_by_role("link", name="Edit").click()
    page.wait_for_url(f"**/projects/{project_id}/edit")
    spec = json.loads(page.get_by_label("Spec (JSON)").input_value())
    spec["questions"][0]["options"] = ["positive", "negative"]
    _set_json(page, "Spec (JSON)", spec)
    expect(spec_error).to_contain_text("lost option 'neutral'")
    page.get_by_role("button", name="Save changes").click()
    expect(spec_error).to_contain_text("the project has answers")
    _shot(page, "edit-refused")
    spec["questions"][0]["options"] = ["positive", "negative", "neutral", "mixed"]
    spec["questions"][0]["prompt"] = "How does the writer feel?"
    _set_json(page, "Spec (JSON)", spec)
    expect(spec_error).to_be_hidden()
    expect(preview.locator('fieldset[data-question="sentiment"] input[type="radio"]')).to_have_count(4)
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(f"**/projects/{project_id}")
    expect(page.locator(".question-summary")).to_contain_text("How does the writer feel?")

    # duplicate: the editor starts from a copy (no tasks); archive it, unarchive, then delete it
    page.get_by_role("link", name="Duplicate").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Spec editor project (copy)")
    page.get_by_role("button", name="Create project").click()
    copy_id = _project_id(page)
    assert copy_id != project_id
    with server.api() as client:
        copied = client.get(f"/projects/{copy_id}").json()
        assert copied["spec"] == client.get(f"/projects/{project_id}").json()["spec"]
        assert client.get("/tasks", params={"project_id": copy_id}).json()["items"] == []
    _admin_ready(page)
    page.get_by_role("button", name="Archive").click()
    dialog.get_by_role("button", name="Archive").click()
    expect(page.get_by_role("button", name="Unarchive")).to_be_visible()
    expect(page.locator("h1 .status-archived")).to_have_text("archived")
    page.goto("/projects/archived")
    expect(page.locator(f'tr[data-project-id="{copy_id}"]')).to_be_visible()
    page.goto(f"/projects/{copy_id}")
    _admin_ready(page)
    page.get_by_role("button", name="Unarchive").click()
    dialog.get_by_role("button", name="Unarchive").click()
    expect(page.get_by_role("button", name="Archive")).to_be_visible()
    _admin_ready(page)  # the reloaded page's module handles the click
    page.get_by_role("button", name="Delete").click()
    page.get_by_label("Type the project's name").fill("not the name")
    dialog.get_by_role("button", name="Delete for good").click()
    expect(page.locator("#confirm-error")).to_contain_text("does not match")
    page.get_by_label("Type the project's name").fill("Spec editor project (copy)")
    dialog.get_by_role("button", name="Delete for good").click()
    page.wait_for_url(f"{server.url}/")
    with server.api() as client:
        assert client.get(f"/projects/{copy_id}").status_code == 404
    # a manager may not delete a project that has tasks: the page says who may
    page.goto(f"/projects/{project_id}")
    _admin_ready(page)
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("#manage-error")).to_contain_text("ask an owner or admin to delete it with its data")
    expect(dialog).to_be_hidden()
    assert tab.script_errors() == []


def test_an_owner_deletes_a_project_with_all_its_data(tab: Tab, server: Server) -> None:
    page = tab.page
    with server.api() as client:
        made = client.post("/projects", json={"name": "Doomed in the browser", "spec": SPEC})
        assert made.status_code == 201, made.text
        project_id = made.json()["id"]
        for text in ("one", "two"):
            assert client.post(f"/projects/{project_id}/tasks", json={"data": {"text": text}}).status_code == 201
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project_id}")
    _admin_ready(page)
    page.get_by_role("button", name="Delete").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog.locator("#confirm-title")).to_have_text("Delete this project and all its data?")
    expect(dialog.locator("#confirm-text")).to_contain_text("Its 2 tasks go")
    page.get_by_label("Type the project's name").fill("Doomed")
    dialog.get_by_role("button", name="Delete everything for good").click()
    expect(page.locator("#confirm-error")).to_contain_text("does not match")
    page.get_by_label("Type the project's name").fill("Doomed in the browser")
    _shot(page, "delete-with-data")
    dialog.get_by_role("button", name="Delete everything for good").click()
    page.wait_for_url(re.compile(r"/jobs\?kind=project\.delete"))
    expect(page.locator("table")).to_contain_text("project.delete")
    with server.api() as client:
        deadline = 100
        while client.get(f"/projects/{project_id}").status_code != 404 and deadline:
            page.wait_for_timeout(100)
            deadline -= 1
        assert client.get(f"/projects/{project_id}").status_code == 404
    assert tab.script_errors() == []


def _png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(out, format="PNG")
    return out.getvalue()


def test_an_owner_sees_uploads_and_removes_the_images_no_task_names(tab: Tab, server: Server, tmp_path: Path) -> None:
    """The Images page: every upload shown (its image loads through the session), an upload from the
    page, then "Remove unused images" asks first, starts a media.prune job, and the image no task
    names is gone while one a task names stays. A manager sees the page but has no such button."""
    page = tab.page
    with server.api() as client:
        unused, used = (
            client.post("/media", files={"file": (f"{n}.png", _png(c), "image/png")}).json()
            for n, c in (("unused", (1, 2, 3)), ("used", (3, 2, 1)))
        )
        image_spec = {
            "fields": [{"name": "image", "type": "image"}],
            "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
        }
        project = client.post("/projects", json={"name": "Images kept", "spec": image_spec}).json()
        named = client.post(f"/projects/{project['id']}/tasks", json={"data": {"image": used["reference"]}})
        assert named.status_code == 201, named.text
    log_in(page, server.owner_email, server.owner_password)
    page.goto("/projects/archived")
    page.get_by_role("link", name="Images", exact=True).first.click()
    page.wait_for_url(re.compile(r"/media$"))
    row = page.locator(f'tr[data-media="{used["id"]}"]')
    expect(row).to_contain_text("used.png")
    expect(row).to_contain_text(used["reference"])
    thumb = row.locator("img.thumb")
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate("img => img.naturalWidth") == 4  # the file itself, opened with the session's cookie

    upload = tmp_path / "from-the-page.png"
    upload.write_bytes(_png((5, 6, 7)))
    page.get_by_label("Image (PNG, JPEG, GIF or WebP)").set_input_files(str(upload))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/media\?filename=from-the-page\.png"))
    expect(page.locator("#flash-title")).to_contain_text("Uploaded from-the-page.png: use media:")
    expect(page.locator("tr[data-media]")).to_have_count(1)
    _shot(page, "media-page")
    page.get_by_role("link", name="Delete from-the-page.png").click()  # asks first, on a page of its own
    expect(page.get_by_role("heading", name="Delete from-the-page.png?")).to_be_visible()
    page.get_by_role("button", name="Delete the image").click()
    page.wait_for_url(re.compile(r"/media$"))
    expect(page.locator("#flash-title")).to_contain_text("Deleted from-the-page.png")
    expect(page.locator(f'tr[data-media="{used["id"]}"]')).to_have_count(1)

    page.goto("/media")
    page.get_by_label("Uploaded more than").fill("0")
    page.get_by_role("button", name="Remove unused images").click()
    dialog = page.locator("#prune-dialog")
    expect(dialog).to_contain_text("uploaded more than 0 hours ago that no task of the organization names")
    _shot(page, "prune-media")
    dialog.get_by_role("button", name="Remove them for good").click()
    page.wait_for_url(re.compile(r"/jobs\?kind=media\.prune"))
    expect(page.locator("table")).to_contain_text("media.prune")
    with server.api() as client:
        for _ in range(100):
            if client.get(f"/media/{unused['id']}").status_code == 404:
                break
            page.wait_for_timeout(100)
        assert client.get(f"/media/{unused['id']}").status_code == 404
        assert client.get(f"/media/{used['id']}").status_code == 200
    page.goto("/media")
    expect(page.locator(f'tr[data-media="{used["id"]}"]')).to_have_count(1)
    expect(page.locator(f'tr[data-media="{unused["id"]}"]')).to_have_count(0)
    assert tab.script_errors() == []
    page.context.clear_cookies()
    log_in(page, _member(server, "manager"), PASSWORD)
    page.goto("/media")
    expect(page.get_by_role("heading", name="Images", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Remove unused images")).to_have_count(0)


def test_roles_below_manager_get_no_project_editing(tab: Tab, server: Server) -> None:
    page = tab.page
    pid = server.demo_project_id
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    expect(page.locator('[data-link="new-project"]')).to_have_count(0)
    for path in ("/projects/new", f"/projects/new?from={pid}", f"/projects/{pid}/edit", "/projects/archived"):
        response = page.goto(path)
        assert response.status == 403, path
        expect(page.locator("h1")).to_have_text("Not allowed")
    _shot(page, "annotator-403")
    page.context.clear_cookies()

    log_in(page, _member(server, "reviewer"), PASSWORD)  # may see the project page, not change it
    expect(page.locator('[data-link="new-project"]')).to_have_count(0)
    page.goto(f"/projects/{pid}")
    expect(page.locator("#batches")).to_have_attribute("data-state", "ready")
    for name in ("Edit", "Duplicate"):
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    for name in ("Archive", "Delete", "Create batch", "Finalize", "Pause", "Resume", "Cancel"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    assert page.goto(f"/projects/{pid}/edit").status == 403
    assert tab.script_errors() == []


EVERY_TYPE_SPEC = {
    "fields": [
        {"name": "text", "type": "text"},
        {"name": "picture", "type": "image"},
        {"name": "answers", "type": "responses", "count": 2},
        {"name": "chat", "type": "conversation", "required": False},
    ],
    "questions": [
        {"name": "tone", "type": "label", "options": ["good", "bad"]},
        {"name": "tags", "type": "labels", "options": ["a", "b", "c"], "required": False},
        {"name": "stars", "type": "rating", "min": 1, "max": 5},
        {"name": "size", "type": "number", "min": 0, "max": 10, "required": False},
        {"name": "why", "type": "text", "required": False},
        {"name": "rank", "type": "ranking", "field": "answers"},
        {"name": "entities", "type": "spans", "field": "text", "labels": ["person", "place"], "required": False},
        {"name": "things", "type": "boxes", "field": "picture", "labels": ["cat"], "required": False},
        {"name": "shapes", "type": "polygons", "field": "picture", "labels": ["dog"], "required": False},
        {"name": "rubric", "type": "rubric", "criteria": [{"name": "clarity"}, {"name": "accuracy"}]},
        {"name": "grade", "type": "rating", "min": 1, "max": 3, "for_each": "answers"},
    ],
}


def test_the_preview_draws_every_question_type_with_its_widget(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto("/projects/new")
    _set_json(page, "Spec (JSON)", EVERY_TYPE_SPEC)
    preview = page.locator("#preview-questions")
    expect(page.locator("#check-state")).to_have_text("The spec is valid.")
    expect(preview.locator("fieldset")).to_have_count(len(EVERY_TYPE_SPEC["questions"]) + 1)  # grade: one per reply
    for name in ("grade-0", "grade-1"):
        expect(preview.locator(f'fieldset[data-question="{name}"] .q-candidate')).to_be_visible()
    expect(preview.locator('fieldset[data-question="stars"] input')).to_have_count(5)
    expect(preview).not_to_contain_text("No preview for this question")
    _shot(page, "preview-every-type")
    assert tab.script_errors() == []


def test_the_quality_policy_form_and_its_json_are_one_policy(tab: Tab, server: Server) -> None:
    """The form writes into the policy JSON, typing in the JSON moves the form, an out-of-bounds value
    is refused by the server naming the field, and what is saved is what the form showed."""
    page = tab.page
    log_in(page, _member(server, "manager"), PASSWORD)
    page.goto("/projects/new")
    page.get_by_label("Name", exact=True).fill("Policy form project")
    _set_json(page, "Spec (JSON)", VALID_SPEC)
    quality = page.get_by_label("Quality policy (JSON)")

    def policy() -> dict[str, Any]:
        return json.loads(quality.input_value())

    form = page.locator("#policy-form")
    form.get_by_label("Max overlap", exact=True).fill("5")
    form.get_by_label("Max overlap", exact=True).press("Tab")
    form.get_by_label("Target confidence").fill("0.95")
    form.get_by_label("Target confidence").press("Tab")
    form.get_by_label("At max overlap").select_option("review")
    form.locator("fieldset", has_text="Gold").get_by_label("Rate", exact=True).fill("0.1")
    form.locator("fieldset", has_text="Gold").get_by_label("Rate", exact=True).press("Tab")
    form.get_by_label("Low confidence").check()
    expect(quality).to_have_value(re.compile(r'"target_confidence": 0\.95'))
    written = policy()
    assert written["max_overlap"] == 5 and written["target_confidence"] == 0.95
    assert written["at_max_overlap"] == "review"
    assert written["gold"]["rate"] == 0.1 and written["review"]["low_confidence"] is True
    # lists and per-question maps stay in the JSON, and the page says so
    expect(form).to_contain_text("“questions”")

    # the JSON moves the form
    _set_json(page, "Quality policy (JSON)", {**written, "min_overlap": 2})
    expect(form.get_by_label("Min overlap")).to_have_value("2")

    # out of bounds: the server's check names the field; the form leaves the value as typed
    form.get_by_label("Target confidence").fill("1.5")
    form.get_by_label("Target confidence").press("Tab")
    expect(page.locator("#err-quality")).to_contain_text("target_confidence")
    form.get_by_label("Target confidence").fill("0.95")
    form.get_by_label("Target confidence").press("Tab")
    expect(page.locator("#err-quality")).to_be_hidden()
    _shot(page, "policy-form")

    page.get_by_role("button", name="Create project").click()
    project_id = _project_id(page)
    with server.api() as client:
        stored = client.get(f"/projects/{project_id}").json()["quality"]
    assert (stored["min_overlap"], stored["max_overlap"], stored["target_confidence"]) == (2, 5, 0.95)
    assert stored["at_max_overlap"] == "review" and stored["gold"]["rate"] == 0.1
    assert stored["review"]["low_confidence"] is True

    # editing it later starts from what was stored
    page.goto(f"/projects/{project_id}/edit")
    expect(page.locator("#policy-form").get_by_label("Max overlap", exact=True)).to_have_value("5")
    expect(page.locator("#policy-form").get_by_label("Low confidence")).to_be_checked()

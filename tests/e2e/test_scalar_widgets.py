"""The `number` and `rubric` widgets, and the workbench's own keys, in a real browser against a real server.

An annotator answers with the keyboard only, then with the mouse only; the stored answers are read
back through the REST API exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .support import Server, Tab, log_in, serving
from .test_workbench import SCREENSHOTS

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SCALAR_SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "count", "type": "number", "min": 0, "max": 100, "step": 1, "unit": "birds"},
        {
            "name": "grade",
            "type": "rubric",
            "criteria": [
                {"name": "accuracy", "description": "Are the facts right?", "min": 1, "max": 5, "comment": "optional"},
                {"name": "tone", "min": 1, "max": 3, "labels": {"1": "rude", "3": "kind"}},
            ],
        },
    ],
}


def _project(server: Server, name: str, spec: dict[str, Any], n_tasks: int) -> str:
    with server.api() as client:
        created = client.post("/projects", json={"name": name, "spec": spec, "quality": {"overlap": 1}})
        assert created.status_code == 201, created.text
        project_id = str(created.json()["id"])
        for i in range(n_tasks):
            task = client.post(f"/projects/{project_id}/tasks", json={"data": {"text": f"Item {i}"}})
            assert task.status_code == 201, task.text
    return project_id


def _open(page: Any, project_id: str, previous: str | None = None) -> str:
    if previous is None:
        page.goto(f"/projects/{project_id}/label")
    form = page.locator("form#task")
    expect(form).to_be_visible()
    if previous is not None:
        expect(form).not_to_have_attribute("data-task", previous)
    return str(form.get_attribute("data-task"))


def test_number_and_rubric_with_the_keyboard_and_with_the_mouse(tab: Tab, server: Server) -> None:
    project_id = _project(server, "Birds and grades", SCALAR_SPEC, 2)
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    first = _open(page, project_id)
    keymap = page.locator(".keys")
    expect(keymap).to_contain_text("in a number box: one step up / down")
    expect(keymap).to_contain_text("in a rubric: previous / next criterion")

    # keyboard: the number box has the caret; type, step up with ↑, Enter moves on to the rubric
    count = page.locator('[data-question="count"] input[type="number"]')
    expect(count).to_be_focused()
    page.keyboard.type("12")
    page.keyboard.press("ArrowUp")
    expect(count).to_have_value("13")
    page.keyboard.press("Enter")
    accuracy = page.locator('[data-criterion="accuracy"]')
    expect(accuracy).to_be_focused()
    page.keyboard.press("4")  # scores accuracy, moves to tone
    expect(page.locator('[data-criterion="tone"]')).to_be_focused()
    page.keyboard.press("ArrowUp")  # back to accuracy: change the score and add a comment
    expect(accuracy).to_be_focused()
    page.keyboard.press("Tab")  # into accuracy's scale (its checked point)
    page.keyboard.press("Tab")  # its comment box
    expect(accuracy.locator("input.rubric-comment")).to_be_focused()
    page.keyboard.type("one date is off")
    page.keyboard.press("Escape")  # leaves the box; accuracy stays the active criterion
    page.keyboard.press("5")
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / "number-rubric.png"), full_page=True)
    page.keyboard.press("2")  # tone, the last criterion: on to Submit
    expect(page.locator("#submit")).to_be_focused()
    page.keyboard.press("Enter")
    second = _open(page, project_id, previous=first)
    [stored] = server.responses(first)
    assert stored["answer"] == {
        "count": 13,
        "grade": {"accuracy": {"score": 5, "comment": "one date is off"}, "tone": {"score": 2}},
    }

    # mouse: + three times from empty (0, 1, 2), "one step down" once, click the scale points, click Submit
    plus = page.get_by_role("button", name="one step up")
    for _ in range(3):
        plus.click()
    page.get_by_role("button", name="one step down").click()
    expect(count).to_have_value("1")
    page.locator('[data-criterion="accuracy"] .scale-point:has(input[value="3"])').click()
    page.locator('[data-criterion="tone"] .scale-point:has(input[value="3"])').click()
    page.locator("#submit").click()
    expect(page.get_by_role("heading", name="No more tasks")).to_be_visible()
    [stored] = server.responses(second)
    assert stored["answer"] == {"count": 1, "grade": {"accuracy": {"score": 3}, "tone": {"score": 3}}}
    assert tab.script_errors() == []


def test_a_number_out_of_range_is_refused_next_to_its_question(tab: Tab, server: Server) -> None:
    project_id = _project(server, "Birds out of range", SCALAR_SPEC, 1)
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    task = _open(page, project_id)
    page.keyboard.type("250")
    page.keyboard.press("Enter")
    for key in ("1", "1"):
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    expect(page.locator('[data-question="count"] .q-error')).to_have_text("must be between 0 and 100")
    assert server.responses(task) == []
    assert tab.script_errors(allow=("422",)) == []


def test_spec_hotkeys_never_take_a_workbench_key_and_enter_submits_after_the_last_answer(
    tab: Tab, server: Server
) -> None:
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [
            {
                "name": "safe",
                "type": "label",
                "options": [{"value": "yes", "hotkey": "y"}, {"value": "no", "hotkey": "x"}],
            },
            {"name": "topic", "type": "label", "options": ["news", "sport"]},
            {"name": "notes", "type": "text", "required": False, "multiline": True},
        ],
    }
    project_id = _project(server, "Hotkeys", spec, 2)
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    first = _open(page, project_id)
    page.keyboard.press("y")  # safe = yes, on to topic
    page.keyboard.press("n")  # next question: never an option
    notes = page.locator('[data-question="notes"]')
    expect(notes).to_be_focused()  # the multi-line box is active, the caret stays out of it
    page.keyboard.press("p")
    page.keyboard.press("2")  # topic = sport, on to notes
    expect(notes).to_be_focused()
    expect(notes.locator("textarea")).not_to_be_focused()
    page.keyboard.press("Enter")  # the last answer is given: Enter submits, no new line
    second = _open(page, project_id, previous=first)
    [stored] = server.responses(first)
    assert stored["answer"] == {"safe": "yes", "topic": "sport"}

    # with the mouse: a click in the box, a new line with Enter, Ctrl+Enter submits
    page.locator('[data-question="safe"] .option', has_text="no").click()
    page.locator('[data-question="topic"] .option', has_text="news").click()
    notes.locator("textarea").click()
    page.keyboard.type("line one")
    page.keyboard.press("Enter")
    page.keyboard.type("line two")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("heading", name="No more tasks")).to_be_visible()
    [stored] = server.responses(second)
    assert stored["answer"] == {"safe": "no", "topic": "news", "notes": "line one\nline two"}
    assert tab.script_errors() == []


# --- a project saved before the rule: its spec gives "n" to an option ------------------------------

LEGACY_SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "safe", "type": "label", "options": [{"value": "yes", "hotkey": "y"}, {"value": "no", "hotkey": "x"}]},
        {"name": "topic", "type": "label", "options": ["news", "sport"]},
        {"name": "notes", "type": "text", "required": False, "multiline": True},
    ],
}


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str, str]]:
    """A server whose one project was stored with ``"hotkey": "n"`` (written to the database, as an
    older version would have): (url, owner password, owner API key, project id)."""
    from sqlalchemy import update

    from truthset.config import Settings
    from truthset.schemas import ProjectCreate, TaskCreate
    from truthset.services import accounts, projects, tasks
    from truthset.storage import Database, upgrade
    from truthset.storage import tables as t

    data_dir = tmp_path_factory.mktemp("legacy-data")
    settings = Settings(data_dir=data_dir)
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    try:
        created = accounts.init_organization(db, "Legacy organization", "owner@example.com")
        owner = accounts.authenticate(db, created["api_key"])
        project = projects.create_project(
            db, owner, ProjectCreate.model_validate({"name": "Legacy", "spec": LEGACY_SPEC})
        )
        stored = json.loads(json.dumps(project["spec"]))
        stored["questions"][0]["options"][1]["hotkey"] = "n"
        with db.write() as conn:
            conn.execute(update(t.projects).where(t.projects.c.id == project["id"]).values(spec=stored))
        for text in ("one", "two"):
            tasks.create_task(db, owner, project["id"], TaskCreate.model_validate({"data": {"text": text}}))
    finally:
        db.dispose()
    env = {**os.environ, "TRUTHSET_DATA_DIR": str(data_dir)}
    env.pop("TRUTHSET_DATABASE_URL", None)
    with serving(env, data_dir / "server.log") as url:
        yield url, created["password"], created["api_key"], project["id"]


def test_a_stored_spec_with_hotkey_n_opens_and_n_stays_next_question(
    browser: Any, legacy: tuple[str, str, str, str]
) -> None:
    url, password, key, project_id = legacy
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, "owner@example.com", password)
        first = _open(page, project_id)
        no = page.locator('[data-question="safe"] .option', has_text="no")
        expect(no.locator("kbd")).to_have_text("2")  # the option takes its number key
        expect(page.locator(".key-conflict")).to_contain_text("stays “next question”")
        page.keyboard.press("y")  # yes, on to topic
        page.keyboard.press("n")  # next question, to notes (before: it also answered "no")
        expect(page.locator('[data-question="notes"]')).to_be_focused()
        expect(page.locator('[data-question="safe"] input[value="yes"]')).to_be_checked()
        page.keyboard.press("p")
        page.keyboard.press("2")  # sport, on to notes
        page.keyboard.press("Enter")
        _open(page, project_id, previous=first)
        with httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {key}"}) as client:
            [stored] = client.get(f"/tasks/{first}/responses").json()
        assert stored["answer"] == {"safe": "yes", "topic": "sport"}
        assert errors == []
    finally:
        context.close()

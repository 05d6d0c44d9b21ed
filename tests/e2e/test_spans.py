"""The `spans` widget end to end: a real server, a real Chromium. An annotator marks entities with the
keyboard and with the mouse on a text that starts with an emoji (two UTF-16 units, one code point),
deletes one, submits, and the stored answer is read back through the REST API, offsets exact."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in
from .test_review import _annotator_client as annotator_client
from .test_workbench import SCREENSHOTS, next_task_shown, open_workbench

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

TEXT = "😀 Ada Lovelace met Charles Babbage in London."
LABELS = [{"value": "PER", "label": "Person"}, {"value": "LOC", "label": "Place"}, {"value": "ORG", "hotkey": "o"}]


def span(words: str, label: str) -> dict[str, Any]:
    """The answer for ``words`` of TEXT: offsets in code points, as Python counts them."""
    start = TEXT.index(words)
    return {"start": start, "end": start + len(words), "label": label}


def make_project(server: Server, tasks: int, **question: Any) -> str:
    spec = {
        "fields": [
            {"name": "note", "type": "text", "label": "Note"},
            {"name": "text", "type": "text", "label": "Text"},
        ],
        "questions": [{"name": "entities", "type": "spans", "field": "text", "labels": LABELS, **question}],
    }
    with server.api() as client:
        project = client.post("/projects", json={"name": "Entities", "spec": spec, "quality": {"overlap": 1}})
        project.raise_for_status()
        project_id = project.json()["id"]
        for n in range(tasks):
            made = client.post(f"/projects/{project_id}/tasks", json={"data": {"note": f"note {n}", "text": TEXT}})
            made.raise_for_status()
    return str(project_id)


def drag_over(page: Any, words: str) -> None:
    """Select ``words`` of the text with the mouse: press before its first character, release after its last."""
    start = len(TEXT[: TEXT.index(words)].encode("utf-16-le")) // 2  # the page counts UTF-16 units
    end = start + len(words.encode("utf-16-le")) // 2
    box = page.evaluate(
        """([from, to]) => {
            const text = document.querySelector('.span-text[data-field="text"]');
            const walker = document.createTreeWalker(text, NodeFilter.SHOW_TEXT);
            const range = document.createRange();
            let at = 0;
            while (walker.nextNode()) {
              const node = walker.currentNode;
              if (from >= at && from < at + node.length) range.setStart(node, from - at);
              if (to > at && to <= at + node.length) range.setEnd(node, to - at);
              at += node.length;
            }
            const rects = range.getClientRects();
            const first = rects[0];
            const last = rects[rects.length - 1];
            const middle = (rect) => rect.top + rect.height / 2;
            return { x0: first.left + 1, y0: middle(first), x1: last.right - 1, y1: middle(last) };
        }""",
        [start, end],
    )
    page.mouse.move(box["x0"], box["y0"])
    page.mouse.down()
    page.mouse.move((box["x0"] + box["x1"]) / 2, (box["y0"] + box["y1"]) / 2)
    page.mouse.move(box["x1"], box["y1"])
    page.mouse.up()


def test_an_annotator_marks_spans_with_the_keyboard_and_the_mouse(tab: Tab, server: Server) -> None:
    project_id = make_project(server, tasks=2)
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    first = open_workbench(page, project_id)
    widget = page.locator('[data-question="entities"]')
    text = widget.locator(".span-text")
    expect(text).to_be_focused()
    expect(text).to_have_text(TEXT)
    # the text is shown once, by the widget; the other field stays in the fields panel
    expect(page.locator('#fields [data-field="text"]')).to_have_count(0)
    expect(page.locator('#fields [data-field="note"]')).to_contain_text("note")
    # every key of the widget is in the keyboard help
    keymap = page.locator(".keymap")
    for words in (
        "move the caret a word",
        "extend the selection a word",
        "mark the selection as ORG",
        "remove the span",
    ):
        expect(keymap).to_contain_text(words)

    # keyboard: → → selects "Ada", Shift+→ extends to "Ada Lovelace", 1 marks it Person
    for key in ("ArrowRight", "ArrowRight", "Shift+ArrowRight", "1"):
        page.keyboard.press(key)
    # → collapses the selection to "Lovelace", → → lands on "Charles", Shift+→ extends to "Charles Babbage",
    # o marks it ORG
    for key in ("ArrowRight", "ArrowRight", "ArrowRight", "Shift+ArrowRight", "o"):
        page.keyboard.press(key)
    # the mouse: drag over "London", then the Place label's key (the second task clicks the labels)
    drag_over(page, "London")
    expect(widget.locator(".span-status")).to_have_text("“London” is selected: press a label's key or click a label.")
    page.keyboard.press("2")
    items = widget.locator("li.span-item")
    expect(items).to_have_text(
        [re.compile(r"Person.*Ada Lovelace"), re.compile("ORG.*Charles Babbage"), re.compile("Place.*London")]
    )
    # the label's name follows each span in the text, not only its colour
    expect(text.locator("[data-tags]")).to_have_count(3)
    expect(text.locator('[data-tags="Place"]')).to_have_text("London")
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / "spans.png"), full_page=True)

    # delete "Charles Babbage" from the list with the keyboard: Tab to the list, ↓, Delete
    text.focus()
    page.keyboard.press("Tab")
    expect(items.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Delete")
    expect(items).to_have_count(2)
    page.keyboard.press("Enter")
    second = next_task_shown(page, first)
    [stored] = server.responses(first)
    assert stored["answer"] == {"entities": [span("Ada Lovelace", "PER"), span("London", "LOC")]}
    assert stored["answer"]["entities"][0] == {"start": 2, "end": 14, "label": "PER"}  # the emoji is one code point

    # the second task with the mouse only: drag, click a label, drag, click, remove one with its remove button, Submit
    expect(items).to_have_count(0)  # a new task starts empty
    drag_over(page, "Charles Babbage")
    widget.get_by_role("button", name="Person").click()
    drag_over(page, "Ada")
    widget.get_by_role("button", name="ORG").click()
    expect(items).to_have_count(2)
    widget.get_by_role("button", name="Remove “Ada”").click()
    expect(items).to_have_count(1)
    page.get_by_role("button", name="Submit").click()
    expect(page.locator('[data-panel="empty"]')).to_be_visible()
    [stored] = server.responses(second)
    assert stored["answer"] == {"entities": [span("Charles Babbage", "PER")]}
    assert tab.script_errors() == []


def test_backspace_removes_the_span_at_the_caret_and_a_draft_survives_a_reload(tab: Tab, server: Server) -> None:
    project_id = make_project(server, tasks=1)
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    task = open_workbench(page, project_id)
    widget = page.locator('[data-question="entities"]')
    items = widget.locator("li.span-item")
    # End selects the last word (the full stop), ← "London", 2 marks it Place; ← ← "Babbage", Shift+← extends
    # back to "Charles Babbage", 1 marks it Person
    for key in ("End", "ArrowLeft", "2", "ArrowLeft", "ArrowLeft", "Shift+ArrowLeft", "1"):
        page.keyboard.press(key)
    expect(items).to_have_count(2)
    page.keyboard.press("ArrowRight")  # collapses "Charles Babbage" to its right edge: "Babbage"
    page.keyboard.press("Backspace")  # "Charles Babbage" is under the caret
    expect(items).to_have_count(1)
    expect(items).to_contain_text("Place")
    page.reload()
    expect(page.locator("form#task")).to_have_attribute("data-task", task)
    expect(page.locator("#draft")).to_have_text("Draft restored")
    expect(items).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator('[data-panel="empty"]')).to_be_visible()
    [stored] = server.responses(task)
    assert stored["answer"] == {"entities": [span("London", "LOC")]}
    assert tab.script_errors() == []


def test_a_reviewer_reads_the_spans_in_words_and_fixes_them_with_the_keyboard(tab: Tab, server: Server) -> None:
    with server.api() as owner:
        spec = {
            "fields": [{"name": "text", "type": "text", "label": "Text"}],
            "questions": [{"name": "entities", "type": "spans", "field": "text", "labels": LABELS}],
        }
        quality = {"overlap": 1, "review": {"sample_rate": 1.0}}
        project = owner.post("/projects", json={"name": "Entities review", "spec": spec, "quality": quality}).json()
        task = owner.post(f"/projects/{project['id']}/tasks", json={"data": {"text": TEXT}}).json()
        with annotator_client(server, owner) as annotator:
            lease = annotator.post(f"/projects/{project['id']}/next").json()
            answer = {"entities": [span("Ada Lovelace", "PER"), span("London", "LOC")]}
            sent = annotator.post(
                f"/tasks/{task['id']}/responses", json={"answer": answer, "assignment_id": lease["id"]}
            )
            assert sent.status_code == 201, sent.text
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project['id']}")
    page.get_by_role("link", name="Review").click()
    expect(page.locator("#task")).to_be_visible()
    described = "Person “Ada Lovelace” 2-14; Place “London” 38-44"
    expect(page.locator('#result dd[data-question="entities"]')).to_contain_text(described)
    expect(page.locator("#responses")).to_contain_text(f"entities: {described}")
    expect(page.locator(".keymap")).to_contain_text("spans: mark the selection as Person")
    page.keyboard.press("f")
    items = page.locator('#fix-form [data-question="entities"] li.span-item')
    expect(items).to_have_count(2)  # the result's spans, on the text
    for key in ("End", "ArrowLeft", "1"):  # "London" is a person after all (a new label replaces the old)
        page.keyboard.press(key)
    expect(items.nth(1)).to_contain_text("Person")
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).not_to_be_empty()
    with server.api() as owner:
        result = owner.get(f"/tasks/{task['id']}").json()["result"]
    assert result["answer"] == {"entities": [span("Ada Lovelace", "PER"), span("London", "PER")]}
    assert tab.script_errors() == []


def test_overlapping_spans_when_the_spec_allows_them(tab: Tab, server: Server) -> None:
    project_id = make_project(server, tasks=1, overlapping=True)
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    task = open_workbench(page, project_id)
    widget = page.locator('[data-question="entities"]')
    # "Ada Lovelace" as a person; → collapses the selection to "Lovelace", marked as an organisation too
    for key in ("ArrowRight", "ArrowRight", "Shift+ArrowRight", "1", "ArrowRight", "o"):
        page.keyboard.press(key)
    expect(widget.locator("li.span-item")).to_have_count(2)
    expect(widget.locator(".span-text .seg.nested")).to_have_text("Lovelace")
    expect(widget.locator('.span-text [data-tags="ORG · Person"]')).to_have_text("Lovelace")
    page.keyboard.press("Enter")
    expect(page.locator('[data-panel="empty"]')).to_be_visible()
    [stored] = server.responses(task)
    assert stored["answer"] == {"entities": [span("Ada Lovelace", "PER"), span("Lovelace", "ORG")]}
    assert tab.script_errors() == []

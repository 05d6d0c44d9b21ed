"""A question asked for each candidate (`for_each`), end to end in the workbench.

Each worker sees the two replies in their own order: the copies of a per-reply question are shown
under the letter their reply has for that worker, in that order, and the stored answer is keyed by
the reply's index in the task data, so "grade A" always means the reply shown first.
"""

from __future__ import annotations

import uuid

import pytest

from .support import Server, Tab, log_in
from .test_ranking import _annotator, _open, _shown, _submitted
from .test_review import _annotator_client

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

SPEC = {
    "fields": [
        {"name": "prompt", "type": "text"},
        {"name": "answers", "type": "responses", "count": 2, "label": "Replies"},
    ],
    "questions": [
        {"name": "preference", "type": "ranking", "field": "answers"},
        {"name": "grade", "type": "rating", "for_each": "answers", "min": 1, "max": 5},
        {"name": "problems", "type": "spans", "for_each": "answers", "required": False, "labels": ["error"]},
    ],
}
TASK = {"prompt": "Name a prime number.", "answers": ["Seven is prime.", "Nine is prime."]}


def test_per_reply_questions_follow_the_order_each_worker_sees(tab: Tab, server: Server) -> None:
    with server.api() as api:
        body = {"name": f"per reply {uuid.uuid4().hex[:6]}", "spec": SPEC, "quality": {"overlap": 1}}
        project = api.post("/projects", json=body)
        assert project.status_code == 201, project.text
        task = api.post(f"/projects/{project.json()['id']}/tasks", json={"data": TASK})
        assert task.status_code == 201, task.text
    page = _annotator(tab)
    _open(page, project.json()["id"])
    shown = _shown(page)
    assert sorted(shown) == [0, 1]
    # the copies are in the order the replies are shown, each under its reply's letter
    grades = page.locator('fieldset.question[data-type="rating"]')
    expect(grades.first).to_have_attribute("data-question", f"grade-{shown[0]}")
    expect(grades.first.locator(".q-candidate")).to_have_text("A")
    expect(grades.nth(1).locator(".q-candidate")).to_have_text("B")
    marks = page.locator('fieldset.question[data-type="spans"]')
    expect(marks.nth(1).locator(".span-text")).to_have_text(TASK["answers"][shown[1]])

    page.keyboard.press("1")  # A is better: moves on to grade A
    page.keyboard.press("2")  # grade A: 2, on to grade B
    page.keyboard.press("5")  # grade B: 5, on to problems in A
    page.keyboard.press("n")  # problems in B
    page.keyboard.press("ArrowRight")  # the caret on its first word
    page.keyboard.press("1")  # marked as the first label, error
    page.keyboard.press("Enter")
    _submitted(page)

    (response,) = server.responses(task.json()["id"])
    first_word = TASK["answers"][shown[1]].split()[0]
    assert response["answer"] == {
        "preference": {"winner": shown[0], "shown_order": shown},
        f"grade-{shown[0]}": 2,
        f"grade-{shown[1]}": 5,
        f"problems-{shown[0]}": [],
        f"problems-{shown[1]}": [{"start": 0, "end": len(first_word), "label": "error"}],
    }
    assert tab.script_errors() == []


def test_the_reviewer_reads_each_copy_under_its_candidates_letter(tab: Tab, server: Server) -> None:
    """The review page shows the data as imported (the first reply is A): a copy is captioned so."""
    with server.api() as owner:
        quality = {"overlap": 1, "review": {"sample_rate": 1.0}}
        body = {"name": f"per reply review {uuid.uuid4().hex[:6]}", "spec": SPEC, "quality": quality}
        project = owner.post("/projects", json=body).json()
        task = owner.post(f"/projects/{project['id']}/tasks", json={"data": TASK}).json()
        answer = {"preference": {"winner": 0}, "grade-0": 4, "grade-1": 1}
        with _annotator_client(server, owner) as annotator:
            done = annotator.post(f"/tasks/{task['id']}/responses", json={"answer": answer})
            assert done.status_code == 201, done.text
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project['id']}/review")
    expect(page.locator("#result dt")).to_contain_text(["preference", "grade (A)", "grade (B)"])
    expect(page.locator("#responses li")).to_contain_text("grade (A): 4 · grade (B): 1")
    assert tab.script_errors() == []

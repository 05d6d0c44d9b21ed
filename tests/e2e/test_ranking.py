"""Ranking in the workbench, end to end: a real server, a real Chromium, keyboard and mouse.

Two workers answer a pairwise comparison of two chatbot replies (with a rating) and a four-candidate
ordering; each sees the candidates in their own seeded order, blind (no model names on the page);
the stored answers are read back through the REST API and name the candidates by their index in the
task data. Model responses are Markdown, rendered safely: no script, event handler or javascript:
link from the data survives.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .support import Server, Tab, log_in
from .test_review import _annotator_client
from .test_workbench import SCREENSHOTS

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

ATTACKS = (
    "Try this:\n\n<script>window.__pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.__pwned = 'img'\">\n\n[a link](javascript:window.__pwned='link')"
)
CHAT_SPEC = {
    "fields": [
        {"name": "conversation", "type": "conversation", "label": "Conversation"},
        {"name": "answers", "type": "responses", "label": "Replies"},
    ],
    "questions": [
        {
            "name": "preference",
            "type": "ranking",
            "field": "answers",
            "allow_tie": True,
            "strength": ["much better", "slightly better"],
        },
        {"name": "helpfulness", "type": "rating", "min": 1, "max": 5},
    ],
}
CHAT_TASK = {
    "conversation": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How do I reverse a list in **Python**?"},
    ],
    "answers": [
        {"content": "Use slicing:\n\n```python\nitems = items[::-1]\n```", "model": "model-alpha"},
        {"content": ATTACKS, "model": "model-beta"},
    ],
}
ORDER_SPEC = {
    "fields": [{"name": "prompt", "type": "text"}, {"name": "answers", "type": "responses"}],
    "questions": [{"name": "order", "type": "ranking", "field": "answers", "mode": "order", "allow_tie": True}],
}
ORDER_TASK = {
    "prompt": "Name a prime number.",
    "answers": [
        {"text": "Seven.", "model": "model-one"},
        {"text": "Nine.", "model": "model-two"},
        # long enough to overflow the question if the list grew to its content (it must be cut instead)
        {
            "text": "Two, the only even prime. " + "Every other even number is divisible by two. " * 8,
            "model": "model-three",
        },
        {"text": "Seven, or 11.", "model": "model-four"},
    ],
}


def _project(server: Server, spec: dict, data: dict) -> tuple[str, str]:
    with server.api() as api:
        body = {"name": f"ranking {uuid.uuid4().hex[:6]}", "spec": spec, "quality": {"overlap": 2}}
        project = api.post("/projects", json=body)
        assert project.status_code == 201, project.text
        task = api.post(f"/projects/{project.json()['id']}/tasks", json={"data": data})
        assert task.status_code == 201, task.text
        return project.json()["id"], task.json()["id"]


@pytest.fixture
def projects(server: Server) -> tuple[tuple[str, str], tuple[str, str]]:
    return _project(server, CHAT_SPEC, CHAT_TASK), _project(server, ORDER_SPEC, ORDER_TASK)


@pytest.fixture
def second(browser: Any, server: Server) -> Iterator[Tab]:
    """A second worker (a new annotator) in a browser context of their own."""
    email, password = f"second-{uuid.uuid4().hex[:6]}@example.com", "second-password-123"
    with server.api() as api:
        made = api.post("/members", json={"email": email, "role": "annotator", "password": password})
        assert made.status_code == 201, made.text
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, email, password)
    try:
        yield Tab(context=context, page=page, console_errors=errors, page_errors=[])
    finally:
        context.close()


def _annotator(tab: Tab) -> Any:
    from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD

    log_in(tab.page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    return tab.page


def _open(page: Any, project_id: str) -> None:
    page.goto(f"/projects/{project_id}/label")
    expect(page.locator("form#task")).to_be_visible()


def _shown(page: Any) -> list[int]:
    """The task indexes of the candidates in the order the page shows them (A, B, ...)."""
    items = page.locator('[data-field="answers"] li.response')
    return [int(i) for i in items.evaluate_all("(els) => els.map((el) => el.dataset.index)")]


def _order_on_screen(page: Any) -> list[int]:
    rows = page.locator(".order-list .order-item")
    return [int(i) for i in rows.evaluate_all("(els) => els.map((el) => el.dataset.index)")]


def _submitted(page: Any) -> None:
    expect(page.get_by_role("heading", name="No more tasks")).to_be_visible()


def _answer(server: Server, task_id: str, worker_answers: int) -> list[dict]:
    rows = server.responses(task_id)
    assert len(rows) == worker_answers
    return rows


def test_pairwise_by_keyboard_then_by_mouse_blind_and_safe(tab: Tab, second: Tab, server: Server, projects) -> None:
    (project, task), _ = projects
    page = _annotator(tab)
    _open(page, project)
    # blind: no model name anywhere on the page
    assert "model-alpha" not in page.content() and "model-beta" not in page.content()
    # the conversation as a chat with roles, Markdown rendered
    expect(page.locator(".chat .turn")).to_have_count(2)
    expect(page.locator(".chat .turn-user strong")).to_have_text("Python")
    expect(page.locator(".chat .turn-system .turn-role")).to_have_text("system")
    # Markdown safely: code highlighted, the attacks shown as text or removed, none of them run
    expect(page.locator(".response-text pre code.hljs")).to_have_count(1)
    expect(page.locator(".response-text pre code.hljs span").first).to_be_visible()
    attack = page.locator('.response[data-index="1"] .response-text')
    expect(attack).to_contain_text("<script>window.__pwned = 'script'</script>")
    assert attack.locator("script, img, iframe").count() == 0
    assert page.locator('.response a[href^="javascript"]').count() == 0
    assert page.locator("[onerror], [onclick]").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    # side by side on a wide screen
    boxes = [page.locator(".response").nth(i).bounding_box() for i in range(2)]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"]
    shown = _shown(page)
    assert sorted(shown) == [0, 1]
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / "ranking-pairwise.png"), full_page=True)
    # the help lists the ranking keys
    expect(page.locator('[data-keys="ranking-pairwise"]')).to_contain_text("A / B")

    # keyboard: 1 = A is better, Shift+1 = "much better" (then the rating), 4, Enter submits
    page.keyboard.press("1")
    page.keyboard.press("Shift+Digit1")
    page.keyboard.press("4")
    page.keyboard.press("Enter")
    _submitted(page)
    [mine] = _answer(server, task, 1)
    assert mine["answer"] == {
        "preference": {"winner": shown[0], "strength": "much better", "shown_order": shown},
        "helpfulness": 4,
    }

    # mouse, a second worker, stacked on a narrow screen: B is better, slightly; rating 2
    page2 = second.page
    page2.set_viewport_size({"width": 600, "height": 900})
    _open(page2, project)
    boxes = [page2.locator(".response").nth(i).bounding_box() for i in range(2)]
    assert boxes[0]["y"] < boxes[1]["y"]
    shown2 = _shown(page2)
    page2.get_by_role("button", name="B is better").click()
    page2.get_by_role("button", name="slightly better").click()
    page2.locator('[data-question="helpfulness"] label').filter(has_text="2").click()
    page2.get_by_role("button", name="Submit").click()
    _submitted(page2)
    rows = _answer(server, task, 2)
    theirs = next(r for r in rows if r["id"] != mine["id"])
    assert theirs["answer"] == {
        "preference": {"winner": shown2[1], "strength": "slightly better", "shown_order": shown2},
        "helpfulness": 2,
    }
    assert tab.script_errors() == [] and second.script_errors() == []


def _move_by_keyboard(page: Any, target: list[int]) -> None:
    """Put the candidates in ``target`` order (task indexes) with j/k and Shift+arrows only."""
    selected = 0
    for rank, index in enumerate(target):
        at = _order_on_screen(page).index(index)
        for _ in range(abs(at - selected)):
            page.keyboard.press("j" if at > selected else "k")
        for _ in range(at - rank):
            page.keyboard.press("Shift+ArrowUp")
        selected = rank
        assert _order_on_screen(page)[rank] == index


def _move_by_mouse(page: Any, target: list[int]) -> None:
    for rank, index in enumerate(target):
        while (at := _order_on_screen(page).index(index)) > rank:
            page.locator(".order-list .order-item").nth(at).get_by_role("button", name="up").click()


def test_four_candidate_ordering_by_keyboard_and_by_mouse(tab: Tab, second: Tab, server: Server, projects) -> None:
    _, (project, task) = projects
    page = _annotator(tab)
    _open(page, project)
    assert "model-one" not in page.content()
    shown = _shown(page)
    assert _order_on_screen(page) == shown  # the list starts in the order shown
    overflow = page.evaluate(
        "() => { const f = document.querySelector('[data-question=\"order\"]'); return f.scrollWidth - f.clientWidth; }"
    )
    assert overflow <= 0, f"the ordering is {overflow}px wider than its question"
    # a reload shows the same order (seeded by the assignment)
    page.reload()
    expect(page.locator("form#task")).to_be_visible()
    assert _shown(page) == shown
    expect(page.locator('[data-keys="ranking-order"]')).to_be_visible()
    # the shuffled order as it stands is no answer: submitting it by accident is refused
    page.keyboard.press("Enter")
    expect(page.locator('[data-question="order"] .q-error')).to_have_text("An answer is required.")
    _move_by_keyboard(page, [2, 0, 3, 1])
    # c accepts the order on screen: needed when the shuffle already showed the target order (no
    # move made), harmless otherwise; an untouched order is no answer
    page.keyboard.press("c")
    page.keyboard.press("Enter")
    _submitted(page)
    [mine] = _answer(server, task, 1)
    assert mine["answer"] == {"order": {"order": [2, 0, 3, 1], "shown_order": shown}}

    # a second worker sees another order (a new lease shuffles again: give it back until it differs)
    page2 = second.page
    _open(page2, project)
    for _ in range(10):
        if _shown(page2) != shown:
            break
        page2.get_by_role("button", name="Release").click()
        page2.get_by_role("button", name="Continue labeling").click()
        expect(page2.locator("form#task")).to_be_visible()
    shown2 = _shown(page2)
    assert shown2 != shown and sorted(shown2) == [0, 1, 2, 3]
    # by mouse: 2 first, then 0 and 3 as equals, then 1
    _move_by_mouse(page2, [2, 0, 3, 1])
    page2.locator(".order-list .order-item").nth(2).get_by_label("= above").check()
    if SCREENSHOTS:
        page2.screenshot(path=str(SCREENSHOTS / "ranking-order.png"), full_page=True)
    page2.get_by_role("button", name="Submit").click()
    _submitted(page2)
    theirs = next(r for r in _answer(server, task, 2) if r["id"] != mine["id"])
    assert theirs["answer"] == {"order": {"order": [2, [0, 3], 1], "shown_order": shown2}}
    # both name the same candidates: index 2 is the same text for both, whatever position it had
    with server.api() as api:
        done = api.get(f"/tasks/{task}").json()
    assert done["status"] == "completed" and done["result"]["answer"]["order"][0] == 2
    assert tab.script_errors() == [] and second.script_errors() == []


PAYLOADS = [
    "<script>window.__pwned = 1</script>",
    '<img src="x" onerror="window.__pwned = 2">',
    "[link](javascript:window.__pwned=3)",
    "[link](JaVaScRiPt:window.__pwned=4)",
    "![image](javascript:window.__pwned=5)",
    "<svg onload=window.__pwned=6></svg>",
    '<iframe src="javascript:window.__pwned=7"></iframe>',
    "<a href='javascript:window.__pwned=8'>x</a>",
    "[data](data:text/html,<script>window.__pwned=9</script>)",
    '<form action="/logout"><button>x</button></form>',
    "<style>body { display: none }</style>",
    "`<script>` in code stays text",
    "![a pixel](https://tracker.example/pixel.png)",
]


def test_markdown_renderer_neutralises_html_and_script_urls(tab: Tab, server: Server) -> None:
    """The renderer on its own, in Chromium: nothing from the text becomes live markup."""
    page = _annotator(tab)
    page.goto("/")
    rendered = page.evaluate(
        """async (payloads) => {
            const { renderMarkdown } = await import('/static/markdown.js');
            return payloads.map((text) => {
                const node = renderMarkdown(text);
                document.body.append(node); // live in the page: any handler would fire now
                return { html: node.innerHTML, text: node.textContent,
                         bad: node.querySelectorAll('script, iframe, svg, form, style, [onerror], [onload]')
                           .length,
                         hrefs: [...node.querySelectorAll('[href], [src]')]
                           .map((el) => el.getAttribute('href') || el.getAttribute('src')) };
            });
        }""",
        PAYLOADS,
    )
    for payload, out in zip(PAYLOADS, rendered, strict=True):
        assert out["bad"] == 0, (payload, out)
        assert not any(h and h.strip().lower().startswith(("javascript:", "data:")) for h in out["hrefs"]), out
    assert "<script>window.__pwned = 1</script>" in rendered[0]["text"]  # raw HTML is shown as text
    assert rendered[-2]["html"].strip() == "<p><code>&lt;script&gt;</code> in code stays text</p>"
    # an image is a link, fetched only if opened: a tracking pixel in a model's text learns nothing
    assert "<img" not in rendered[-1]["html"] and rendered[-1]["hrefs"] == ["https://tracker.example/pixel.png"]
    assert "[image: a pixel]" in rendered[-1]["text"]
    assert page.evaluate("() => window.__pwned") is None
    assert tab.script_errors() == []


def test_a_reviewer_fixes_a_pairwise_result_with_the_keyboard(tab: Tab, server: Server) -> None:
    """The review page shows the replies as imported (models named: reviewers see the data); a fix
    picks B by key, the server records the imported order as the one shown."""
    with server.api() as owner:
        quality = {"overlap": 1, "review": {"sample_rate": 1.0}}
        body = {"name": f"review {uuid.uuid4().hex[:6]}", "spec": CHAT_SPEC, "quality": quality}
        project = owner.post("/projects", json=body).json()
        task = owner.post(f"/projects/{project['id']}/tasks", json={"data": CHAT_TASK}).json()
        answer = {"preference": {"winner": 0, "strength": "much better"}, "helpfulness": 3}
        with _annotator_client(server, owner) as annotator:
            done = annotator.post(f"/tasks/{task['id']}/responses", json={"answer": answer})
            assert done.status_code == 201, done.text
    page = tab.page
    log_in(page, server.owner_email, server.owner_password)
    page.goto(f"/projects/{project['id']}/review")
    expect(page.locator("#task")).to_be_visible()
    expect(page.locator("#fields")).to_contain_text("model-alpha")  # reviewers see the data as imported
    page.keyboard.press("f")
    expect(page.locator("#fix-form")).to_be_visible()
    fix = page.locator('#fix-form [data-question="preference"]')
    expect(fix.locator('[data-choice="0"]')).to_have_attribute("aria-pressed", "true")  # filled with the result
    page.keyboard.press("2")  # B, as imported: candidate 1
    page.keyboard.press("Shift+Digit2")  # slightly better
    page.keyboard.press("4")  # helpfulness
    page.keyboard.press("Enter")
    expect(page.locator('[data-panel="empty"]')).to_be_visible()
    stored = server.responses(task["id"])
    fixed = [r["answer"] for r in stored if r["answer"]["preference"]["winner"] == 1]
    assert fixed == [
        {"preference": {"winner": 1, "strength": "slightly better", "shown_order": [0, 1]}, "helpfulness": 4}
    ]
    assert tab.script_errors() == []

"""The task browser and task pages in-process (tests/e2e drives them in a browser): who may open
them, the filters as a GET form with errors named by field, keyset pages, escaping, tenant isolation."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from truthset.config import Settings
from truthset.domain import Role

from .helpers import API, Api, Org
from .test_session import page_csrf, sign_in

ROW = re.compile(r'<tr data-task-id="([0-9a-f]{24})">')
NEXT = re.compile(r'<a class="btn" href="\?([^"]*)" rel="next">')


def _owner_signed_in(api: Api, org: Org) -> None:
    sign_in(api, org.owner.member["email"], org.owner.password)


def test_annotators_get_403_and_no_link(api: Api, org: Org) -> None:
    project = org.make_project()
    member = org.actor(Role.ANNOTATOR)
    sign_in(api, member.member["email"], member.password)
    response = api.get(f"/projects/{project['id']}/tasks")
    assert response.status_code == 403 and "Not allowed" in response.text


def test_reviewers_browse_without_bulk_actions(api: Api, org: Org) -> None:
    project = org.make_project()
    org.make_task(project["id"], "hello")
    member = org.actor(Role.REVIEWER)
    sign_in(api, member.member["email"], member.password)
    response = api.get(f"/projects/{project['id']}/tasks")
    assert response.status_code == 200 and len(ROW.findall(response.text)) == 1
    assert 'id="bulk-bar"' not in response.text and "select-task" not in response.text


def test_signed_out_visitors_are_sent_to_sign_in(api: Api, org: Org) -> None:
    project = org.make_project()
    response = api.get(f"/projects/{project['id']}/tasks", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_filters_search_and_pages(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    from truthset.ui import _task_pages

    monkeypatch.setattr(_task_pages, "PAGE_SIZE", 2)
    project = org.make_project()
    made = [
        org.make_task(project["id"], f"word{i} <b>bold</b>", metadata={"lang": "en" if i % 2 else "fr"})
        for i in range(5)
    ]
    _owner_signed_in(api, org)
    seen: list[str] = []
    query = ""
    while True:
        page = api.get(f"/projects/{project['id']}/tasks?{query}".replace("&amp;", "&"))
        assert page.status_code == 200
        assert "<b>bold</b>" not in page.text and "&lt;b&gt;bold&lt;/b&gt;" in page.text  # user content escaped
        seen += ROW.findall(page.text)
        following = NEXT.search(page.text)
        if following is None:
            break
        query = following.group(1).replace("&amp;", "&")
    assert seen == [t["id"] for t in made]
    english = api.get(f"/projects/{project['id']}/tasks", params={"meta": "lang=en"}).text
    assert set(ROW.findall(english)) == {t["id"] for t in made if t["metadata"]["lang"] == "en"}
    found = api.get(f"/projects/{project['id']}/tasks", params={"q": "word3"}).text
    assert ROW.findall(found) == [made[3]["id"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_confidence": "high"}, "min_confidence"),
        ({"max_confidence": "2"}, "max_confidence"),
        ({"meta": "no-equals-sign"}, "meta"),
        ({"status": "lost"}, "status"),
        ({"sort": "colour"}, "sort"),
    ],
)
def test_a_bad_filter_is_named_next_to_its_field(api: Api, org: Org, params: dict[str, str], field: str) -> None:
    project = org.make_project()
    org.make_task(project["id"])
    _owner_signed_in(api, org)
    page = api.get(f"/projects/{project['id']}/tasks", params=params).text
    assert f'id="err-{field}" role="alert"' in page and f'aria-describedby="err-{field}"' in page
    assert ROW.findall(page) == []


def test_another_organizations_project_is_not_found(api: Api, org: Org, make_org: Any) -> None:
    other = make_org("Other")
    theirs = other.make_project()
    _owner_signed_in(api, org)
    assert api.get(f"/projects/{theirs['id']}/tasks").status_code == 404


def test_bulk_actions_from_the_page_need_the_csrf_token(api: Api, org: Org) -> None:
    project = org.make_project()
    task = org.make_task(project["id"])
    _owner_signed_in(api, org)
    path = f"{API}/projects/{project['id']}/tasks/actions"
    body: dict[str, Any] = {"action": "set_priority", "ids": [task["id"]], "priority": 7}
    assert api.post(path, json=body).status_code == 403
    ok = api.post(path, json=body, headers={"X-CSRF-Token": page_csrf(api)})
    assert ok.status_code == 200 and ok.json()["changed"] == 1
    counted = api.post(
        path, json={"action": "cancel", "filter": {}, "dry_run": True}, headers={"X-CSRF-Token": page_csrf(api)}
    )
    assert counted.json() == {"matched": 1, "changed": 0, "skipped": 0}
    assert org.task(task["id"])["status"] == "pending"


def test_the_task_page_shows_responses_reviews_and_history_in_words(api: Api, org: Org) -> None:
    project = org.make_project()
    task = org.make_task(project["id"], "hello", metadata={"lang": "en"})
    annotator = org.actor(Role.ANNOTATOR)
    lease = api.post(f"{API}/projects/{project['id']}/next", auth=annotator).json()
    body = {"answer": {"sentiment": "positive", "stars": 4}, "assignment_id": lease["id"], "duration_ms": 2500}
    assert api.post(f"{API}/tasks/{task['id']}/responses", auth=annotator, json=body).status_code == 201
    _owner_signed_in(api, org)
    back = f"/projects/{project['id']}/tasks?meta=lang%3Den"
    shown = api.get(f"/tasks/{task['id']}", params={"back": back}).text
    assert 'id="responses"' in shown and "2.5 s" in shown
    assert "Answered in 2.5 s" in shown and "Completed" in shown and "Not reviewed." in shown
    assert f'href="{back.replace("&", "&amp;")}" data-link="back"' in shown
    # a back link elsewhere is not followed: the browser of the task's project instead
    elsewhere = api.get(f"/tasks/{task['id']}", params={"back": "https://evil.example/"}).text
    assert f'href="/projects/{project["id"]}/tasks" data-link="back"' in elsewhere
    assert f"/projects/{project['id']}/tasks?meta=lang%3Den" in shown  # metadata links to the filtered browser


def test_an_image_task_shows_a_thumbnail_and_its_caption_not_its_media_reference(api: Api, org: Org) -> None:
    from .helpers import PNG

    media = api.post(f"{API}/media", auth=org.owner, files={"file": ("dot.png", PNG, "image/png")}).json()
    spec = {
        "fields": [{"name": "photo", "type": "image"}, {"name": "caption", "type": "text", "required": False}],
        "questions": [{"name": "q", "type": "text"}],
    }
    project = org.make_project(spec=spec)
    body = {"data": {"photo": media["reference"], "caption": "a cat on a mat"}}
    assert api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json=body).status_code == 201
    _owner_signed_in(api, org)
    shown = api.get(f"/projects/{project['id']}/tasks").text
    cell = re.search(r'<td class="task-preview">(.*?)</td>', shown, re.S)
    assert cell is not None
    assert f'<img class="task-thumb" src="/api/v1/media/{media["id"]}" alt="photo (image)"' in cell.group(1)
    assert "a cat on a mat" in cell.group(1) and "media:" not in cell.group(1)
    assert api.get(f"/api/v1/media/{media['id']}").status_code == 200  # the thumbnail loads with the session


def test_a_gold_task_page_offers_unmarking_to_managers_only(
    api: Api, make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    project = org.make_project()
    task = org.make_task(project["id"], "hello")
    answer = {"answer": {"sentiment": "positive"}}
    marked = api.request("PUT", f"{API}/tasks/{task['id']}/gold", auth=org.owner, json=answer)
    assert marked.status_code == 200, marked.text
    reviewer = org.actor(Role.REVIEWER)
    sign_in(api, reviewer.member["email"], reviewer.password)
    shown = api.get(f"/tasks/{task['id']}").text
    assert "Gold answer" in shown and 'id="unmark-gold"' not in shown  # a reviewer reads, never unmarks
    owner = make_api(settings)  # a browser of its own
    _owner_signed_in(owner, org)
    assert 'id="unmark-gold"' in owner.get(f"/tasks/{task['id']}").text

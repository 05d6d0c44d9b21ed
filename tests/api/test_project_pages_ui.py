"""The project pages in-process (the e2e suite drives them in a browser): who may open them, tenant
isolation, escaping of user content, and CSRF on the API calls their module makes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from truthset.domain import Role

from .helpers import API, Api, Org, assert_error
from .test_session import page_csrf, sign_in

CONFIG = re.compile(r'<script type="application/json" id="editor-config">(.*?)</script>', re.S)


def _pages(project_id: str) -> list[str]:
    return ["/projects/new", f"/projects/new?from={project_id}", f"/projects/{project_id}/edit", "/projects/archived"]


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.REVIEWER])
def test_roles_that_may_not_change_projects_get_403_and_no_button(api: Api, org: Org, role: Role) -> None:
    project = org.make_project()
    member = org.actor(role)
    sign_in(api, member.member["email"], member.password)
    for path in _pages(project["id"]):
        response = api.get(path)
        assert response.status_code == 403, path
        assert "Not allowed" in response.text
    home = api.get("/").text
    assert "/projects/new" not in home and "/projects/archived" not in home
    if role is Role.REVIEWER:  # sees the project page, without its management
        shown = api.get(f"/projects/{project['id']}").text
        assert f"/projects/{project['id']}/edit" not in shown and 'data-action="delete"' not in shown
        assert '"may_manage_tasks": false' in shown and 'id="batch-form"' not in shown


def test_signed_out_visitors_are_sent_to_sign_in(api: Api, org: Org) -> None:
    project = org.make_project()
    for path in _pages(project["id"]):
        response = api.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), path


def test_a_manager_opens_the_editor_with_the_project_as_config(api: Api, org: Org) -> None:
    project = org.make_project(name="</script><script>alert(1)</script>", instructions="<b>hi</b>")
    manager = org.actor(Role.MANAGER)
    sign_in(api, manager.member["email"], manager.password)
    assert "/projects/new" in api.get("/").text
    edit = api.get(f"/projects/{project['id']}/edit")
    assert edit.status_code == 200
    assert "<script>alert(1)</script>" not in edit.text  # escaped in the page and in its JSON config
    config = json.loads(CONFIG.search(edit.text).group(1))
    assert config["project_id"] == project["id"] and config["values"]["name"] == project["name"]
    assert config["values"]["spec"] == project["spec"] and "label" in config["question_types"]
    copy = json.loads(CONFIG.search(api.get(f"/projects/new?from={project['id']}").text).group(1))
    assert copy["project_id"] is None and copy["values"]["name"] == f"{project['name']} (copy)"
    assert copy["values"]["spec"] == project["spec"] and copy["values"]["instructions"] == "<b>hi</b>"
    fresh = json.loads(CONFIG.search(api.get("/projects/new").text).group(1))
    assert fresh["project_id"] is None and fresh["values"]["spec"]["questions"]


def test_another_organizations_project_is_not_found_in_the_pages(api: Api, org: Org, make_org: Any) -> None:
    other = make_org("Other")
    theirs = other.make_project(name="theirs")
    api.patch(f"{API}/projects/{theirs['id']}", auth=other.owner, json={"archived": True})
    mine = org.make_project(name="mine archived")
    api.patch(f"{API}/projects/{mine['id']}", auth=org.owner, json={"archived": True})
    sign_in(api, org.owner.member["email"], org.owner.password)
    for path in (f"/projects/{theirs['id']}/edit", f"/projects/new?from={theirs['id']}", f"/projects/{theirs['id']}"):
        assert api.get(path).status_code == 404, path
    archived = api.get("/projects/archived").text
    assert mine["id"] in archived and theirs["id"] not in archived


def test_the_pages_api_calls_need_the_csrf_token(api: Api, org: Org) -> None:
    project = org.make_project()
    sign_in(api, org.owner.member["email"], org.owner.password)
    assert_error(api.delete(f"{API}/projects/{project['id']}"), 403, "csrf_failed")
    assert_error(api.post(f"{API}/specs/validate", json={"spec": project["spec"]}), 403, "csrf_failed")
    token = page_csrf(api)
    checked = api.post(f"{API}/specs/validate", json={"spec": project["spec"]}, headers={"X-CSRF-Token": token})
    assert checked.status_code == 200
    assert api.delete(f"{API}/projects/{project['id']}", headers={"X-CSRF-Token": token}).status_code == 204


def test_archived_projects_come_in_keyset_pages(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    from truthset.ui import _project_pages

    monkeypatch.setattr(_project_pages, "ARCHIVED_PAGE_SIZE", 2)
    made = [org.make_project(name=f"old {n}")["id"] for n in range(3)]
    org.make_project(name="current")
    for project_id in made:
        api.patch(f"{API}/projects/{project_id}", auth=org.owner, json={"archived": True})
    sign_in(api, org.owner.member["email"], org.owner.password)
    first = api.get("/projects/archived").text
    assert [p for p in made if p in first] == made[:2] and "current" not in first
    next_link = re.search(r'href="(/projects/archived\?cursor=[^"]+)"', first).group(1)
    second = api.get(next_link.replace("&amp;", "&")).text
    assert [p for p in made if p in second] == made[2:] and "Next page" not in second

"""Browser sessions: sign-in, cookies, CSRF, expiry, throttling (in-process; the e2e suite drives a browser)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from truthset.api import session
from truthset.schemas import MemberCreate, MemberUpdate
from truthset.services import accounts
from truthset.storage import tables as t
from truthset.storage.ids import utcnow
from truthset.ui._render import markdown

from .helpers import API, Api, Org, assert_error

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def sign_in(api: Api, email: str, password: str, **extra: str) -> Any:
    form_page = api.get("/login")
    assert form_page.status_code == 200
    token = CSRF_FIELD.search(form_page.text)
    assert token is not None
    return api.post("/login", data={"email": email, "password": password, "csrf_token": token.group(1), **extra})


def page_csrf(api: Api) -> str:
    home = api.get("/")
    assert home.status_code == 200, home.text
    match = CSRF_META.search(home.text)
    assert match is not None
    return match.group(1)


def session_cookie(api: Api) -> str:
    return api._client.cookies[session.COOKIE]


def test_sign_in_sets_a_hardened_cookie_and_stores_only_a_hash(api: Api, org: Org) -> None:
    response = sign_in(api, org.owner.member["email"], org.owner.password, next="/projects/x/label")
    assert response.status_code == 303
    assert response.headers["location"] == "/projects/x/label"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{session.COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # plain http here
    token = session_cookie(api)
    with org.db.read() as conn:
        rows = conn.execute(select(t.sessions)).mappings().all()
    assert [r["token_hash"] for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in str([dict(r) for r in rows])
    me = api.get(f"{API}/me")
    assert me.status_code == 200 and me.json()["member"]["id"] == org.owner.id


def test_cookie_is_secure_over_https(api: Api, org: Org) -> None:
    api._client.base_url = "https://testserver"
    response = sign_in(api, org.owner.member["email"], org.owner.password)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{session.COOKIE}="))
    assert "Secure" in cookie


def test_unsafe_api_calls_with_the_cookie_need_the_csrf_token(api: Api, org: Org) -> None:
    project = org.make_project()
    org.make_tasks(project["id"], 2)
    sign_in(api, org.owner.member["email"], org.owner.password)
    token = page_csrf(api)
    assert api.get(f"{API}/projects/{project['id']}").status_code == 200  # reads need none
    for headers in ({}, {"X-CSRF-Token": "x" * 64}, {"X-CSRF-Token": ""}):
        error = assert_error(api.post(f"{API}/projects/{project['id']}/next", headers=headers), 403, "csrf_failed")
        assert error["details"]["field"] == "X-CSRF-Token"
    with org.db.read() as conn:
        assert conn.execute(select(t.assignments)).first() is None  # nothing happened
    leased = api.post(f"{API}/projects/{project['id']}/next", headers={"X-CSRF-Token": token})
    assert leased.status_code == 200
    # an API key needs no CSRF token, cookie or not: a browser never sends a key by itself
    assert api.post(f"{API}/projects/{project['id']}/next", auth=org.owner).status_code in (200, 204)


def test_sign_in_form_needs_its_double_submit_token(api: Api, org: Org) -> None:
    api.get("/login")
    response = api.post("/login", data={"email": org.owner.member["email"], "password": org.owner.password})
    assert response.status_code == 400
    assert session.COOKIE not in api._client.cookies
    response = api.post(
        "/login", data={"email": org.owner.member["email"], "password": org.owner.password, "csrf_token": "forged"}
    )
    assert response.status_code == 400 and "form expired" in response.text


def test_wrong_password_and_unknown_email_look_the_same(api: Api, org: Org) -> None:
    wrong = sign_in(api, org.owner.member["email"], "not-the-password")
    unknown = sign_in(api, "nobody@nowhere.example", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    message = "Wrong email or password."
    assert message in wrong.text and message in unknown.text
    assert session.COOKIE not in api._client.cookies


def test_failed_sign_ins_are_throttled(api: Api, org: Org) -> None:
    email = org.owner.member["email"]
    for _ in range(session.MAX_FAILURES_PER_EMAIL_AND_ADDRESS):
        assert sign_in(api, email, "guess").status_code == 401
    blocked = sign_in(api, email, org.owner.password)
    assert blocked.status_code == 429 and "too many failed sign-ins" in blocked.text
    assert session.COOKIE not in api._client.cookies
    # another member signing in from elsewhere is not affected
    with org.db.write() as conn:
        conn.execute(update(t.login_failures).values(address="10.9.9.9"))
    assert sign_in(api, email, org.owner.password).status_code == 303


def test_same_email_in_two_organizations_asks_which(api: Api, org: Org, other_org: Org) -> None:
    email = "shared@example.com"
    password = "a-long-password-1"
    for tenant in (org, other_org):
        accounts.add_member(
            tenant.db, tenant.owner.principal, MemberCreate(email=email, role="annotator", password=password)
        )
    choose = sign_in(api, email, password)
    assert choose.status_code == 200
    assert org.organization["name"] in choose.text and other_org.organization["name"] in choose.text
    assert session.COOKIE not in api._client.cookies
    chosen = sign_in(api, email, password, organization_id=other_org.id)
    assert chosen.status_code == 303
    assert api.get(f"{API}/me").json()["organization_id"] == other_org.id


def test_expired_sessions_and_disabled_members_are_signed_out(api: Api, org: Org) -> None:
    member = org.add_member("annotator")
    password = "annotator-password-1"
    with org.db.write() as conn:
        conn.execute(
            update(t.members).where(t.members.c.id == member.id).values(password_hash=accounts._hasher.hash(password))
        )
    sign_in(api, member.member["email"], password)
    assert api.get(f"{API}/me").status_code == 200
    with org.db.write() as conn:
        conn.execute(update(t.sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert_error(api.get(f"{API}/me"), 401, "unauthenticated")
    assert api.get("/").status_code == 303  # pages send you to sign in

    sign_in(api, member.member["email"], password)
    assert api.get(f"{API}/me").status_code == 200
    accounts.update_member(org.db, org.owner.principal, member.id, MemberUpdate(disabled=True))
    assert_error(api.get(f"{API}/me"), 401, "unauthenticated")


def test_idle_sessions_are_extended_but_never_past_the_absolute_limit(api: Api, org: Org) -> None:
    sign_in(api, org.owner.member["email"], org.owner.password)
    long_ago = utcnow() - session.ABSOLUTE + timedelta(minutes=1)
    with org.db.write() as conn:
        conn.execute(update(t.sessions).values(created_at=long_ago, last_seen_at=long_ago + timedelta(hours=1)))
    assert api.get(f"{API}/me").status_code == 200
    with org.db.read() as conn:
        expires_at = conn.execute(select(t.sessions.c.expires_at)).scalar_one()
    assert expires_at == long_ago + session.ABSOLUTE


def test_sign_out_needs_the_token_and_ends_the_session(api: Api, org: Org) -> None:
    sign_in(api, org.owner.member["email"], org.owner.password)
    token = page_csrf(api)
    cookie = session_cookie(api)
    refused = api.post("/logout", data={"csrf_token": "nope"})
    assert refused.status_code == 403
    assert api.get(f"{API}/me").status_code == 200
    done = api.post("/logout", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/login?signed_out=1"
    with org.db.read() as conn:
        assert conn.execute(select(t.sessions)).first() is None
    api._client.cookies.set(session.COOKIE, cookie)  # a stolen copy of the old cookie opens nothing
    assert_error(api.get(f"{API}/me"), 401)


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"]
)
def test_sign_in_never_redirects_off_site(api: Api, org: Org, target: str) -> None:
    response = sign_in(api, org.owner.member["email"], org.owner.password, next=target)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_pages_carry_security_headers_and_the_api_a_stricter_policy(api: Api, org: Org) -> None:
    page = api.get("/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert api.get(f"{API}/me", auth=org.owner).headers["content-security-policy"].startswith("default-src 'none'")
    # the UI's pages are not API operations
    paths = set(api.get(f"{API}/openapi.json").json()["paths"])
    assert not {"/", "/login", "/logout"} & paths


def test_annotators_get_a_403_page_for_manager_pages(api: Api, org: Org) -> None:
    project = org.make_project()
    member = org.add_member("annotator")
    password = "annotator-password-1"
    with org.db.write() as conn:
        conn.execute(
            update(t.members).where(t.members.c.id == member.id).values(password_hash=accounts._hasher.hash(password))
        )
    sign_in(api, member.member["email"], password)
    page = api.get(f"/projects/{project['id']}")
    assert page.status_code == 403 and "Not allowed" in page.text
    assert api.get(f"/projects/{project['id']}/label").status_code == 200
    assert api.get("/projects/000000000000000000000000/label").status_code == 404


def test_markdown_is_rendered_without_raw_html_or_script_links() -> None:
    html = str(markdown("# Title\n\n<script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com)"))
    assert "<h1>Title</h1>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html
    assert 'href="https://example.com" target="_blank" rel="noopener noreferrer"' in html


def test_every_ui_page_is_documented() -> None:
    from pathlib import Path

    from truthset.ui import _account_pages, _dashboard_pages, _pages, _project_pages, _task_pages, _webhook_pages

    text = (Path(__file__).parents[2] / "docs" / "workbench.md").read_text()
    modules = (_pages, _project_pages, _task_pages, _account_pages, _dashboard_pages, _webhook_pages)
    # the pages (a form's POST action belongs to its page)
    paths = {route.path for module in modules for route in module.router.routes if "GET" in route.methods}
    assert "/projects/{project_id}/label" in paths
    missing = sorted(
        p.replace("{type_name}", "{type}") for p in paths if f"`{p.replace('{type_name}', '{type}')}`" not in text
    )
    assert not missing, f"undocumented pages in docs/workbench.md: {missing}"


def test_ui_pages_hide_other_tenants_projects(api: Api, org: Org, other_org: Org) -> None:
    """Signed in by cookie as the owner of ANOTHER organization, every UI page that takes an object id
    answers exactly like a missing object (same status, same page but for the id), shows none of
    org A's data and changes nothing; the project list shows none of org A's projects."""
    from truthset.services import projects
    from truthset.storage.ids import new_id
    from truthset.ui import _dashboard_pages, _pages, _project_pages, _task_pages

    # every page that takes a project or task id (the account pages test their own ids apart)
    modules = (_pages, _project_pages, _task_pages, _dashboard_pages)
    routes = [r for m in modules for r in m.router.routes if "GET" in r.methods]

    project = org.make_project(name="acme-secret-project", description="acme-secret-description")
    batch = org.make_batch(project["id"], name="acme-secret-batch")
    task = org.make_task(project["id"], "acme-secret-item", batch_id=batch["id"])
    secrets_of_a = {
        org.id,
        project["id"],
        batch["id"],
        task["id"],
        org.owner.id,
        "acme-secret-project",
        "acme-secret-description",
        "acme-secret-batch",
        "acme-secret-item",
    }
    pages = [route.path for route in routes if re.search(r"\{(project|task)_id\}", getattr(route, "path", ""))]
    assert set(pages) >= {"/projects/{project_id}", "/projects/{project_id}/label", "/tasks/{task_id}"}
    other_ids = [name for route in routes for name in route.param_convertors if name.endswith("_id")]
    assert set(other_ids) == {"project_id", "task_id"}, "a new page takes another object id: cover it here"
    ids = {"project_id": project["id"], "task_id": task["id"]}

    # org A's owner sees the pages (so the 404s below are about the tenant, not a broken page)
    sign_in(api, org.owner.member["email"], org.owner.password)
    for path in pages:
        own = api.get(path.format(**ids))
        assert own.status_code == 200 and "acme-secret-project" in own.text, path
    api._client.cookies.clear()

    assert sign_in(api, other_org.owner.member["email"], other_org.owner.password).status_code == 303
    with org.db.read() as conn:
        tasks_before = conn.execute(select(t.tasks).where(t.tasks.c.organization_id == org.id)).mappings().all()
    for path in pages:
        real_id = project["id"] if "{project_id}" in path else task["id"]
        real = api.get(path.format(**ids))
        missing_id = new_id()
        missing = api.get(path.format(project_id=missing_id, task_id=missing_id))
        assert real.status_code == missing.status_code == 404, path
        assert real.text.replace(real_id, "<id>") == missing.text.replace(missing_id, "<id>"), path
        leaked = {s for s in secrets_of_a - {real_id} if s in real.text}
        assert not leaked, f"{path} leaked {leaked}"
    home = api.get("/")
    assert home.status_code == 200
    assert not {s for s in secrets_of_a if s in home.text}
    # the service behind the pages' counts is scoped the same way
    assert projects.project_counts(org.db, other_org.owner.principal, [project["id"]]) == {project["id"]: {}}
    assert projects.project_counts(org.db, org.owner.principal, [project["id"]]) == {project["id"]: {"staged": 1}}
    with org.db.read() as conn:
        assert conn.execute(select(t.tasks).where(t.tasks.c.organization_id == org.id)).mappings().all() == tasks_before

"""The members, API keys, account and organizations pages, in-process (the e2e suite drives a browser).

Every page and form checks the role server-side (a direct URL answers 403, not just a hidden link),
every form needs the session's CSRF token, another organization's objects answer 404, and a session
in one organization never opens another because an email matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from truthset.api import session
from truthset.config import Settings
from truthset.domain import Role
from truthset.services import accounts, sessions
from truthset.ui import _held

from .helpers import API, Actor, Api, Org
from .test_session import CSRF_META, sign_in

NAV = {
    "members": "/members",
    "keys": "/keys",
    "account": "/account",
    "organizations": "/organizations",
    "webhooks": "/webhooks",
    "jobs": "/jobs",
    "media": "/media",
}

#: Pages (GET) and who may open them: the policy's READ_MEMBERS for the members page, everyone else.
PAGES: dict[str, set[Role]] = {
    "/members": {Role.OWNER, Role.ADMIN, Role.MANAGER},
    "/keys": set(Role),
    "/account": set(Role),
    "/organizations": set(Role),
    "/webhooks": {Role.OWNER, Role.ADMIN, Role.MANAGER},  # the policy's MANAGE_WEBHOOKS
    "/jobs": set(Role),  # everyone: their own jobs, managers and above every job
    "/media": {Role.OWNER, Role.ADMIN, Role.MANAGER},  # the policy's LIST_MEDIA
}


def _browser(make_api: Callable[..., Api], settings: Settings, actor: Actor) -> Api:
    browser = make_api(settings)
    assert sign_in(browser, actor.member["email"], actor.password or "").status_code == 303
    return browser


def _csrf(browser: Api, path: str = "/account") -> str:
    match = CSRF_META.search(browser.get(path).text)
    assert match is not None
    return match.group(1)


def _nav_links(html: str) -> set[str]:
    return set(re.findall(r'data-nav="(\w+)"', html))


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_only_the_pages_it_may_use(
    make_api: Callable[..., Api], settings: Settings, org: Org, role: Role
) -> None:
    browser = _browser(make_api, settings, org.actor(role))
    home = browser.get("/")
    assert _nav_links(home.text) == {name for name, path in NAV.items() if role in PAGES[path]}
    for path, roles in PAGES.items():
        response = browser.get(path)
        assert response.status_code == (200 if role in roles else 403), (role, path, response.text[:300])
        assert response.headers["cache-control"] == "no-store" or response.status_code == 403


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR])
def test_roles_below_admin_change_no_member(
    make_api: Callable[..., Api], settings: Settings, org: Org, role: Role
) -> None:
    browser = _browser(make_api, settings, org.actor(role))
    target = org.add_member(Role.ANNOTATOR)
    csrf = _csrf(browser)
    for path, data in [
        ("/members", {"email": "new@x.test", "role": "annotator"}),
        (f"/members/{target.id}/role", {"role": "manager"}),
        (f"/members/{target.id}/disable", {}),
        (f"/members/{target.id}/password-reset", {}),
        ("/organizations/new", {"name": "mine"}),
    ]:
        response = browser.post(path, data={"csrf_token": csrf, **data})
        assert response.status_code == 403, (path, response.status_code)
    for path in (f"/members/{target.id}/disable", f"/members/{target.id}/password-reset"):
        assert browser.get(path).status_code == 403
    member = accounts.get_member(org.db, org.owner.principal, target.id)
    assert member["role"] == "annotator" and member["disabled_at"] is None
    members_page = browser.get("/members").text
    assert "Add a member" not in members_page and "Change role" not in members_page  # managers read only
    assert "Create an organization" not in browser.get("/organizations").text


def test_the_owner_manages_members_and_sees_each_secret_once(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    browser = _browser(make_api, settings, org.owner)
    csrf = _csrf(browser, "/members")
    added = browser.post(
        "/members", data={"csrf_token": csrf, "email": "Ann@X.test", "name": "Ann", "role": "annotator"}
    )
    assert added.status_code == 303 and added.headers["location"] == "/members"
    shown = browser.get("/members")
    secret = re.search(r'id="one-time-secret"[^>]*value="([^"]+)"', shown.text)
    assert secret is not None and "ann@x.test was added as annotator" in shown.text
    assert "one-time-secret" not in browser.get("/members").text  # gone on the next load
    ann = next(
        m for m in accounts.list_members(org.db, org.owner.principal, cursor=None, limit=50)[0] if m["name"] == "Ann"
    )
    assert accounts.login(org.db, org.id, "ann@x.test", secret.group(1))["id"] == ann["id"]
    # refusals are the API's messages next to their field
    again = browser.post("/members", data={"csrf_token": csrf, "email": "ann@x.test", "role": "annotator"})
    assert again.status_code == 409 and "email: a member with email ann@x.test already exists" in again.text
    bad = browser.post("/members", data={"csrf_token": csrf, "email": "nope", "role": "annotator"})
    assert bad.status_code == 422 and 'id="m-email-error"' in bad.text and "email: not an email address" in bad.text
    last_owner = browser.post(f"/members/{org.owner.id}/role", data={"csrf_token": csrf, "role": "admin"})
    assert last_owner.status_code == 409 and "an organization keeps at least one active owner" in last_owner.text
    again_here = browser.post(
        "/organizations/sign-in", data={"csrf_token": csrf, "email": "ann@x.test", "password": secret.group(1)}
    )
    assert again_here.status_code == 409 and "email: you are signed in to this organization already" in again_here.text
    # role, disable, enable, reset
    assert browser.post(f"/members/{ann['id']}/role", data={"csrf_token": csrf, "role": "reviewer"}).status_code == 303
    assert "ann@x.test is now reviewer" in browser.get("/members").text
    assert "Disable ann@x.test?" not in browser.get(f"/members/{ann['id']}/disable").text  # the title names the name
    assert "Disable Ann?" in browser.get(f"/members/{ann['id']}/disable").text
    assert browser.post(f"/members/{ann['id']}/disable", data={"csrf_token": csrf}).status_code == 303
    assert accounts.get_member(org.db, org.owner.principal, ann["id"])["disabled_at"] is not None
    assert browser.post(f"/members/{ann['id']}/enable", data={"csrf_token": csrf}).status_code == 303
    reset = browser.post(f"/members/{ann['id']}/password-reset", data={"csrf_token": csrf})
    assert reset.status_code == 303
    page = browser.get("/members").text
    new_secret = re.search(r'id="one-time-secret"[^>]*value="([^"]+)"', page)
    assert new_secret is not None and "The password of ann@x.test was reset" in page
    assert accounts.login(org.db, org.id, "ann@x.test", new_secret.group(1))


def test_the_last_owner_keeps_the_role_with_the_apis_message(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    admin = org.actor(Role.ADMIN)
    browser = _browser(make_api, settings, org.owner)
    csrf = _csrf(browser, "/members")
    response = browser.post(f"/members/{admin.id}/role", data={"csrf_token": csrf, "role": "owner"})
    assert response.status_code == 303  # now two owners: the first may step down
    response = browser.post(f"/members/{admin.id}/role", data={"csrf_token": csrf, "role": "manager"})
    assert response.status_code == 303
    refused = browser.post(f"/members/{org.owner.id}/disable", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "an organization keeps at least one active owner" in refused.text
    assert f'id="row-error-{org.owner.id}"' in refused.text


def test_every_form_needs_the_csrf_token(make_api: Callable[..., Api], settings: Settings, org: Org) -> None:
    browser = _browser(make_api, settings, org.owner)
    ann = org.add_member(Role.ANNOTATOR)
    key = accounts.create_key(org.db, org.owner.principal, accounts.ApiKeyCreate(name="k"))
    for path in (
        "/members",
        f"/members/{ann.id}/role",
        f"/members/{ann.id}/disable",
        f"/members/{ann.id}/enable",
        f"/members/{ann.id}/password-reset",
        "/keys",
        f"/keys/{key['id']}/revoke",
        "/account/password",
        "/organizations/switch",
        "/organizations/sign-in",
        "/organizations/new",
    ):
        response = browser.post(
            path, data={"csrf_token": "forged", "email": "z@z.test", "role": "manager", "name": "n"}
        )
        assert response.status_code == 403 and "The form expired" in response.text, path
    assert len(accounts.organizations(org.db)) == 1
    assert accounts.get_key(org.db, org.owner.principal, key["id"])["revoked_at"] is None


def test_other_organizations_objects_are_not_found(
    make_api: Callable[..., Api], settings: Settings, org: Org, other_org: Org
) -> None:
    browser = _browser(make_api, settings, org.owner)
    csrf = _csrf(browser)
    stranger = other_org.add_member(Role.ANNOTATOR)
    key = accounts.create_key(other_org.db, other_org.owner.principal, accounts.ApiKeyCreate(name="theirs"))
    for path in (
        f"/members/{stranger.id}/disable",
        f"/members/{stranger.id}/password-reset",
        f"/keys/{key['id']}/revoke",
    ):
        assert browser.get(path).status_code == 404, path
        assert browser.post(path, data={"csrf_token": csrf}).status_code == 404, path
    assert browser.get(f"/keys?member={stranger.id}").status_code == 404
    assert browser.post(f"/members/{stranger.id}/role", data={"csrf_token": csrf, "role": "manager"}).status_code == 404
    assert accounts.get_member(other_org.db, other_org.owner.principal, stranger.id)["role"] == "annotator"
    assert accounts.get_key(other_org.db, other_org.owner.principal, key["id"])["revoked_at"] is None
    assert stranger.member["email"] not in browser.get("/members").text


def test_keys_page_creates_and_revokes_with_confirmation(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    ann = org.actor(Role.ANNOTATOR)
    browser = _browser(make_api, settings, ann)
    csrf = _csrf(browser, "/keys")
    blank = browser.post("/keys", data={"csrf_token": csrf, "name": ""})
    assert blank.status_code == 422 and 'id="k-name-error"' in blank.text and "name: " in blank.text
    assert browser.post("/keys", data={"csrf_token": csrf, "name": "laptop"}).status_code == 303
    page = browser.get("/keys").text
    secret = re.search(r'id="one-time-secret"[^>]*value="(ts_[^"]+)"', page)
    assert secret is not None
    assert browser.get(f"{API}/me", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 200
    assert secret.group(1) not in browser.get("/keys").text
    # an annotator lists only its own keys and may not make one for someone else
    assert org.owner.member["email"] not in browser.get("/keys").text
    assert browser.get(f"/keys?member={org.owner.id}").status_code == 403
    owner_key = accounts.list_keys(org.db, org.owner.principal, cursor=None, limit=5)[0][0]
    assert (
        browser.post("/keys", data={"csrf_token": csrf, "name": "x", "member_id": owner_key["member_id"]}).status_code
        == 403
    )
    assert browser.get(f"/keys/{owner_key['id']}/revoke").status_code == 403
    mine = next(k for k in accounts.list_keys(org.db, ann.principal, cursor=None, limit=10)[0] if k["name"] == "laptop")
    confirm = browser.get(f"/keys/{mine['id']}/revoke")
    assert confirm.status_code == 200 and "Revoke the key “laptop”?" in confirm.text
    assert browser.post(f"/keys/{mine['id']}/revoke", data={"csrf_token": csrf}).status_code == 303
    assert "is revoked" in browser.get("/keys").text
    assert browser.get(f"{API}/me", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 401


def test_account_page_changes_the_password_and_names_bad_fields(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    ann = org.actor(Role.ANNOTATOR)
    browser, elsewhere = _browser(make_api, settings, ann), _browser(make_api, settings, ann)
    csrf = _csrf(browser)
    form = {
        "csrf_token": csrf,
        "current_password": ann.password,
        "new_password": "long enough now",
        "confirm_password": "long enough now",
    }
    wrong = browser.post("/account/password", data={**form, "current_password": "nope"})
    assert wrong.status_code == 422 and "current_password: the current password is wrong" in wrong.text
    short = browser.post("/account/password", data={**form, "new_password": "short", "confirm_password": "short"})
    assert short.status_code == 422 and "new_password: String should have at least 12 characters" in short.text
    differ = browser.post("/account/password", data={**form, "confirm_password": "something else"})
    assert differ.status_code == 422 and "confirm_password: the two new passwords differ" in differ.text
    done = browser.post("/account/password", data=form)
    assert done.status_code == 303
    assert "Your password is changed (1 other session signed out)" in browser.get("/account").text
    assert elsewhere.get("/account").status_code == 303  # signed out: back to sign-in
    assert accounts.login(org.db, org.id, ann.member["email"], "long enough now")


def test_switching_needs_the_other_memberships_own_password(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    """The attack: anyone founds an organization with a member of your email. It is not yours."""
    email = org.owner.member["email"]
    planted = accounts.init_organization(org.db, "Look-alike", email)
    browser = _browser(make_api, settings, org.owner)
    page = browser.get("/organizations").text
    assert "Look-alike" not in page  # only organizations this browser holds a session for
    csrf = _csrf(browser)
    planted_id = planted["organization"]["id"]
    refused = browser.post(
        "/organizations/sign-in",
        data={"csrf_token": csrf, "email": email, "password": org.owner.password, "organization_id": planted_id},
    )
    assert refused.status_code == 401 and "password: wrong email or password" in refused.text
    # a switch to a session this browser does not hold (a made-up one, or the org's id) is refused
    for forged in (planted_id, planted["member"]["id"], "0" * 24):
        response = browser.post("/organizations/switch", data={"csrf_token": csrf, "session_id": forged})
        assert response.status_code == 404
    assert browser.get(f"{API}/me").json()["organization_id"] == org.id
    # a held-sessions cookie with a made-up token does not help either
    browser._client.cookies.set(_held.COOKIE, "x" * 43)
    assert "Look-alike" not in browser.get("/organizations").text
    # with that membership's own password, it opens
    opened = browser.post(
        "/organizations/sign-in", data={"csrf_token": csrf, "email": email, "password": planted["password"]}
    )
    assert opened.status_code == 303
    assert browser.get(f"{API}/me").json()["organization_id"] == planted_id


def test_found_switch_back_and_sign_out_of_all(make_api: Callable[..., Api], settings: Settings, org: Org) -> None:
    browser = _browser(make_api, settings, org.owner)
    csrf = _csrf(browser)
    blank = browser.post("/organizations/new", data={"csrf_token": csrf, "name": "  "})
    assert blank.status_code == 422 and "name: the name is blank" in blank.text
    made = browser.post("/organizations/new", data={"csrf_token": csrf, "name": "Acme research"})
    assert made.status_code == 303 and made.headers["location"] == "/organizations"
    page = browser.get("/organizations").text
    assert "You founded Acme research and switched to it" in page
    me = browser.get(f"{API}/me").json()
    assert me["organization_name"] == "Acme research" and me["member"]["role"] == "owner"
    # back to Acme without a password: the session this browser holds
    session_id = re.search(r'name="session_id" value="([^"]+)"', page)
    assert session_id is not None and "Acme" in page
    csrf = _csrf(browser)
    assert (
        browser.post("/organizations/switch", data={"csrf_token": csrf, "session_id": session_id.group(1)}).status_code
        == 303
    )
    me = browser.get(f"{API}/me")
    assert me.status_code == 200, (me.text, browser._client.cookies)
    assert me.json()["organization_id"] == org.id
    assert "Acme research" in browser.get("/organizations").text
    # signing out ends both
    tokens = [browser._client.cookies[session.COOKIE], *browser._client.cookies[_held.COOKIE].split(".")]
    assert browser.post("/logout", data={"csrf_token": _csrf(browser)}).status_code == 303
    assert len(tokens) == 2 and [sessions.load(org.db, token) for token in tokens] == [None, None]


def test_an_admin_may_not_make_an_owner(make_api: Callable[..., Api], settings: Settings, org: Org) -> None:
    admin = org.actor(Role.ADMIN)
    ann = org.add_member(Role.ANNOTATOR)
    browser = _browser(make_api, settings, admin)
    page = browser.get("/members").text
    assert '<option value="owner"' not in page and '<option value="admin"' not in page  # not offered
    assert f"/members/{org.owner.id}/disable" not in page  # no buttons on an owner
    csrf = _csrf(browser, "/members")
    refused = browser.post(f"/members/{ann.id}/role", data={"csrf_token": csrf, "role": "owner"})
    assert refused.status_code == 403 and "the admin role may not change a role from or to owner" in refused.text
    added = browser.post("/members", data={"csrf_token": csrf, "email": "boss@x.test", "role": "owner"})
    assert added.status_code == 403 and "role: the admin role may not add a member as owner" in added.text
    assert browser.get(f"/members/{org.owner.id}/password-reset").status_code == 403
    assert accounts.get_member(org.db, org.owner.principal, ann.id)["role"] == "annotator"


def test_members_and_keys_pages_paginate(make_api: Callable[..., Api], settings: Settings, org: Org) -> None:
    for _ in range(55):  # more than a page (50)
        org.add_member(Role.ANNOTATOR)
    browser = _browser(make_api, settings, org.owner)
    first = browser.get("/members").text
    next_link = re.search(r'href="/members\?cursor=([0-9a-f]{24})" rel="next"', first)
    assert next_link is not None and first.count("data-member-id=") == 50
    second = browser.get(f"/members?cursor={next_link.group(1)}").text
    assert (
        second.count("data-member-id=") == 6 and 'rel="next"' not in second and 'href="/members">First page' in second
    )
    assert not set(re.findall(r'data-member-id="(\w+)"', first)) & set(re.findall(r'data-member-id="(\w+)"', second))
    keys_first = browser.get("/keys").text
    assert keys_first.count("data-key-id=") == 50 and 'rel="next"' in keys_first  # the owner sees 56 keys
    assert browser.get("/members?cursor=not-a-cursor").status_code == 400

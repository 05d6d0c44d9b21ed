"""Passwords (a member's reset, one's own change) and founding organizations, through the API.

Sessions are browser sessions (``services/sessions.py``): a password change or reset ends them; API
keys are untouched. A new organization's owner is a new member: nothing crosses organizations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from truthset.cli import app as cli_app
from truthset.config import Settings
from truthset.domain import Role
from truthset.errors import Unauthenticated
from truthset.services import accounts, sessions
from truthset.storage import tables as t

from .helpers import API, Api, Org, assert_error, snapshot
from .test_session import page_csrf, sign_in

NEW = "a brand new password"


def _can_sign_in(org: Org, email: str, password: str) -> bool:
    try:
        accounts.login(org.db, org.id, email, password)
    except Unauthenticated:
        return False
    return True


def _open_session(org: Org, member_id: str) -> str:
    with org.db.read() as conn:
        member = conn.execute(select(t.members).where(t.members.c.id == member_id)).mappings().one()
    return sessions.start(org.db, dict(member))


# --- a member's password reset ---------------------------------------------------------------------


def test_reset_gives_a_one_time_password_and_ends_the_members_sessions(api: Api, org: Org) -> None:
    ann = org.add_member(Role.ANNOTATOR)
    browser = _open_session(org, ann.id)
    response = api.post(f"{API}/members/{ann.id}/password-reset", auth=org.owner)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["member"]["id"] == ann.id and len(body["password"]) >= 12
    assert "password_hash" not in body["member"]
    assert _can_sign_in(org, ann.member["email"], body["password"])
    assert not _can_sign_in(org, ann.member["email"], ann.password or "")
    assert sessions.load(org.db, browser) is None  # signed out everywhere
    assert api.get(f"{API}/me", auth=ann).status_code == 200  # keys keep working


@pytest.mark.parametrize(
    ("actor", "target", "status"),
    [
        (Role.OWNER, Role.OWNER, 200),
        (Role.OWNER, Role.ADMIN, 200),
        (Role.ADMIN, Role.MANAGER, 200),
        (Role.ADMIN, Role.ADMIN, 403),
        (Role.ADMIN, Role.OWNER, 403),
        (Role.MANAGER, Role.ANNOTATOR, 403),
        (Role.ANNOTATOR, Role.ANNOTATOR, 403),
    ],
)
def test_who_may_reset_whose_password(api: Api, org: Org, actor: Role, target: Role, status: int) -> None:
    caller = org.actor(actor)
    member = org.add_member(target)
    before = snapshot(org.db, org.id)
    response = api.post(f"{API}/members/{member.id}/password-reset", auth=caller)
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        error = assert_error(response, 403, "forbidden")
        assert error["message"] == f"the {actor} role may not reset the password of a member who is {target}"
        assert snapshot(org.db, org.id) == before
        assert _can_sign_in(org, member.member["email"], member.password or "")


def test_another_organizations_member_is_not_found(api: Api, org: Org, other_org: Org) -> None:
    stranger = other_org.add_member(Role.ANNOTATOR)
    assert_error(api.post(f"{API}/members/{stranger.id}/password-reset", auth=org.owner), 404, "not_found")
    assert _can_sign_in(other_org, stranger.member["email"], stranger.password or "")


# --- one's own password ----------------------------------------------------------------------------


def test_change_own_password_with_a_key_ends_every_session(api: Api, org: Org) -> None:
    ann = org.add_member(Role.ANNOTATOR)
    browsers = [_open_session(org, ann.id) for _ in range(2)]
    owners_browser = _open_session(org, org.owner.id)
    body = {"current_password": ann.password, "new_password": NEW}
    response = api.post(f"{API}/me/password", auth=ann, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["sessions_ended"] == 2 and response.json()["member"]["id"] == ann.id
    assert [sessions.load(org.db, b) for b in browsers] == [None, None]
    assert sessions.load(org.db, owners_browser) is not None  # only the member's own
    assert _can_sign_in(org, ann.member["email"], NEW)
    assert not _can_sign_in(org, ann.member["email"], ann.password or "")


def test_change_own_password_from_the_browser_keeps_that_session(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    here, elsewhere = make_api(settings), make_api(settings)
    for browser in (here, elsewhere):
        assert sign_in(browser, org.owner.member["email"], org.owner.password or "").status_code == 303
    csrf = page_csrf(here)
    body = {"current_password": org.owner.password, "new_password": NEW}
    assert_error(here.post(f"{API}/me/password", json=body), 403, "csrf_failed")  # a cookie needs the token
    response = here.post(f"{API}/me/password", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    assert response.json()["sessions_ended"] == 1
    assert here.get(f"{API}/me").status_code == 200  # still signed in here
    assert_error(elsewhere.get(f"{API}/me"), 401, "unauthenticated")  # signed out there


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"current_password": "not it at all", "new_password": NEW}, "current_password", "is wrong"),
        ({"current_password": "CURRENT", "new_password": "short"}, "new_password", "at least 12"),
        ({"current_password": "CURRENT", "new_password": "CURRENT"}, "new_password", "the same"),
        ({"new_password": NEW}, "current_password", "Field required"),
    ],
)
def test_change_own_password_refusals_name_the_field(
    api: Api, org: Org, body: dict[str, str], field: str, message: str
) -> None:
    ann = org.add_member(Role.ANNOTATOR)
    body = {name: (ann.password if value == "CURRENT" else value) for name, value in body.items()}
    error = assert_error(api.post(f"{API}/me/password", auth=ann, json=body), 422, "invalid_input")
    assert error["details"]["field"] == field and message in error["message"], error
    assert _can_sign_in(org, ann.member["email"], ann.password or "")


# --- organizations ---------------------------------------------------------------------------------


def test_an_owner_founds_an_organization_and_owns_it(api: Api, org: Org) -> None:
    org.make_project(name="only in Acme")
    response = api.post(f"{API}/organizations", auth=org.owner, json={"name": "  Acme research "})
    assert response.status_code == 201, response.text
    body = response.json()
    new_id, key = body["organization"]["id"], body["api_key"]["key"]
    assert body["organization"]["name"] == "Acme research" and new_id != org.id
    assert body["member"]["email"] == org.owner.member["email"] and body["member"]["role"] == "owner"
    assert body["member"]["name"] == org.owner.member["name"] and "password_hash" not in body["member"]
    # the same password signs in to it; its key acts in it, the caller's stays in the caller's
    assert (
        accounts.login(org.db, new_id, org.owner.member["email"], org.owner.password or "")["id"]
        == body["member"]["id"]
    )
    assert api.get(f"{API}/me", auth=key).json()["organization_id"] == new_id
    assert api.get(f"{API}/me", auth=org.owner).json()["organization_id"] == org.id
    # nothing crosses over: no projects, no other members
    assert api.get(f"{API}/projects", auth=key).json()["items"] == []
    assert [m["id"] for m in api.get(f"{API}/members", auth=key).json()["items"]] == [body["member"]["id"]]
    assert_error(api.get(f"{API}/members/{org.owner.id}", auth=key), 404, "not_found")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR])
def test_only_owners_found_organizations(api: Api, org: Org, role: Role) -> None:
    before = len(accounts.organizations(org.db))
    error = assert_error(api.post(f"{API}/organizations", auth=org.actor(role), json={"name": "mine"}), 403)
    assert error["message"] == f"the {role} role may not create organization"
    assert len(accounts.organizations(org.db)) == before


@pytest.mark.parametrize(
    ("name", "message"), [("   ", "the name is blank"), ("", "at least 1"), ("x" * 201, "at most")]
)
def test_a_bad_organization_name_is_named(api: Api, org: Org, name: str, message: str) -> None:
    error = assert_error(api.post(f"{API}/organizations", auth=org.owner, json={"name": name}), 422, "invalid_input")
    assert error["details"]["field"] == "name" and message in error["message"], error


def test_a_matching_email_opens_no_other_organization(api: Api, org: Org) -> None:
    """Anyone may found an organization with a member of your email: it stays theirs."""
    email = org.owner.member["email"]
    planted = accounts.init_organization(org.db, "Look-alike", email)
    # signing in needs that membership's password: the owner's own does not open it
    with pytest.raises(Unauthenticated):
        sessions.check_password(
            org.db, email, org.owner.password or "", address="t", organization_id=planted["organization"]["id"]
        )
    outcome = sessions.check_password(org.db, email, org.owner.password or "", address="t")
    assert isinstance(outcome, dict) and outcome["organization_id"] == org.id
    # and the owner's key reaches nothing of it
    assert_error(api.get(f"{API}/members/{planted['member']['id']}", auth=org.owner), 404, "not_found")


# --- the CLI ---------------------------------------------------------------------------------------


def test_cli_creates_and_lists_organizations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUTHSET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRUTHSET_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(cli_app, ["init", "--org-name", "Acme", "--email", "owner@acme.test"]).exit_code == 0
    made = runner.invoke(cli_app, ["orgs", "create", "Beta", "--owner-email", "Boss@Beta.test", "--owner-name", "Boss"])
    assert made.exit_code == 0, made.output
    assert "Beta" in made.output and "boss@beta.test" in made.output and "ts_" in made.output
    listed = runner.invoke(cli_app, ["orgs", "list"])
    assert listed.exit_code == 0 and "Acme" in listed.output and "Beta" in listed.output
    bad = runner.invoke(cli_app, ["orgs", "create", "Gamma", "--owner-email", "not-an-email"])
    assert bad.exit_code == 2 and "--owner-email" in bad.output
    blank = runner.invoke(cli_app, ["orgs", "create", " ", "--owner-email", "a@b.test"])
    assert blank.exit_code == 2 and "blank" in blank.output
    assert "Gamma" not in runner.invoke(cli_app, ["orgs", "list"]).output


def test_sessions_count_helper_is_scoped(org: Org, other_org: Org) -> None:
    """A reset in one organization never touches another's sessions, even for the same email."""
    twin = other_org.add_member(Role.ANNOTATOR, email="twin@example.test")
    mine = org.add_member(Role.ANNOTATOR, email="twin@example.test")
    theirs = _open_session(other_org, twin.id)
    _open_session(org, mine.id)
    accounts.reset_password(org.db, org.owner.principal, mine.id)
    assert sessions.load(other_org.db, theirs) is not None
    with org.db.read() as conn:
        left = conn.execute(select(func.count()).select_from(t.sessions).where(t.sessions.c.member_id == mine.id))
        assert left.scalar_one() == 0

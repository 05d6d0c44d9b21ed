"""Members, API keys, account and organizations pages in a real browser against a real server.

The server is shared by the whole e2e session, so these tests act as an owner of their own (added
through the API with a known password) and leave the session's owner and annotator as they were.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from .support import ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD, Server, Tab, log_in
from .test_workbench import SCREENSHOTS

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _new_owner(server: Server) -> tuple[str, str]:
    email, password = f"olive-{uuid.uuid4().hex[:8]}@example.com", "olive-password-123"
    with server.api() as client:
        body = {"email": email, "name": "Olive Owner", "role": "owner", "password": password}
        client.post("/members", json=body).raise_for_status()
    return email, password


def _secret(page: Any, label: str = "One-time password") -> str:
    field = page.get_by_role("textbox", name=label, exact=True)
    expect(field).to_be_visible()
    expect(page.get_by_role("button", name="Copy")).to_be_visible()  # the module added it
    return str(field.input_value())


def test_an_owner_manages_members(tab: Tab, server: Server) -> None:
    page = tab.page
    email, password = _new_owner(server)
    log_in(page, email, password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members", level=1)).to_be_visible()
    _shot(page, "members")

    # a refused field shows the API's message next to it
    page.get_by_label("Email").fill("not an email")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#m-email-error")).to_have_text("email: not an email address (name@example.com)")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")

    newcomer = f"nina-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("Email").fill(newcomer)
    page.get_by_label("Name").fill("Nina New")
    page.get_by_label("Role", exact=True).select_option("annotator")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("heading", name=f"{newcomer} was added as annotator")).to_be_visible()
    first_password = _secret(page)
    assert len(first_password) >= 12
    _shot(page, "members-one-time-password")
    page.reload()
    expect(page.get_by_role("textbox", name="One-time password")).to_have_count(0)  # shown once
    row = page.locator(f'tr[data-email="{newcomer}"]')

    # change the role
    row.get_by_label(f"Role of {newcomer}", exact=True).select_option("reviewer")
    row.get_by_role("button", name=f"Change the role of {newcomer}").click()
    expect(page.get_by_role("heading", name=f"{newcomer} is now reviewer")).to_be_visible()
    expect(row.get_by_label(f"Role of {newcomer}", exact=True)).to_have_value("reviewer")

    # disable, after a confirmation
    row.get_by_role("link", name=f"Disable {newcomer}").click()
    expect(page.get_by_role("heading", name="Disable Nina New?")).to_be_visible()
    _shot(page, "members-confirm-disable")
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("heading", name=f"{newcomer} is disabled")).to_be_visible()
    expect(row.get_by_text("disabled", exact=True)).to_be_visible()
    row.get_by_role("button", name=f"Enable {newcomer}").click()
    expect(page.get_by_role("heading", name=f"{newcomer} is enabled")).to_be_visible()

    # reset the password, after a confirmation: a new one-time secret that signs in
    row.get_by_role("link", name=f"Reset the password of {newcomer}").click()
    page.get_by_role("button", name="Reset password").click()
    expect(page.get_by_role("heading", name=f"The password of {newcomer} was reset")).to_be_visible()
    reset_password = _secret(page)
    assert reset_password != first_password
    other = tab.context.browser.new_context(base_url=server.url)
    try:
        second = other.new_page()
        log_in(second, newcomer, reset_password)
        expect(second.get_by_role("heading", name="Projects")).to_be_visible()
    finally:
        other.close()
    assert tab.script_errors() == []


def test_an_owner_creates_and_revokes_a_key(tab: Tab, server: Server) -> None:
    page = tab.page
    email, password = _new_owner(server)
    log_in(page, email, password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("e2e pipeline")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="API key “e2e pipeline” created")).to_be_visible()
    key = _secret(page, "API key")
    assert key.startswith("ts_")
    _shot(page, "keys-created")
    assert httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    page.reload()
    expect(page.get_by_role("textbox", name="API key")).to_have_count(0)  # gone after a reload
    assert key not in page.content()
    row = page.locator("tr", has_text="e2e pipeline")
    expect(row.get_by_text(key[:10] + "…")).to_be_visible()
    row.get_by_role("link", name=re.compile("Revoke the key e2e pipeline")).click()
    expect(page.get_by_role("heading", name="Revoke the key “e2e pipeline”?")).to_be_visible()
    _shot(page, "keys-confirm-revoke")
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("heading", name=re.compile("is revoked"))).to_be_visible()
    expect(row.get_by_text("revoked", exact=True)).to_be_visible()
    _shot(page, "keys")
    assert httpx.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert tab.script_errors() == []


def test_an_owner_changes_the_password_then_founds_and_switches_organizations(tab: Tab, server: Server) -> None:
    page = tab.page
    email, password = _new_owner(server)
    log_in(page, email, password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill("olive-new-password-456")
    page.get_by_label("New password, again").fill("olive-new-password-456")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_have_text("current_password: the current password is wrong")
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password", exact=True).fill("olive-new-password-456")
    page.get_by_label("New password, again").fill("olive-new-password-456")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name=re.compile("Your password is changed"))).to_be_visible()
    _shot(page, "account")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile("/login"))
    log_in(page, email, "olive-new-password-456")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Organizations").click()
    name = f"Second org {uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create organization").click()
    expect(
        page.get_by_role("heading", name=f"You founded {name} and switched to it: you are its owner.")
    ).to_be_visible()
    current = page.locator("li.org.current")
    expect(current).to_contain_text(name)
    _shot(page, "organizations")
    page.goto("/")
    expect(page.get_by_text("No projects yet.")).to_be_visible()  # nothing crosses organizations
    page.goto("/organizations")
    page.get_by_role("button", name="Switch to E2E organization").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.locator(".project").first).to_be_visible()
    page.goto("/organizations")
    expect(page.locator("li.org.current")).to_contain_text("E2E organization")
    expect(page.get_by_role("button", name=f"Switch to {name}")).to_be_visible()
    assert tab.script_errors() == []


def test_an_annotator_sees_no_members_page(tab: Tab, server: Server) -> None:
    page = tab.page
    log_in(page, ANNOTATOR_EMAIL, ANNOTATOR_PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Members")).to_have_count(0)
    expect(nav.get_by_role("link", name="Account")).to_be_visible()  # everyone has these
    response = page.goto("/members")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    _shot(page, "members-403-annotator")
    with server.api() as client:
        owner_id = client.get("/me").json()["member"]["id"]
    for path in (f"/members/{owner_id}/disable", f"/members/{owner_id}/password-reset", f"/keys?member={owner_id}"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
    page.goto("/organizations")
    expect(page.get_by_role("heading", name="Sign in to another organization")).to_be_visible()
    expect(page.get_by_role("heading", name="Create an organization")).to_have_count(0)
    page.goto("/keys")
    expect(page.get_by_text(server.owner_email)).to_have_count(0)  # only the annotator's own keys
    assert tab.script_errors() == []

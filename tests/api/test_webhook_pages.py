"""The webhook pages, in-process (tests/e2e/test_webhook_pages.py drives a browser): create with the
secret shown once, a new secret (shown once, signing what follows), disable, delete after a
confirmation, deliveries and their attempts, replay; the role checked server-side, CSRF on every
form, another organization's webhooks answer 404."""

from __future__ import annotations

import re
from collections.abc import Callable

from receiver import running
from truthset.config import Settings
from truthset.domain import Role
from truthset.jobs import Runner
from truthset.schemas import WebhookCreate
from truthset.services import webhooks
from truthset.storage import tables as t

from .helpers import Actor, Api, Org
from .test_account_pages import _browser, _csrf

ALLOW = {"outbound_allow": "127.0.0.1"}


def _settings(settings: Settings) -> Settings:
    return settings.model_copy(update=ALLOW)


def _emit(org: Org, project_id: str) -> None:
    with org.db.write() as conn:
        webhooks.emit(conn, org.id, project_id, "export.ready", {"export": {"job_id": "j"}})


def test_an_owner_adds_disables_replays_and_deletes(make_api: Callable[..., Api], settings: Settings, org: Org) -> None:
    settings = _settings(settings)
    project = org.make_project()
    browser = _browser(make_api, settings, org.owner)
    csrf = _csrf(browser, "/webhooks")
    with running() as receiver:
        # a bad field is named next to it; a refused address gives the guard's rule
        blank = browser.post("/webhooks", data={"csrf_token": csrf, "url": receiver.url})
        assert blank.status_code == 422 and 'id="w-events-error"' in blank.text
        refused = browser.post(
            "/webhooks", data={"csrf_token": csrf, "url": "http://10.0.0.1/x", "events": "export.ready"}
        )
        assert refused.status_code == 422 and 'id="w-url-error"' in refused.text
        made = browser.post(
            "/webhooks",
            data={"csrf_token": csrf, "url": receiver.url, "events": "export.ready", "project_id": project["id"]},
        )
        assert made.status_code == 303 and made.headers["location"] == f"/webhooks?project_id={project['id']}"
        listing = browser.get(made.headers["location"]).text
        secret = re.search(r'id="one-time-secret"[^>]*value="([^"]+)"', listing)
        assert secret is not None and secret.group(1) not in browser.get(made.headers["location"]).text
        (hook,) = webhooks.list_webhooks(org.db, org.owner.principal)[0]
        assert hook["project_id"] == project["id"] and hook["events"] == ["export.ready"]

        _emit(org, project["id"])
        Runner(org.db, kinds=["webhook.deliver"], settings=settings).run_until_idle()
        assert len(receiver.requests) == 1
        page = browser.get(f"/webhooks/{hook['id']}")
        assert page.status_code == 200 and "delivered" in page.text
        delivery_id = re.search(r'data-delivery-id="([0-9a-f]{24})"', page.text).group(1)  # type: ignore[union-attr]
        detail = browser.get(f"/webhooks/deliveries/{delivery_id}")
        assert detail.status_code == 200 and "<code>200</code>" in detail.text and "export.ready" in detail.text

        replayed = browser.post(f"/webhooks/deliveries/{delivery_id}/replay", data={"csrf_token": csrf})
        assert replayed.status_code == 303
        Runner(org.db, kinds=["webhook.deliver"], settings=settings).run_until_idle()
        assert len(receiver.requests) == 2
        assert receiver.requests[1].headers["x-truthset-delivery"] == delivery_id
        assert browser.get(f"/webhooks/deliveries/{delivery_id}").text.count("<code>200</code>") == 2

        # a new signing secret: asked for, shown once, and the next delivery is signed with it
        confirm = browser.get(f"/webhooks/{hook['id']}/rotate")
        assert confirm.status_code == 200 and "new signing secret" in confirm.text
        rotated = browser.post(f"/webhooks/{hook['id']}/rotate", data={"csrf_token": csrf})
        assert rotated.status_code == 303
        shown = re.search(r'id="one-time-secret"[^>]*value="([^"]+)"', browser.get(rotated.headers["location"]).text)
        assert shown is not None and shown.group(1) != secret.group(1)
        _emit(org, project["id"])
        Runner(org.db, kinds=["webhook.deliver"], settings=settings).run_until_idle()
        signed = receiver.requests[-1]
        stamp = signed.headers["x-truthset-timestamp"]
        assert signed.headers["x-truthset-signature"] == webhooks.sign(shown.group(1), stamp, signed.body)

    off = browser.post(f"/webhooks/{hook['id']}/active", data={"csrf_token": csrf, "active": "0"})
    assert off.status_code == 303 and webhooks.get_webhook(org.db, org.owner.principal, hook["id"])["active"] is False
    confirm = browser.get(f"/webhooks/{hook['id']}/delete")
    assert confirm.status_code == 200 and "Delete this webhook?" in confirm.text
    assert webhooks.list_webhooks(org.db, org.owner.principal)[0]  # asking changes nothing
    assert browser.post(f"/webhooks/{hook['id']}/delete", data={"csrf_token": csrf}).status_code == 303
    assert webhooks.list_webhooks(org.db, org.owner.principal)[0] == []
    with org.db.read() as conn:
        assert conn.execute(t.webhook_deliveries.select()).all() == []


def _hook(org: Org, settings: Settings, actor: Actor | None = None) -> dict:
    data = WebhookCreate(url="http://127.0.0.1:9/hook", events=["export.ready"])
    return webhooks.create_webhook(org.db, _settings(settings), (actor or org.owner).principal, data)


def test_roles_below_manager_get_403_and_forms_need_the_token(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    hook = _hook(org, settings)
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        browser = _browser(make_api, _settings(settings), org.actor(role))
        csrf = _csrf(browser)
        hook_pages = (f"/webhooks/{hook['id']}", f"/webhooks/{hook['id']}/delete", f"/webhooks/{hook['id']}/rotate")
        for path in ("/webhooks", *hook_pages):
            assert browser.get(path).status_code == 403, (role, path)
        assert browser.post(f"/webhooks/{hook['id']}/delete", data={"csrf_token": csrf}).status_code == 403
        assert browser.post(f"/webhooks/{hook['id']}/rotate", data={"csrf_token": csrf}).status_code == 403
        made = browser.post(
            "/webhooks", data={"csrf_token": csrf, "url": "http://127.0.0.1:9/", "events": "export.ready"}
        )
        assert made.status_code == 403
    owner = _browser(make_api, _settings(settings), org.owner)
    for path in ("/webhooks", *(f"/webhooks/{hook['id']}/{action}" for action in ("active", "delete", "rotate"))):
        forged = owner.post(path, data={"csrf_token": "forged", "url": "http://127.0.0.1:9/", "events": "export.ready"})
        assert forged.status_code == 403 and "The form expired" in forged.text, path
    assert len(webhooks.list_webhooks(org.db, org.owner.principal)[0]) == 1


def test_other_organizations_webhooks_and_deliveries_are_not_found(
    make_api: Callable[..., Api], settings: Settings, org: Org, other_org: Org
) -> None:
    theirs = _hook(other_org, settings)
    project = other_org.make_project(name="globex-secret")
    _emit(other_org, project["id"])
    (delivery,) = webhooks.list_deliveries(other_org.db, other_org.owner.principal, theirs["id"])[0]
    browser = _browser(make_api, _settings(settings), org.owner)
    csrf = _csrf(browser)
    for path in (
        f"/webhooks/{theirs['id']}",
        f"/webhooks/{theirs['id']}/delete",
        f"/webhooks/{theirs['id']}/rotate",
        f"/webhooks/deliveries/{delivery['id']}",
    ):
        response = browser.get(path)
        assert response.status_code == 404 and theirs["url"] not in response.text, path
    for path in (
        f"/webhooks/{theirs['id']}/delete",
        f"/webhooks/{theirs['id']}/active",
        f"/webhooks/{theirs['id']}/rotate",
        f"/webhooks/deliveries/{delivery['id']}/replay",
    ):
        assert browser.post(path, data={"csrf_token": csrf, "active": "0"}).status_code == 404, path
    assert browser.get(f"/webhooks?project_id={project['id']}").status_code == 404
    assert theirs["url"] not in browser.get("/webhooks").text
    assert webhooks.get_webhook(other_org.db, other_org.owner.principal, theirs["id"])["active"] is True


def test_the_list_and_the_deliveries_paginate(make_api: Callable[..., Api], settings: Settings, org: Org) -> None:
    project = org.make_project()
    hooks = [_hook(org, settings) for _ in range(52)]
    browser = _browser(make_api, _settings(settings), org.owner)
    first = browser.get("/webhooks").text
    assert first.count("data-webhook-id=") == 50 and 'rel="next"' in first
    cursor = re.search(r'href="/webhooks\?cursor=([0-9a-f]{24})" rel="next"', first).group(1)  # type: ignore[union-attr]
    assert browser.get(f"/webhooks?cursor={cursor}").text.count("data-webhook-id=") == 2
    for _ in range(51):
        _emit(org, project["id"])
    page = browser.get(f"/webhooks/{hooks[0]['id']}").text
    assert page.count("data-delivery-id=") == 50
    older = re.search(r'\?cursor=([0-9a-f]{24})" rel="next"', page).group(1)  # type: ignore[union-attr]
    assert browser.get(f"/webhooks/{hooks[0]['id']}?cursor={older}").text.count("data-delivery-id=") == 1
    assert browser.get("/webhooks?cursor=nope").status_code == 400

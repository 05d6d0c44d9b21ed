"""The webhook pages: subscriptions of the organization or of one project, their deliveries, every
attempt of a delivery, and replay.

Plain HTML forms posted with the session's CSRF token, like the account pages (whose helpers they
share: ``_posted``, ``_render``, ``_redirect``, ``_confirm``). Each route calls the same service as
the REST API (``services/webhooks.py``), so the permission check is the API's
(``Action.MANAGE_WEBHOOKS``), tenant isolation is the service's (another organization's webhook
or delivery is a 404, like a missing one), and the network guard judges a URL here exactly as it
does there. The signing secret is shown once, after creation, through the one-time flash message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from truthset.api import session
from truthset.domain import WebhookEvent
from truthset.errors import Conflict, InvalidInput, NotFound, TruthsetError
from truthset.schemas import WebhookCreate, WebhookUpdate
from truthset.services import projects, webhooks
from truthset.services.policy import Action, require
from truthset.ui._account_pages import (
    Errors,
    _confirm,
    _cursor,
    _field_error,
    _posted,
    _redirect,
    _render,
    _status,
    _validation_errors,
)
from truthset.ui._guard import _db, _failure, guard

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
EVENTS = [str(event) for event in WebhookEvent]


def _settings(request: Request) -> Any:
    return request.app.state.settings


def _list_target(project_id: str | None) -> str:
    return f"/webhooks?{urlencode({'project_id': project_id})}" if project_id else "/webhooks"


def _project_or_none(request: Request, info: session.SessionInfo, project_id: str | None) -> dict[str, Any] | None:
    """The project a page is scoped to (a 404 for another organization's, as in the API)."""
    if not project_id:
        return None
    return projects.get_project(_db(request), info.principal, project_id)


def _webhooks_page(
    request: Request,
    info: session.SessionInfo,
    *,
    project_id: str | None = None,
    cursor: str | None = None,
    status_code: int = 200,
    errors: Errors | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    require(info.principal, Action.MANAGE_WEBHOOKS)
    project = _project_or_none(request, info, project_id)
    rows, next_cursor = webhooks.list_webhooks(
        _db(request), info.principal, project_id=project_id, cursor=cursor, limit=PAGE_SIZE
    )
    return _render(
        request,
        "webhooks.html",
        status_code=status_code,
        project=project,
        webhooks=rows,
        cursor=cursor,
        next_cursor=next_cursor,
        events=EVENTS,
        errors=errors or {},
        values=values or {"events": [str(WebhookEvent.TASK_COMPLETED)]},
        list_target=_list_target(project_id),
    )


@router.get("/webhooks")
def webhook_list(request: Request, project_id: str | None = None, cursor: str | None = None) -> Response:
    """The organization's webhooks (or one project's, with ``project_id``) and a form to add one."""
    guarded = guard(request)
    if isinstance(guarded, Response):
        return guarded
    try:
        return _webhooks_page(request, guarded.info, project_id=project_id or None, cursor=_cursor(cursor))
    except TruthsetError as exc:
        return _failure(request, exc)


@router.post("/webhooks")
async def create(request: Request) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    form_data = await request.form()
    chosen = [str(value) for value in form_data.getlist("events")]
    project_id = form.get("project_id") or None
    values = {"url": form.get("url", "").strip(), "description": form.get("description", "").strip()}
    values["events"] = chosen
    try:
        require(info.principal, Action.MANAGE_WEBHOOKS)
        again = {"project_id": project_id, "values": values, "status_code": 422}
        try:
            data = WebhookCreate.model_validate(
                {"url": values["url"], "events": chosen, "project_id": project_id, "description": values["description"]}
            )
        except ValidationError as exc:
            return _webhooks_page(request, info, errors=_validation_errors(exc), **again)
        try:
            created = webhooks.create_webhook(_db(request), _settings(request), info.principal, data)
        except (InvalidInput, NotFound) as exc:  # the network guard refused the URL, or no such project
            again["status_code"] = _status(exc)
            return _webhooks_page(request, info, errors=_field_error(exc, "url"), **again)
    except TruthsetError as exc:
        return _failure(request, exc)
    flash = {
        "title": f"Webhook to {created['url']} created",
        "label": "Signing secret",
        "secret": created["secret"],
        "hint": "Copy it now: it is shown only once. Receivers check each delivery's signature with it "
        "(see the webhooks guide).",
    }
    return _redirect(request, _list_target(project_id), flash)


def _webhook_for(request: Request, webhook_id: str) -> tuple[session.SessionInfo, dict[str, Any]] | Response:
    guarded = guard(request)
    if isinstance(guarded, Response):
        return guarded
    try:
        return guarded.info, webhooks.get_webhook(_db(request), guarded.principal, webhook_id)
    except TruthsetError as exc:
        return _failure(request, exc)


@router.post("/webhooks/{webhook_id}/active")
async def set_active(request: Request, webhook_id: str) -> Response:
    """Enable or disable a webhook (``active`` = ``1`` or ``0``): a disabled one gets no new deliveries."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    active = form.get("active") == "1"
    try:
        row = webhooks.update_webhook(
            _db(request), _settings(request), info.principal, webhook_id, WebhookUpdate(active=active)
        )
    except TruthsetError as exc:
        return _failure(request, exc)
    done = "enabled" if active else "disabled: it gets no new deliveries"
    back = form.get("back", "")
    target = f"/webhooks/{webhook_id}" if back == "detail" else _list_target(row["project_id"])
    return _redirect(request, target, {"title": f"The webhook to {row['url']} is {done}"})


def _confirm_webhook(
    request: Request, webhook_id: str, action: str, *, title: str, message: str, button: str, back_to_list: bool
) -> Response:
    """The confirmation page of ``action`` on a webhook; ``message`` names the webhook as ``{url}``."""
    found = _webhook_for(request, webhook_id)
    if isinstance(found, Response):
        return found
    _, row = found
    return _confirm(
        request,
        title=title,
        message=message.format(url=row["url"]),
        action=f"/webhooks/{webhook_id}/{action}",
        button=button,
        cancel=_list_target(row["project_id"]) if back_to_list else f"/webhooks/{webhook_id}",
    )


@router.get("/webhooks/{webhook_id}/rotate")
def rotate_confirm(request: Request, webhook_id: str) -> Response:
    return _confirm_webhook(
        request,
        webhook_id,
        "rotate",
        title="Give this webhook a new signing secret?",
        message="Every delivery to {url} from now on, retries included, is signed with the new secret, shown "
        "once on the next page; the old one stops at once, so update the receiver right after.",
        button="New secret",
        back_to_list=True,
    )


@router.post("/webhooks/{webhook_id}/rotate")
async def rotate(request: Request, webhook_id: str) -> Response:
    """A new signing secret (the API's rotate-secret), shown once through the flash message."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, _ = posted
    try:
        row = webhooks.rotate_secret(_db(request), _settings(request), info.principal, webhook_id)
    except TruthsetError as exc:
        return _failure(request, exc)
    flash = {
        "title": f"New signing secret for the webhook to {row['url']}",
        "label": "Signing secret",
        "secret": row["secret"],
        "hint": "Copy it now: it is shown only once. The old secret signs nothing from now on.",
    }
    return _redirect(request, _list_target(row["project_id"]), flash)


@router.get("/webhooks/{webhook_id}/delete")
def delete_confirm(request: Request, webhook_id: str) -> Response:
    return _confirm_webhook(
        request,
        webhook_id,
        "delete",
        title="Delete this webhook?",
        message="The webhook to {url} is deleted with its deliveries and every attempt they logged; deliveries "
        "still waiting are not sent. This cannot be undone (disable it instead to keep its history).",
        button="Delete webhook",
        back_to_list=False,
    )


@router.post("/webhooks/{webhook_id}/delete")
async def delete(request: Request, webhook_id: str) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, _ = posted
    try:
        row = webhooks.get_webhook(_db(request), info.principal, webhook_id)
        webhooks.delete_webhook(_db(request), info.principal, webhook_id)
    except TruthsetError as exc:
        return _failure(request, exc)
    return _redirect(request, _list_target(row["project_id"]), {"title": f"The webhook to {row['url']} is deleted"})


@router.get("/webhooks/{webhook_id}")
def deliveries(request: Request, webhook_id: str, cursor: str | None = None) -> Response:
    """One webhook and its deliveries, newest first, a page at a time."""
    found = _webhook_for(request, webhook_id)
    if isinstance(found, Response):
        return found
    info, row = found
    try:
        page_cursor = _cursor(cursor)
        rows, next_cursor = webhooks.list_deliveries(
            _db(request), info.principal, webhook_id, cursor=page_cursor, limit=PAGE_SIZE
        )
        project = _project_or_none(request, info, row["project_id"])
    except TruthsetError as exc:
        return _failure(request, exc)
    return _render(
        request,
        "webhooks_deliveries.html",
        webhook=row,
        project=project,
        deliveries=rows,
        cursor=page_cursor,
        next_cursor=next_cursor,
    )


@router.get("/webhooks/deliveries/{delivery_id}")
def delivery(request: Request, delivery_id: str) -> Response:
    """One delivery: its body's data and every attempt (time, status code, error, duration)."""
    guarded = guard(request)
    if isinstance(guarded, Response):
        return guarded
    try:
        row = webhooks.get_delivery(_db(request), guarded.principal, delivery_id)
        hook = webhooks.get_webhook(_db(request), guarded.principal, row["webhook_id"])
    except TruthsetError as exc:
        return _failure(request, exc)
    return _render(request, "webhooks_delivery.html", delivery=row, webhook=hook)


@router.post("/webhooks/deliveries/{delivery_id}/replay")
async def replay(request: Request, delivery_id: str) -> Response:
    """Send a delivered or failed delivery again (same id and body, new signature), as the API's replay."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, _ = posted
    try:
        try:
            row = webhooks.replay(_db(request), info.principal, delivery_id)
        except Conflict as exc:  # still pending: its retries are under way
            return _redirect(request, f"/webhooks/deliveries/{delivery_id}", {"title": exc.message})
    except TruthsetError as exc:
        return _failure(request, exc)
    title = "The delivery is queued again: it is sent with a new signature and retried as a new delivery would be"
    return _redirect(request, f"/webhooks/{row['webhook_id']}", {"title": title})

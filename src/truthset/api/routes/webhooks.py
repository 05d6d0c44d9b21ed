"""Webhooks: subscriptions to events, their signed deliveries, every attempt, and replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from truthset.api.deps import DB, AppSettings, Caller, Cursor, PageLimit
from truthset.domain import DeliveryStatus, WebhookEvent
from truthset.schemas import (
    Page,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryDetail,
    WebhookDeliveryOut,
    WebhookOut,
    WebhookUpdate,
)
from truthset.services import webhooks

router = APIRouter(tags=["webhooks"])


@router.post(
    "/webhooks", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED, operation_id="create_webhook"
)
def create_webhook(db: DB, settings: AppSettings, caller: Caller, body: WebhookCreate) -> dict:
    """Subscribe a URL to events, for every project or one (`project_id`). Managers and above.

    The answer holds the signing `secret`, shown this once. The URL must pass the network guard
    (a loopback, private or link-local address is a 422 `url_refused` naming the rule).
    """
    return webhooks.create_webhook(db, settings, caller, body)


@router.get("/webhooks", response_model=Page[WebhookOut], operation_id="list_webhooks")
def list_webhooks(
    db: DB,
    caller: Caller,
    limit: PageLimit,
    cursor: Cursor = None,
    project_id: Annotated[str | None, Query(description="Only this project's webhooks.")] = None,
) -> dict:
    """The organization's webhooks, oldest first (never their secrets)."""
    items, next_cursor = webhooks.list_webhooks(db, caller, project_id=project_id, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, operation_id="get_webhook")
def get_webhook(db: DB, caller: Caller, webhook_id: str) -> dict:
    """One webhook (without its secret)."""
    return webhooks.get_webhook(db, caller, webhook_id)


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut, operation_id="update_webhook")
def update_webhook(db: DB, settings: AppSettings, caller: Caller, webhook_id: str, body: WebhookUpdate) -> dict:
    """Change the URL (checked by the network guard again), the events, the description, or `active`."""
    return webhooks.update_webhook(db, settings, caller, webhook_id, body)


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_webhook")
def delete_webhook(db: DB, caller: Caller, webhook_id: str) -> Response:
    """Delete the webhook with its deliveries and their attempts; deliveries still queued are not sent."""
    webhooks.delete_webhook(db, caller, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret", response_model=WebhookCreated, operation_id="rotate_webhook_secret"
)
def rotate_webhook_secret(db: DB, settings: AppSettings, caller: Caller, webhook_id: str) -> dict:
    """A new signing secret, shown this once; every attempt from now on is signed with it (the old one stops)."""
    return webhooks.rotate_secret(db, settings, caller, webhook_id)


@router.get(
    "/webhooks/{webhook_id}/deliveries", response_model=Page[WebhookDeliveryOut], operation_id="list_webhook_deliveries"
)
def list_webhook_deliveries(
    db: DB,
    caller: Caller,
    webhook_id: str,
    limit: PageLimit,
    cursor: Cursor = None,
    status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this status.")] = None,
    event: Annotated[WebhookEvent | None, Query(description="Only deliveries of this event.")] = None,
) -> dict:
    """The webhook's deliveries, newest first: status, attempts, last status code and error."""
    items, next_cursor = webhooks.list_deliveries(
        db, caller, webhook_id, status=status, event=event, cursor=cursor, limit=limit
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/webhook-deliveries/{delivery_id}", response_model=WebhookDeliveryDetail, operation_id="get_webhook_delivery"
)
def get_webhook_delivery(db: DB, caller: Caller, delivery_id: str) -> dict:
    """One delivery with every attempt (status code, error, duration, time), oldest first."""
    return webhooks.get_delivery(db, caller, delivery_id)


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    response_model=WebhookDeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="replay_webhook_delivery",
)
def replay_webhook_delivery(db: DB, caller: Caller, delivery_id: str) -> dict:
    """Send a delivered or failed delivery again (same id and body, new signature), retried for a new window.

    A delivery still pending is a 409 `delivery_pending`: its retries are under way.
    """
    return webhooks.replay(db, caller, delivery_id)

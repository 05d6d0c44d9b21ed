"""Who am I, members, passwords, API keys, workers, organizations."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from truthset.api import session
from truthset.api.deps import DB, Caller, Cursor, PageLimit
from truthset.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    Me,
    MemberCreate,
    MemberOut,
    MemberUpdate,
    OrganizationCreate,
    OrganizationCreated,
    Page,
    PasswordChange,
    PasswordChanged,
    PasswordReset,
    WorkerOut,
)
from truthset.services import accounts

router = APIRouter(tags=["accounts"])


class MemberCreated(MemberOut):
    password: str | None = None


@router.get("/me", response_model=Me, operation_id="get_me")
def get_me(db: DB, caller: Caller) -> dict:
    return accounts.me(db, caller)


@router.get("/members", response_model=Page[MemberOut], operation_id="list_members")
def list_members(db: DB, caller: Caller, limit: PageLimit, cursor: Cursor = None) -> dict:
    items, next_cursor = accounts.list_members(db, caller, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/members", response_model=MemberCreated, status_code=status.HTTP_201_CREATED, operation_id="add_member")
def add_member(db: DB, caller: Caller, body: MemberCreate) -> dict:
    """Add a member. Unless a password is given, a one-time password is returned (and never again)."""
    created = accounts.add_member(db, caller, body)
    return {**created["member"], "password": created["password"]}


@router.get("/members/{member_id}", response_model=MemberOut, operation_id="get_member")
def get_member(db: DB, caller: Caller, member_id: str) -> dict:
    return accounts.get_member(db, caller, member_id)


@router.patch("/members/{member_id}", response_model=MemberOut, operation_id="update_member")
def update_member(db: DB, caller: Caller, member_id: str, body: MemberUpdate) -> dict:
    return accounts.update_member(db, caller, member_id, body)


@router.post("/members/{member_id}/password-reset", response_model=PasswordReset, operation_id="reset_member_password")
def reset_member_password(db: DB, caller: Caller, member_id: str) -> dict:
    """Give a member a new one-time password (in this response only) and sign them out of every
    browser. Owners reset anyone's, admins those below admin. Their API keys keep working."""
    return accounts.reset_password(db, caller, member_id)


@router.post("/me/password", response_model=PasswordChanged, operation_id="change_my_password")
def change_my_password(db: DB, caller: Caller, body: PasswordChange, request: Request) -> dict:
    """Change your own password (the current one is required). Your other browser sessions end; the
    session making this call (the web UI's) stays signed in. API keys are untouched."""
    current = session.session_from_request(request) if caller.api_key_id is None else None
    keep = current.session_id if current is not None else None
    return accounts.change_password(db, caller, body.current_password, body.new_password, keep_session=keep)


@router.post(
    "/organizations",
    response_model=OrganizationCreated,
    status_code=status.HTTP_201_CREATED,
    operation_id="create_organization",
)
def create_organization(db: DB, caller: Caller, body: OrganizationCreate) -> dict:
    """Found another organization (owners only). You become its owner: a member of it with your email,
    name and password. The response carries an API key for it, shown once (your keys stay in yours)."""
    return accounts.create_organization(db, caller, body)


@router.get("/keys", response_model=Page[ApiKeyOut], operation_id="list_keys")
def list_keys(db: DB, caller: Caller, limit: PageLimit, cursor: Cursor = None) -> dict:
    """Your keys; owners and admins see every key of the organization."""
    items, next_cursor = accounts.list_keys(db, caller, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED, operation_id="create_key")
def create_key(db: DB, caller: Caller, body: ApiKeyCreate) -> dict:
    """Create an API key. The secret is in this response only; it is stored hashed."""
    return accounts.create_key(db, caller, body)


@router.delete("/keys/{key_id}", response_model=ApiKeyOut, operation_id="revoke_key")
def revoke_key(db: DB, caller: Caller, key_id: str) -> dict:
    return accounts.revoke_key(db, caller, key_id)


@router.get("/workers", response_model=Page[WorkerOut], operation_id="list_workers")
def list_workers(db: DB, caller: Caller, limit: PageLimit, cursor: Cursor = None) -> dict:
    items, next_cursor = accounts.list_workers(db, caller, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}

"""The pages for people and access: members, API keys, one's own account, organizations.

Plain HTML forms that post to these routes with the session's CSRF token (they work without
scripts; ``static/secret.js`` only adds a copy button). Each route calls the same services as the
REST API, so the permission checks are the API's (``services/policy.py``), and every refusal shows
the API's message next to the field it names. After a change the browser is redirected (no form is
sent twice on reload); a one-time secret rides that redirect in a short-lived cookie bound to the
session (see :func:`_flash`), so it shows once and is gone on the next load.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from truthset.api import session
from truthset.api.errors import status_of
from truthset.domain import Role
from truthset.errors import Conflict, Forbidden, InvalidInput, TruthsetError, Unauthenticated
from truthset.schemas import ApiKeyCreate, MemberCreate, MemberUpdate, OrganizationCreate, PasswordChange
from truthset.services import accounts, sessions
from truthset.services.policy import REACH, Action, MemberAction, allowed, may_act_on, require
from truthset.ui import _held
from truthset.ui._guard import Guarded, _db, _error_page, _failure, guard
from truthset.ui._render import page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
FLASH_COOKIE = "truthset_flash"
_CURSOR = re.compile(r"^[0-9a-f]{24}$")
_ROLE_ORDER = [Role.OWNER, Role.ADMIN, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR]

Errors = dict[str, str]


# --- helpers ---------------------------------------------------------------------------------------


def _cursor(value: str | None) -> str | None:
    """A page cursor from the query string; a malformed one is bad input, like in the API."""
    if value and not _CURSOR.match(value):
        raise InvalidInput("cursor: not a page cursor", details={"field": "cursor"})
    return value or None


async def _posted(request: Request) -> tuple[session.SessionInfo, dict[str, str]] | Response:
    """The session and the submitted form, or the response to send instead (sign in; expired form)."""
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info = guarded.info
    form = await request.form()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    if not session.csrf_ok(request, info, fields.get(session.CSRF_FIELD)):
        return _error_page(request, 403, "Not allowed", "The form expired: reload the page and try again.")
    return info, fields


def _validation_errors(exc: ValidationError) -> Errors:
    """Pydantic's errors by field, with the messages the API gives (an email pattern reads plainly)."""
    errors: Errors = {}
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "form"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and field == "email":
            message = "not an email address (name@example.com)"
        errors.setdefault(field, message)
    return errors


def _field_error(exc: TruthsetError, default: str = "form") -> Errors:
    field = exc.details.get("field", default) if isinstance(exc.details, dict) else default
    return {field: exc.message}


def _status(exc: TruthsetError) -> int:
    return status_of(exc)  # the API's status for the same refusal


def _redirect(
    request: Request, target: str, flash: dict[str, Any] | None = None, *, token: str | None = None
) -> Response:
    response = RedirectResponse(target, status_code=303)
    if flash is not None:
        _flash(response, request, target, flash, token or request.cookies.get(session.COOKIE, ""))
    return response


def _flash(response: Response, request: Request, path: str, message: dict[str, Any], token: str) -> None:
    """A message for the next page only (a one-time secret after a redirect).

    Signed with the session's CSRF key, so only this session's page shows it (a planted cookie is
    ignored); HttpOnly, SameSite=Strict, sent only to the page it is for, and deleted by that page.
    """
    payload = base64.urlsafe_b64encode(orjson.dumps(message)).decode()
    signature = hmac.new(session.csrf_for(token).encode(), payload.encode(), hashlib.sha256).hexdigest()
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{signature}",
        max_age=120,
        path=path.split("?")[0],
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _take_flash(request: Request, info: session.SessionInfo) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return None
    payload, signature = raw.rsplit(".", 1)
    expected = hmac.new(info.csrf_token.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    try:
        message = orjson.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return message if isinstance(message, dict) else None


def _render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Response:
    """A page of this module: shows (and consumes) the flash message, never cached (secrets)."""
    info = session.session_from_request(request)
    flash = _take_flash(request, info) if info is not None else None
    response = page(request, template, status_code=status_code, flash=flash, **context)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=request.url.path, httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return response


def _confirm(request: Request, *, title: str, message: str, action: str, button: str, cancel: str) -> Response:
    return _render(request, "confirm.html", title=title, message=message, action=action, button=button, cancel=cancel)


# --- members ---------------------------------------------------------------------------------------


def _assignable(info: session.SessionInfo) -> list[Role]:
    return [role for role in _ROLE_ORDER if role in REACH[info.principal.role]]


def _member_row(info: session.SessionInfo, member: dict[str, Any]) -> dict[str, Any]:
    """A member with the actions the caller may take on them (the buttons shown)."""
    principal, role, member_id = info.principal, Role(member["role"]), member["id"]
    return {
        **member,
        "is_me": member_id == principal.member_id,
        "may_change_role": member_id != principal.member_id
        and may_act_on(principal, MemberAction.CHANGE_ROLE, member_id, [role]),
        "may_disable": member_id != principal.member_id
        and may_act_on(principal, MemberAction.DISABLE_MEMBER, member_id, [role]),
        "may_reset": member_id != principal.member_id
        and may_act_on(principal, MemberAction.RESET_PASSWORD, member_id, [role]),
        "may_key": may_act_on(principal, MemberAction.CREATE_KEY, member_id, [role]),
    }


def _members_page(
    request: Request,
    info: session.SessionInfo,
    *,
    cursor: str | None = None,
    status_code: int = 200,
    errors: Errors | None = None,
    values: dict[str, str] | None = None,
    row_errors: dict[str, str] | None = None,
) -> Response:
    rows, next_cursor = accounts.list_members(_db(request), info.principal, cursor=cursor, limit=PAGE_SIZE)
    assignable = _assignable(info)
    return _render(
        request,
        "members.html",
        status_code=status_code,
        organization=accounts.get_organization(_db(request), info.principal.organization_id),
        members=[_member_row(info, m) for m in rows],
        cursor=cursor,
        next_cursor=next_cursor,
        assignable=assignable,
        may_add=bool(assignable),
        errors=errors or {},
        values=values or {"role": str(Role.ANNOTATOR)},
        row_errors=row_errors or {},
    )


@router.get("/members")
def members(request: Request, cursor: str | None = None) -> Response:
    """The organization's members (managers and up read it; owners and admins change it)."""
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info = guarded.info
    try:
        return _members_page(request, info, cursor=_cursor(cursor))
    except TruthsetError as exc:
        return _failure(request, exc)


@router.post("/members")
async def add_member(request: Request) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    values = {name: form.get(name, "").strip() for name in ("email", "name", "role")}
    try:
        require(info.principal, Action.READ_MEMBERS)
        try:
            data = MemberCreate(email=values["email"], name=values["name"], role=values["role"] or "annotator")
        except ValidationError as exc:
            return _members_page(request, info, status_code=422, errors=_validation_errors(exc), values=values)
        try:
            created = accounts.add_member(_db(request), info.principal, data)
        except (Forbidden, InvalidInput, Conflict) as exc:  # shown by the field: the role, else the email
            errors = _field_error(exc, "role" if isinstance(exc, Forbidden) else "email")
            return _members_page(request, info, status_code=_status(exc), errors=errors, values=values)
    except TruthsetError as exc:
        return _failure(request, exc)
    member = created["member"]
    flash = {
        "title": f"{member['email']} was added as {member['role']}",
        "label": "One-time password",
        "secret": created["password"],
        "hint": "Give it to them now: it is shown only once and stored only as a hash.",
    }
    return _redirect(request, "/members", flash)


def _return_to(form: dict[str, str]) -> str:
    cursor = form.get("cursor", "")
    return f"/members?cursor={cursor}" if _CURSOR.match(cursor) else "/members"


async def _member_change(
    request: Request, member_id: str, update: Callable[[dict[str, str]], MemberUpdate], done: str
) -> Response:
    """A change to one member from a row of the members page; a refusal shows in that row."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    try:
        require(info.principal, Action.READ_MEMBERS)
        try:
            member = accounts.update_member(_db(request), info.principal, member_id, update(form))
        except ValidationError as exc:
            field, message = next(iter(_validation_errors(exc).items()))
            return _members_page(request, info, status_code=422, row_errors={member_id: f"{field}: {message}"})
        except (Forbidden, InvalidInput, Conflict) as exc:
            return _members_page(request, info, status_code=_status(exc), row_errors={member_id: exc.message})
    except TruthsetError as exc:
        return _failure(request, exc)
    return _redirect(request, _return_to(form), {"title": done.format(email=member["email"], role=member["role"])})


@router.post("/members/{member_id}/role")
async def change_role(request: Request, member_id: str) -> Response:
    def update(form: dict[str, str]) -> MemberUpdate:
        return MemberUpdate(role=form.get("role", ""))

    return await _member_change(request, member_id, update, "{email} is now {role}")


def _member_for_action(
    request: Request, member_id: str, action: MemberAction
) -> tuple[session.SessionInfo, dict[str, Any]] | Response:
    """The member a confirmation page is about, if the caller may take ``action`` on them."""
    guarded = guard(request, Action.READ_MEMBERS)
    if not isinstance(guarded, Guarded):
        return guarded
    info = guarded.info
    try:
        member = accounts.get_member(_db(request), info.principal, member_id)
        if member_id == info.principal.member_id:
            raise Forbidden("use the account page for yourself")
        if not may_act_on(info.principal, action, member_id, [Role(member["role"])]):
            raise Forbidden(f"the {info.principal.role} role may not {action} {member['role']}")
    except TruthsetError as exc:
        return _failure(request, exc)
    return info, member


@router.get("/members/{member_id}/disable")
def disable_confirm(request: Request, member_id: str) -> Response:
    found = _member_for_action(request, member_id, MemberAction.DISABLE_MEMBER)
    if isinstance(found, Response):
        return found
    _, member = found
    return _confirm(
        request,
        title=f"Disable {member['name']}?",
        message=f"{member['email']} is signed out at once and can no longer sign in; their API keys stop "
        "working. Their answers are kept. You can enable them again later.",
        action=f"/members/{member_id}/disable",
        button="Disable",
        cancel="/members",
    )


@router.post("/members/{member_id}/disable")
async def disable(request: Request, member_id: str) -> Response:
    return await _member_change(request, member_id, lambda _: MemberUpdate(disabled=True), "{email} is disabled")


@router.post("/members/{member_id}/enable")
async def enable(request: Request, member_id: str) -> Response:
    return await _member_change(request, member_id, lambda _: MemberUpdate(disabled=False), "{email} is enabled")


@router.get("/members/{member_id}/password-reset")
def reset_confirm(request: Request, member_id: str) -> Response:
    found = _member_for_action(request, member_id, MemberAction.RESET_PASSWORD)
    if isinstance(found, Response):
        return found
    _, member = found
    return _confirm(
        request,
        title=f"Reset the password of {member['name']}?",
        message=f"{member['email']} gets a new one-time password, shown to you once; their current password "
        "stops working and they are signed out everywhere. Their API keys keep working.",
        action=f"/members/{member_id}/password-reset",
        button="Reset password",
        cancel="/members",
    )


@router.post("/members/{member_id}/password-reset")
async def reset(request: Request, member_id: str) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, _ = posted
    try:
        require(info.principal, Action.READ_MEMBERS)
        reset = accounts.reset_password(_db(request), info.principal, member_id)
    except TruthsetError as exc:
        return _failure(request, exc)
    flash = {
        "title": f"The password of {reset['member']['email']} was reset",
        "label": "One-time password",
        "secret": reset["password"],
        "hint": "Give it to them now: it is shown only once and stored only as a hash.",
    }
    return _redirect(request, "/members", flash)


# --- API keys --------------------------------------------------------------------------------------


def _keys_page(
    request: Request,
    info: session.SessionInfo,
    *,
    cursor: str | None = None,
    holder_id: str | None = None,
    status_code: int = 200,
    errors: Errors | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    db = _db(request)
    rows, next_cursor = accounts.list_keys(db, info.principal, cursor=cursor, limit=PAGE_SIZE)
    directory = accounts.member_directory(db, info.principal, [row["member_id"] for row in rows])
    holder = None
    if holder_id and holder_id != info.principal.member_id:
        holder = accounts.get_member(db, info.principal, holder_id)
        _require_key_for(info, holder)
    keys = [
        {
            **row,
            "holder": directory.get(row["member_id"]),
            "may_revoke": row["revoked_at"] is None
            and row["member_id"] in directory
            and may_act_on(
                info.principal, MemberAction.REVOKE_KEY, row["member_id"], [Role(directory[row["member_id"]]["role"])]
            ),
        }
        for row in rows
    ]
    return _render(
        request,
        "keys.html",
        status_code=status_code,
        organization=accounts.get_organization(db, info.principal.organization_id),
        keys=keys,
        cursor=cursor,
        next_cursor=next_cursor,
        holder=holder,
        errors=errors or {},
        values=values or {},
    )


def _require_key_for(info: session.SessionInfo, holder: dict[str, Any]) -> None:
    if not may_act_on(info.principal, MemberAction.CREATE_KEY, holder["id"], [Role(holder["role"])]):
        raise Forbidden(f"the {info.principal.role} role may not {MemberAction.CREATE_KEY} {holder['role']}")


@router.get("/keys")
def keys(request: Request, cursor: str | None = None, member: str | None = None) -> Response:
    """API keys: your own, and those of the members your role reaches (as ``GET /keys`` lists)."""
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info = guarded.info
    try:
        return _keys_page(request, info, cursor=_cursor(cursor), holder_id=member)
    except TruthsetError as exc:
        return _failure(request, exc)


@router.post("/keys")
async def create_key(request: Request) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    values = {"name": form.get("name", "").strip(), "member_id": form.get("member_id", "")}
    holder_id = values["member_id"] or None
    try:
        try:
            data = ApiKeyCreate(name=values["name"], member_id=holder_id)
        except ValidationError as exc:
            return _keys_page(
                request, info, holder_id=holder_id, status_code=422, errors=_validation_errors(exc), values=values
            )
        try:
            created = accounts.create_key(_db(request), info.principal, data)
        except InvalidInput as exc:
            return _keys_page(
                request, info, holder_id=holder_id, status_code=422, errors=_field_error(exc, "name"), values=values
            )
    except TruthsetError as exc:
        return _failure(request, exc)
    flash = {
        "title": f"API key “{created['name']}” created",
        "label": "API key",
        "secret": created["key"],
        "hint": "Copy it now: it is shown only once and stored only as a hash.",
    }
    return _redirect(request, "/keys", flash)


@router.get("/keys/{key_id}/revoke")
def revoke_confirm(request: Request, key_id: str) -> Response:
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info = guarded.info
    try:
        key = accounts.get_key(_db(request), info.principal, key_id)
        holder = key["member"]
        if not may_act_on(info.principal, MemberAction.REVOKE_KEY, holder["id"], [Role(holder["role"])]):
            raise Forbidden(f"the {info.principal.role} role may not {MemberAction.REVOKE_KEY} {holder['role']}")
    except TruthsetError as exc:
        return _failure(request, exc)
    return _confirm(
        request,
        title=f"Revoke the key “{key['name']}”?",
        message=f"The key {key['prefix']}… of {holder['email']} stops working at once, for every program "
        "that uses it. This cannot be undone.",
        action=f"/keys/{key_id}/revoke",
        button="Revoke key",
        cancel="/keys",
    )


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, _ = posted
    try:
        key = accounts.revoke_key(_db(request), info.principal, key_id)
    except TruthsetError as exc:
        return _failure(request, exc)
    return _redirect(request, "/keys", {"title": f"The key “{key['name']}” ({key['prefix']}…) is revoked"})


# --- your account ----------------------------------------------------------------------------------


def _account_page(
    request: Request, info: session.SessionInfo, *, status_code: int = 200, errors: Errors | None = None
) -> Response:
    me = accounts.me(_db(request), info.principal)
    return _render(request, "account.html", status_code=status_code, me=me, errors=errors or {})


@router.get("/account")
def account(request: Request) -> Response:
    """Your name, email, role and organization; change your password."""
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info = guarded.info
    try:
        return _account_page(request, info)
    except TruthsetError as exc:
        return _failure(request, exc)


@router.post("/account/password")
async def change_password(request: Request) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    current, new = form.get("current_password", ""), form.get("new_password", "")
    try:
        try:
            data = PasswordChange(current_password=current, new_password=new)
        except ValidationError as exc:
            return _account_page(request, info, status_code=422, errors=_validation_errors(exc))
        if form.get("confirm_password", "") != new:
            errors = {"confirm_password": "the two new passwords differ"}
            return _account_page(request, info, status_code=422, errors=errors)
        try:
            changed = accounts.change_password(
                _db(request), info.principal, data.current_password, data.new_password, keep_session=info.session_id
            )
        except InvalidInput as exc:
            return _account_page(request, info, status_code=422, errors=_field_error(exc, "current_password"))
    except TruthsetError as exc:
        return _failure(request, exc)
    ended = changed["sessions_ended"]
    others = f"{ended} other session{'s' if ended != 1 else ''} signed out" if ended else "no other session to sign out"
    return _redirect(request, "/account", {"title": f"Your password is changed ({others})."})


# --- organizations ---------------------------------------------------------------------------------


def _organizations_page(
    request: Request,
    info: session.SessionInfo,
    *,
    status_code: int = 200,
    errors: Errors | None = None,
    values: dict[str, str] | None = None,
    choices: list[sessions.Choice] | None = None,
) -> Response:
    current = accounts.get_organization(_db(request), info.principal.organization_id)
    others = [h for h in _held.held(request) if h.organization_id != info.principal.organization_id]
    return _render(
        request,
        "organizations.html",
        status_code=status_code,
        current=current,
        others=others,
        may_create=allowed(info.principal, Action.CREATE_ORGANIZATION),
        errors=errors or {},
        values=values or {"email": info.email},
        choices=choices or [],
    )


@router.get("/organizations")
def organizations(request: Request) -> Response:
    """The organizations this browser is signed in to (and no other), to switch between them."""
    guarded = guard(request)
    if not isinstance(guarded, Guarded):
        return guarded
    info = guarded.info
    try:
        return _organizations_page(request, info)
    except TruthsetError as exc:
        return _failure(request, exc)


def _enter(request: Request, response: Response, token: str, organization_id: str) -> None:
    """Make ``token`` the session in use; the one in use so far waits in the held cookie.

    A held session of the same organization is ended: one session per organization in a browser.
    """
    current = request.cookies.get(session.COOKIE)
    kept = [current] if current else []
    for other in _held.held(request):
        if other.token == token:
            continue
        if other.organization_id == organization_id:
            sessions.destroy(_db(request), other.token)
        else:
            kept.append(other.token)
    session.set_cookie(response, request, token)
    _held.hold(response, request, kept)


@router.post("/organizations/switch")
async def switch(request: Request) -> Response:
    """Use another organization's session this browser holds: no password, nothing by email."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    _, form = posted
    target = next((h for h in _held.held(request) if h.session_id == form.get("session_id")), None)
    if target is None:
        return _error_page(
            request, 404, "Not found", "This browser is not signed in to that organization: sign in to it first."
        )
    response = RedirectResponse("/", status_code=303)
    _enter(request, response, target.token, target.organization_id)
    return response


@router.post("/organizations/sign-in")
async def sign_in(request: Request) -> Response:
    """Sign in to another organization with that membership's own email and password."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    email = form.get("email", "").strip()[:320]
    values = {"email": email}
    address = request.client.host if request.client else "unknown"
    try:
        try:
            outcome = sessions.check_password(
                _db(request),
                email,
                form.get("password", ""),
                address=address,
                organization_id=form.get("organization_id") or None,
            )
        except sessions.TooManyAttempts as exc:
            return _organizations_page(request, info, status_code=429, errors={"password": exc.message}, values=values)
        except Unauthenticated:
            errors = {"password": "wrong email or password"}
            return _organizations_page(request, info, status_code=401, errors=errors, values=values)
        if isinstance(outcome, list):
            return _organizations_page(request, info, values=values, choices=outcome)
        if outcome["organization_id"] == info.principal.organization_id:
            errors = {"email": "you are signed in to this organization already (sign out to change member)"}
            return _organizations_page(request, info, status_code=409, errors=errors, values=values)
        token = sessions.start(_db(request), outcome)
    except TruthsetError as exc:
        return _failure(request, exc)
    response = RedirectResponse("/", status_code=303)
    _enter(request, response, token, outcome["organization_id"])
    return response


@router.post("/organizations/new")
async def create_organization(request: Request) -> Response:
    """Found an organization (owners): you become its owner and the browser switches to it."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    info, form = posted
    values = {"name": form.get("name", ""), "email": info.email}
    try:
        require(info.principal, Action.CREATE_ORGANIZATION)
        try:
            data = OrganizationCreate(name=values["name"])
        except ValidationError as exc:
            return _organizations_page(request, info, status_code=422, errors=_validation_errors(exc), values=values)
        created = accounts.create_organization(_db(request), info.principal, data, with_key=False)
        # the new membership was made from this session's own member row: its session needs no password
        token = sessions.start(_db(request), created["member"])
    except TruthsetError as exc:
        return _failure(request, exc)
    flash = {"title": f"You founded {created['organization']['name']} and switched to it: you are its owner."}
    response = _redirect(request, "/organizations", flash, token=token)
    _enter(request, response, token, created["organization"]["id"])
    return response

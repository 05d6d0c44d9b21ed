"""Organizations, members, API keys and authentication."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import weakref
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import Connection, delete, or_, select
from sqlalchemy.exc import IntegrityError

from truthset.domain import Principal, Role, WorkerKind
from truthset.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from truthset.schemas import ApiKeyCreate, MemberCreate, MemberUpdate, OrganizationCreate
from truthset.services.policy import Action, MemberAction, reachable_roles, require, require_on_member
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

KEY_PREFIX = "ts_"
_hasher = PasswordHasher()


def hash_key(key: str) -> str:
    """API keys are 256-bit random secrets, so a fast hash is enough (unlike passwords)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_password() -> str:
    return secrets.token_urlsafe(15)


def init_organization(db: Database, name: str, owner_email: str, owner_name: str = "") -> dict[str, Any]:
    """Create an organization with its first owner. Returns the one-time password and API key."""
    password = new_password()
    key = new_secret_key()
    with db.write() as conn:
        now = utcnow()
        org = repo.add(conn, t.organizations, {"id": new_id(), "name": name, "created_at": now})
        member = _add_member(conn, org["id"], owner_email, owner_name, Role.OWNER, _hasher.hash(password))
        api_key = _add_key(conn, org["id"], member["id"], "owner key", key)
    return {"organization": org, "member": member, "password": password, "api_key": key, "key": api_key}


def organizations(db: Database) -> list[dict]:
    with db.read() as conn:
        return [dict(r) for r in conn.execute(select(t.organizations).order_by(t.organizations.c.id)).mappings()]


def _add_member(
    conn: Connection, org_id: str, email: str, name: str, role: Role, password_hash: str | None
) -> dict[str, Any]:
    now = utcnow()
    email = email.strip().lower()
    existing = conn.execute(repo.scoped(t.members, org_id, t.members.c.id).where(t.members.c.email == email)).first()
    if existing:
        raise Conflict(f"a member with email {email} already exists", details={"field": "email"})
    member = repo.add(
        conn,
        t.members,
        {
            "id": new_id(),
            "organization_id": org_id,
            "email": email,
            "name": name or email.split("@")[0],
            "role": str(role),
            "password_hash": password_hash,
            "created_at": now,
            "disabled_at": None,
        },
    )
    worker = repo.add(
        conn,
        t.workers,
        {
            "id": new_id(),
            "organization_id": org_id,
            "kind": str(WorkerKind.HUMAN),
            "name": member["name"],
            "member_id": member["id"],
            "created_at": now,
        },
    )
    return {**member, "worker_id": worker["id"]}


def _add_key(conn: Connection, org_id: str, member_id: str, name: str, key: str) -> dict[str, Any]:
    return repo.add(
        conn,
        t.api_keys,
        {
            "id": new_id(),
            "organization_id": org_id,
            "member_id": member_id,
            "name": name,
            "prefix": key[:10],
            "key_hash": hash_key(key),
            "created_at": utcnow(),
            "last_used_at": None,
            "revoked_at": None,
        },
    )


# Resolved keys are remembered for a moment, per database, so the annotation loop does not pay a
# query per request. A key revoked or a member disabled through this process stops working at
# once (the cache is cleared); other server processes notice within AUTH_CACHE_SECONDS.
AUTH_CACHE_SECONDS = 2.0
_auth_cache: weakref.WeakKeyDictionary[Database, dict[str, tuple[float, Principal]]] = weakref.WeakKeyDictionary()
_auth_lock = threading.Lock()


def forget_credentials(db: Database) -> None:
    """Drop remembered keys (after a revocation, a role change or a disabled member)."""
    with _auth_lock:
        _auth_cache.pop(db, None)


def remembered_principal(db: Database, key: str) -> Principal | None:
    """Who a key resolved to moments ago, without touching the database (None: ask authenticate)."""
    return _remembered(db, hash_key(key))


def _remembered(db: Database, key_hash: str) -> Principal | None:
    remembered = _auth_cache.get(db, {}).get(key_hash)
    if remembered is not None and remembered[0] > time.monotonic():
        return remembered[1]
    return None


def authenticate(db: Database, key: str) -> Principal:
    """Resolve an API key to who is acting. Unknown, revoked or disabled: one vague error."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise Unauthenticated("invalid API key")
    key_hash = hash_key(key)
    remembered = _remembered(db, key_hash)
    if remembered is not None:
        return remembered
    principal = _authenticate(db, key_hash)
    with _auth_lock:
        per_db = _auth_cache.setdefault(db, {})
        if len(per_db) > 10_000:
            per_db.clear()
        per_db[key_hash] = (time.monotonic() + AUTH_CACHE_SECONDS, principal)
    return principal


def _authenticate(db: Database, key_hash: str) -> Principal:
    with db.read() as conn:
        row = repo.member_by_key_hash(conn, key_hash)
    if row is None or row["revoked_at"] is not None or row["disabled_at"] is not None:
        raise Unauthenticated("invalid API key")
    now = utcnow()
    if row["last_used_at"] is None or now - row["last_used_at"] > timedelta(minutes=5):
        # Coarse on purpose: a write per request would halve the annotation throughput.
        with db.write() as conn:
            repo.change(conn, t.api_keys, row["organization_id"], row["api_key_id"], last_used_at=now)
    return Principal(
        organization_id=row["organization_id"],
        member_id=row["member_id"],
        role=Role(row["role"]),
        worker_id=row["worker_id"],
        api_key_id=row["api_key_id"],
    )


def login(db: Database, organization_id: str, email: str, password: str) -> dict[str, Any]:
    with db.read() as conn:
        row = (
            conn.execute(repo.scoped(t.members, organization_id).where(t.members.c.email == email.strip().lower()))
            .mappings()
            .first()
        )
    if row is None or row["password_hash"] is None or row["disabled_at"] is not None:
        raise Unauthenticated("wrong email or password")
    try:
        _hasher.verify(row["password_hash"], password)
    except VerificationError:
        raise Unauthenticated("wrong email or password") from None
    return dict(row)


# --- members -----------------------------------------------------------------------------------


def me(db: Database, principal: Principal) -> dict[str, Any]:
    with db.read() as conn:
        org = (
            conn.execute(select(t.organizations).where(t.organizations.c.id == principal.organization_id))
            .mappings()
            .one()
        )
        member = _member(conn, principal.organization_id, principal.member_id)
    return {"organization_id": org["id"], "organization_name": org["name"], "member": member}


def _member(conn: Connection, org_id: str, member_id: str) -> dict[str, Any]:
    member = repo.get(conn, t.members, org_id, member_id)
    if member is None:
        raise NotFound(f"member {member_id} not found")
    worker = repo.worker_for_member(conn, org_id, member_id)
    return {**member, "worker_id": worker["id"] if worker else None}


def list_members(db: Database, principal: Principal, *, cursor: str | None, limit: int) -> tuple[list, str | None]:
    require(principal, Action.READ_MEMBERS)
    with db.read() as conn:
        rows, next_cursor = repo.page(
            conn, repo.scoped(t.members, principal.organization_id), t.members, cursor=cursor, limit=limit
        )
        return [_member(conn, principal.organization_id, r["id"]) for r in rows], next_cursor


def get_member(db: Database, principal: Principal, member_id: str) -> dict[str, Any]:
    with db.read() as conn:
        member = _member(conn, principal.organization_id, member_id)
    if member_id != principal.member_id:
        require(principal, Action.READ_MEMBERS)
    return member


def add_member(db: Database, principal: Principal, data: MemberCreate) -> dict[str, Any]:
    """Add a member. Returns the member and, unless a password was given, a one-time password."""
    require_on_member(principal, MemberAction.ADD_MEMBER, None, data.role)
    password = data.password or new_password()
    try:
        with db.write() as conn:
            member = _add_member(
                conn, principal.organization_id, data.email, data.name, data.role, _hasher.hash(password)
            )
    except IntegrityError as exc:  # the same email added at the same moment (PostgreSQL)
        if not unique_violation(exc):
            raise
        email = data.email.strip().lower()
        raise Conflict(f"a member with email {email} already exists", details={"field": "email"}) from None
    return {"member": member, "password": None if data.password else password}


def update_member(db: Database, principal: Principal, member_id: str, data: MemberUpdate) -> dict[str, Any]:
    with db.write() as conn:
        member = _member(conn, principal.organization_id, member_id)
        _check_update(principal, member, data)
        values: dict[str, Any] = {}
        if data.name is not None:
            values["name"] = data.name
        if data.role is not None:
            values["role"] = str(data.role)
        if data.disabled is not None:
            values["disabled_at"] = utcnow() if data.disabled else None
        losing_owner = Role(member["role"]) is Role.OWNER and (
            (data.role is not None and data.role is not Role.OWNER) or data.disabled
        )
        if losing_owner:
            _lock_organization(conn, principal.organization_id)
            if repo.count_owners(conn, principal.organization_id) <= 1:
                raise Conflict("an organization keeps at least one active owner")
        if values:
            repo.change(conn, t.members, principal.organization_id, member_id, **values)
        member = _member(conn, principal.organization_id, member_id)
    forget_credentials(db)  # after the commit, so no request re-remembers the old role
    return member


def _lock_organization(conn: Connection, organization_id: str) -> None:
    """Serialise changes that must see each other (two owners stepping down at once) on PostgreSQL.

    Under READ COMMITTED each would count the other as the remaining owner; SQLite's BEGIN IMMEDIATE
    already runs one writer at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(t.organizations.c.id).where(t.organizations.c.id == organization_id).with_for_update())


# --- passwords ---------------------------------------------------------------------------------


def reset_password(db: Database, principal: Principal, member_id: str) -> dict[str, Any]:
    """Give a member a new random password (returned once) and end every session they have.

    The same reach as every other action on members: an admin resets the roles below admin, an
    owner anyone's. API keys are untouched (revoke them separately if they leaked too).
    """
    password = new_password()
    with db.write() as conn:
        member = _member(conn, principal.organization_id, member_id)
        require_on_member(principal, MemberAction.RESET_PASSWORD, member_id, Role(member["role"]))
        repo.change(conn, t.members, principal.organization_id, member_id, password_hash=_hasher.hash(password))
        _end_sessions(conn, principal.organization_id, member_id, keep=None)
    return {"member": member, "password": password}


def change_password(
    db: Database, principal: Principal, current: str, new: str, *, keep_session: str | None = None
) -> dict[str, Any]:
    """Change one's own password. The current one is required (a stolen session or key alone cannot
    lock the owner out); every other session of the member ends, ``keep_session`` (the caller's) stays.
    """
    with db.read() as conn:
        row = repo.get(conn, t.members, principal.organization_id, principal.member_id)
    if row is None or row["password_hash"] is None or not _verifies(row["password_hash"], current):
        raise InvalidInput("the current password is wrong", details={"field": "current_password"})
    if current == new:
        raise InvalidInput("the new password is the same as the current one", details={"field": "new_password"})
    with db.write() as conn:
        repo.change(conn, t.members, principal.organization_id, principal.member_id, password_hash=_hasher.hash(new))
        ended = _end_sessions(conn, principal.organization_id, principal.member_id, keep=keep_session)
        member = _member(conn, principal.organization_id, principal.member_id)
    return {"member": member, "sessions_ended": ended}


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except VerificationError:
        return False


def _end_sessions(conn: Connection, org_id: str, member_id: str, *, keep: str | None) -> int:
    """Sign a member out of every browser (but the session ``keep``): their password changed."""
    query = delete(t.sessions).where(t.sessions.c.organization_id == org_id, t.sessions.c.member_id == member_id)
    if keep is not None:
        query = query.where(t.sessions.c.id != keep)
    return conn.execute(query).rowcount or 0


# --- organizations -------------------------------------------------------------------------------


def create_organization(
    db: Database, principal: Principal, data: OrganizationCreate, *, with_key: bool = True
) -> dict[str, Any]:
    """An owner founds another organization and becomes its owner.

    The new organization's owner is a new member row (members are per organization) with the
    caller's email, name and password hash, so the same password signs in to it. Nothing else
    crosses over: no projects, no other members, no keys. ``with_key``: also create an API key for
    the new owner (returned once), since the caller's key only works in the caller's organization.
    """
    require(principal, Action.CREATE_ORGANIZATION)
    key = new_secret_key() if with_key else None
    with db.write() as conn:
        me = repo.get(conn, t.members, principal.organization_id, principal.member_id)
        if me is None:
            raise NotFound(f"member {principal.member_id} not found")
        org = repo.add(conn, t.organizations, {"id": new_id(), "name": data.name, "created_at": utcnow()})
        member = _add_member(conn, org["id"], me["email"], me["name"], Role.OWNER, me["password_hash"])
        api_key = _add_key(conn, org["id"], member["id"], "owner key", key) if key else None
    return {"organization": org, "member": member, "api_key": {**api_key, "key": key} if api_key else None}


def get_organization(db: Database, organization_id: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(t.organizations).where(t.organizations.c.id == organization_id)).mappings().first()
    return dict(row) if row else None


def member_directory(db: Database, principal: Principal, member_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Email, name and role of the given members of the caller's organization, by id (one query),
    for lists that show whose an object is (the keys page). Ids of other organizations are absent."""
    if not member_ids:
        return {}
    columns = (t.members.c.id, t.members.c.email, t.members.c.name, t.members.c.role)
    query = repo.scoped(t.members, principal.organization_id, *columns).where(
        t.members.c.id.in_(sorted(set(member_ids)))
    )
    with db.read() as conn:
        return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def _check_update(principal: Principal, member: dict[str, Any], data: MemberUpdate) -> None:
    """Each change asks the policy's one table; an empty change still needs the right to rename."""
    role = Role(member["role"])
    if data.name is not None or (data.role is None and data.disabled is None):
        require_on_member(principal, MemberAction.RENAME_MEMBER, member["id"], role)
    if data.role is not None:
        require_on_member(principal, MemberAction.CHANGE_ROLE, member["id"], role, data.role)
    if data.disabled is not None:
        require_on_member(principal, MemberAction.DISABLE_MEMBER, member["id"], role)


# --- API keys ----------------------------------------------------------------------------------


def list_keys(db: Database, principal: Principal, *, cursor: str | None, limit: int) -> tuple[list, str | None]:
    """The caller's own keys, and those of the members the policy lets it act on (``LIST_KEYS``)."""
    reachable = repo.scoped(t.members, principal.organization_id, t.members.c.id).where(
        t.members.c.role.in_(sorted(str(r) for r in reachable_roles(principal)))
    )
    query = repo.scoped(t.api_keys, principal.organization_id).where(
        or_(t.api_keys.c.member_id == principal.member_id, t.api_keys.c.member_id.in_(reachable))
    )
    with db.read() as conn:
        return repo.page(conn, query, t.api_keys, cursor=cursor, limit=limit)


def get_key(db: Database, principal: Principal, key_id: str) -> dict[str, Any]:
    """One API key (never its secret), if the caller may see it (``LIST_KEYS`` on its holder)."""
    with db.read() as conn:
        row = repo.get(conn, t.api_keys, principal.organization_id, key_id)
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        holder = _member(conn, principal.organization_id, row["member_id"])
    require_on_member(principal, MemberAction.LIST_KEYS, row["member_id"], Role(holder["role"]))
    return {**row, "member": holder}


def create_key(db: Database, principal: Principal, data: ApiKeyCreate) -> dict[str, Any]:
    member_id = data.member_id or principal.member_id
    key = new_secret_key()
    with db.write() as conn:
        member = _member(conn, principal.organization_id, member_id)
        require_on_member(principal, MemberAction.CREATE_KEY, member_id, Role(member["role"]))
        if member["disabled_at"] is not None:
            raise InvalidInput("the member is disabled", details={"field": "member_id"})
        row = _add_key(conn, principal.organization_id, member_id, data.name, key)
    return {**row, "key": key}


def revoke_key(db: Database, principal: Principal, key_id: str) -> dict[str, Any]:
    with db.write() as conn:
        row = repo.get(conn, t.api_keys, principal.organization_id, key_id)
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        holder = _member(conn, principal.organization_id, row["member_id"])
        require_on_member(principal, MemberAction.REVOKE_KEY, row["member_id"], Role(holder["role"]))
        if row["revoked_at"] is None:
            row["revoked_at"] = utcnow()
            repo.change(conn, t.api_keys, principal.organization_id, key_id, revoked_at=row["revoked_at"])
    forget_credentials(db)
    return row


def list_workers(db: Database, principal: Principal, *, cursor: str | None, limit: int) -> tuple[list, str | None]:
    require(principal, Action.READ_MEMBERS)
    with db.read() as conn:
        return repo.page(conn, repo.scoped(t.workers, principal.organization_id), t.workers, cursor=cursor, limit=limit)


def unique_violation(exc: IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate key" in text


def local_admin(db: Database, organization_id: str | None = None) -> Principal:
    """Act as an owner of an organization, for commands run on the server itself (`truthset users`).

    Whoever can run commands on the server can read the database anyway; this is not a way in
    from the network. With one organization, ``organization_id`` may be omitted.
    """
    with db.read() as conn:
        query = select(t.members).where(t.members.c.role == str(Role.OWNER), t.members.c.disabled_at.is_(None))
        if organization_id:
            query = query.where(t.members.c.organization_id == organization_id)
        owners = conn.execute(query.order_by(t.members.c.id)).mappings().all()
        org_ids = {o["organization_id"] for o in owners}
        if not owners:
            raise NotFound("no organization found: run `truthset init` first")
        if len(org_ids) > 1:
            raise InvalidInput("several organizations exist: pass --org ID", details={"field": "org"})
        owner = owners[0]
        worker = repo.worker_for_member(conn, owner["organization_id"], owner["id"])
    return Principal(
        organization_id=owner["organization_id"],
        member_id=owner["id"],
        role=Role.OWNER,
        worker_id=worker["id"] if worker else "",
    )

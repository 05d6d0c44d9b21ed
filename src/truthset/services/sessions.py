"""Browser sessions and sign-in: the stored side of ``api/session.py`` (cookies, CSRF and HTTP live there).

* A session is a 256-bit random secret held by the browser; the database keeps only its SHA-256
  hash, so sessions work across any number of server processes and a copy of the database opens
  none of them. A session ends after :data:`IDLE` without use, and at the latest :data:`ABSOLUTE`
  after sign-in; :func:`destroy` deletes it.
* Sign-in (:func:`check_password`): one vague error for a wrong email or password, the same argon2
  work whether or not the email exists, and a limit on failures per (email, address) and per address,
  stored in the database so every process sees it.

Sessions and sign-in come before any organization is known, so their lookups go by the secret's hash
or the email rather than through ``repositories.scoped``; what they return is one member of one
organization, and every tenant read after that is scoped to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2.exceptions import VerificationError
from sqlalchemy import delete, func, select, update

from truthset.domain import Principal, Role
from truthset.errors import TruthsetError, Unauthenticated
from truthset.services import accounts
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

__all__ = [
    "ABSOLUTE",
    "FAILURE_WINDOW",
    "IDLE",
    "MAX_FAILURES_PER_ADDRESS",
    "MAX_FAILURES_PER_EMAIL_AND_ADDRESS",
    "TOUCH_EVERY",
    "ActiveSession",
    "Choice",
    "TooManyAttempts",
    "check_password",
    "destroy",
    "is_throttled",
    "load",
    "record_failure",
    "start",
    "valid_token_shape",
]

IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=5)  # coarse: a write per request would slow annotation down

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL_AND_ADDRESS = 10
MAX_FAILURES_PER_ADDRESS = 100

_WRONG = "wrong email or password"


class TooManyAttempts(TruthsetError):
    code = "rate_limited"


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A live session: who it signs in, and until when."""

    principal: Principal
    session_id: str
    email: str
    name: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Choice:
    """An organization the email and password are valid in (when there are several)."""

    organization_id: str
    organization_name: str


# --- sessions --------------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_token_shape(token: str | None) -> bool:
    return bool(token) and 20 <= len(token or "") <= 100


def start(db: Database, member: dict[str, Any], *, replacing: str | None = None) -> str:
    """Open a session for a signed-in member; returns its secret (for the cookie, never stored).

    ``replacing``: the secret of the session the browser had, deleted (no session fixation: a
    sign-in always gets a fresh secret). Expired sessions are swept at the same time.
    """
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with db.write() as conn:
        if replacing:
            conn.execute(delete(t.sessions).where(t.sessions.c.token_hash == _hash(replacing)))
        conn.execute(delete(t.sessions).where(t.sessions.c.expires_at < now))
        conn.execute(
            t.sessions.insert().values(
                id=new_id(),
                organization_id=member["organization_id"],
                member_id=member["id"],
                token_hash=_hash(token),
                created_at=now,
                last_seen_at=now,
                expires_at=now + IDLE,
            )
        )
    return token


def load(db: Database, token: str | None) -> ActiveSession | None:
    """The live session of a secret, or None (unknown, expired, or the member is disabled).

    A session in use is extended (at most every :data:`TOUCH_EVERY`) by :data:`IDLE`, never past
    :data:`ABSOLUTE` after it started.
    """
    if not valid_token_shape(token):
        return None
    assert token is not None
    query = (
        select(
            t.sessions.c.id,
            t.sessions.c.organization_id,
            t.sessions.c.created_at,
            t.sessions.c.last_seen_at,
            t.sessions.c.expires_at,
            t.members.c.id.label("member_id"),
            t.members.c.email,
            t.members.c.name,
            t.members.c.role,
            t.members.c.disabled_at,
            t.workers.c.id.label("worker_id"),
        )
        .join(t.members, t.members.c.id == t.sessions.c.member_id)
        .join(t.workers, t.workers.c.member_id == t.members.c.id)
        .where(t.sessions.c.token_hash == _hash(token))
    )
    with db.read() as conn:
        row = conn.execute(query).mappings().first()
    now = utcnow()
    if row is None or row["disabled_at"] is not None or row["expires_at"] <= now:
        return None
    expires_at = row["expires_at"]
    if now - row["last_seen_at"] > TOUCH_EVERY:
        expires_at = min(row["created_at"] + ABSOLUTE, now + IDLE)
        with db.write() as conn:
            conn.execute(
                update(t.sessions).where(t.sessions.c.id == row["id"]).values(last_seen_at=now, expires_at=expires_at)
            )
    principal = Principal(
        organization_id=row["organization_id"],
        member_id=row["member_id"],
        role=Role(row["role"]),
        worker_id=row["worker_id"],
    )
    return ActiveSession(
        principal=principal,
        session_id=row["id"],
        email=row["email"],
        name=row["name"],
        expires_at=expires_at,
    )


def destroy(db: Database, token: str | None) -> None:
    """End the session of a secret (signing out). Unknown secrets are ignored."""
    if valid_token_shape(token):
        assert token is not None
        with db.write() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.token_hash == _hash(token)))


# --- sign-in ---------------------------------------------------------------------------------------

_dummy: dict[int, str] = {}


def _dummy_verify(password: str) -> None:
    """The argon2 work of a real check, for an email that has no member: timing tells nothing."""
    hasher = accounts._hasher
    encoded = _dummy.get(id(hasher))
    if encoded is None:
        encoded = _dummy.setdefault(id(hasher), hasher.hash(secrets.token_urlsafe(16)))
    with contextlib.suppress(VerificationError):
        hasher.verify(encoded, password)


def _email_hash(email: str) -> str:
    return hashlib.sha256(b"truthset-login\0" + email.encode()).hexdigest()


def is_throttled(db: Database, email: str, address: str) -> bool:
    """Whether sign-ins for ``email`` from ``address`` are refused for now (too many recent failures
    for the pair, or from the address)."""
    return _throttled(db, _email_hash(email.strip().lower()), address)


def record_failure(db: Database, email: str, address: str) -> None:
    """Count a failed sign-in for ``email`` from ``address`` (and sweep long-expired failures)."""
    _record_failure(db, _email_hash(email.strip().lower()), address)


def _throttled(db: Database, email_hash: str, address: str) -> bool:
    since = utcnow() - FAILURE_WINDOW
    failures = t.login_failures
    with db.read() as conn:
        for where, limit in (
            ((failures.c.email_hash == email_hash, failures.c.address == address), MAX_FAILURES_PER_EMAIL_AND_ADDRESS),
            ((failures.c.address == address,), MAX_FAILURES_PER_ADDRESS),
        ):
            count = conn.execute(select(func.count()).where(*where, failures.c.created_at >= since)).scalar_one()
            if count >= limit:
                return True
    return False


def _record_failure(db: Database, email_hash: str, address: str) -> None:
    now = utcnow()
    with db.write() as conn:
        conn.execute(delete(t.login_failures).where(t.login_failures.c.created_at < now - FAILURE_WINDOW * 4))
        conn.execute(
            t.login_failures.insert().values(id=new_id(), email_hash=email_hash, address=address[:64], created_at=now)
        )


def check_password(
    db: Database, email: str, password: str, *, address: str, organization_id: str | None = None
) -> dict[str, Any] | list[Choice]:
    """Check an email and password: the member, or the organizations to choose from when the pair
    is valid in several. Raises :class:`Unauthenticated` (one message for every failure) or
    :class:`TooManyAttempts`.
    """
    email = email.strip().lower()
    email_hash = _email_hash(email)
    if _throttled(db, email_hash, address):
        raise TooManyAttempts("too many failed sign-ins: wait a few minutes and try again")
    # A NUL matches no member (PostgreSQL text cannot even be compared with one): a wrong password.
    if not email or not password or len(password) > 1000 or "\x00" in email + (organization_id or ""):
        _dummy_verify(password[:1000])
        _record_failure(db, email_hash, address)
        raise Unauthenticated(_WRONG)
    query = (
        select(t.members.c.organization_id, t.organizations.c.name)
        .join(t.organizations, t.organizations.c.id == t.members.c.organization_id)
        .where(t.members.c.email == email)
        .order_by(t.organizations.c.name, t.organizations.c.id)
    )
    if organization_id:
        query = query.where(t.members.c.organization_id == organization_id)
    with db.read() as conn:
        candidates = [(row.organization_id, row.name) for row in conn.execute(query)]
    if not candidates:
        _dummy_verify(password)
    matches: list[tuple[dict[str, Any], str]] = []
    for org_id, org_name in candidates:
        try:
            matches.append((accounts.login(db, org_id, email, password), org_name))
        except Unauthenticated:
            continue
    if not matches:
        _record_failure(db, email_hash, address)
        raise Unauthenticated(_WRONG)
    if len(matches) == 1:
        return matches[0][0]
    return [Choice(member["organization_id"], name) for member, name in matches]

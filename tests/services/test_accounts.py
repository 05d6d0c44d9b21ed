"""Organizations, members, API keys and authentication."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from truthset.domain import Role, WorkerKind
from truthset.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from truthset.schemas import ApiKeyCreate, MemberCreate, MemberUpdate
from truthset.services import accounts
from truthset.storage import Database
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org


def _all_stored_text(db: Database) -> str:
    """Every value of every row of every table, as one string (to look for leaked secrets)."""
    parts = []
    with db.read() as conn:
        for table in t.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.extend(str(v) for v in row)
    return "\n".join(parts)


def test_init_creates_org_owner_worker_and_hashed_key(db: Database) -> None:
    created = accounts.init_organization(db, "Acme", " Owner@Example.com ", "Olive")
    org_id = created["organization"]["id"]
    with db.read() as conn:
        orgs = conn.execute(select(t.organizations)).mappings().all()
        members = conn.execute(select(t.members)).mappings().all()
        workers = conn.execute(select(t.workers)).mappings().all()
        keys = conn.execute(select(t.api_keys)).mappings().all()
    assert [o["name"] for o in orgs] == ["Acme"]
    assert len(members) == 1 and members[0]["role"] == "owner" and members[0]["organization_id"] == org_id
    assert members[0]["email"] == "owner@example.com"
    assert len(workers) == 1
    assert workers[0]["member_id"] == members[0]["id"] and workers[0]["kind"] == str(WorkerKind.HUMAN)
    assert len(keys) == 1 and keys[0]["member_id"] == members[0]["id"]
    assert keys[0]["key_hash"] == accounts.hash_key(created["api_key"])
    assert created["api_key"].startswith(keys[0]["prefix"])

    # the raw key and password are stored nowhere; the password hash is argon2
    stored = _all_stored_text(db)
    assert created["api_key"] not in stored
    assert created["password"] not in stored
    password_hash = members[0]["password_hash"]
    assert password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(password_hash, created["password"])


def test_init_twice_makes_two_separate_organizations(db: Database) -> None:
    a = accounts.init_organization(db, "A", "same@example.com")
    b = accounts.init_organization(db, "B", "same@example.com")
    assert a["organization"]["id"] != b["organization"]["id"]
    assert a["api_key"] != b["api_key"]
    assert [o["name"] for o in accounts.organizations(db)] == ["A", "B"]


def test_authenticate_good_key(org: Org) -> None:
    principal = accounts.authenticate(org.db, org.owner.api_key)
    assert principal.organization_id == org.id
    assert principal.member_id == org.owner.id
    assert principal.role is Role.OWNER
    assert principal.worker_id == org.owner.member["worker_id"]
    assert principal.api_key_id is not None
    with org.db.read() as conn:
        used = conn.execute(select(t.api_keys.c.last_used_at)).scalar_one()
    assert used is not None


@pytest.mark.parametrize("key", ["", "nope", "ts_" + "x" * 43, "ts_" + "y" * 300])
def test_authenticate_unknown_or_malformed_key(org: Org, key: str) -> None:
    with pytest.raises(Unauthenticated):
        accounts.authenticate(org.db, key)


def test_authenticate_revoked_key(org: Org) -> None:
    annotator = org.add_member(Role.ANNOTATOR)
    accounts.revoke_key(org.db, annotator.principal, annotator.principal.api_key_id or "")
    with pytest.raises(Unauthenticated):
        accounts.authenticate(org.db, annotator.api_key)
    # other keys are untouched
    assert accounts.authenticate(org.db, org.owner.api_key).member_id == org.owner.id


def test_authenticate_disabled_member(org: Org) -> None:
    annotator = org.add_member(Role.ANNOTATOR)
    accounts.update_member(org.db, org.owner.principal, annotator.id, MemberUpdate(disabled=True))
    with pytest.raises(Unauthenticated):
        accounts.authenticate(org.db, annotator.api_key)
    accounts.update_member(org.db, org.owner.principal, annotator.id, MemberUpdate(disabled=False))
    assert accounts.authenticate(org.db, annotator.api_key).member_id == annotator.id


def test_login_checks_the_argon2_password(org: Org) -> None:
    assert org.owner.password
    assert accounts.login(org.db, org.id, org.owner.member["email"].upper(), org.owner.password)["id"] == org.owner.id
    with pytest.raises(Unauthenticated):
        accounts.login(org.db, org.id, org.owner.member["email"], "wrong password!")
    with pytest.raises(Unauthenticated):
        accounts.login(org.db, org.id, "nobody@example.com", org.owner.password)


# --- members -------------------------------------------------------------------------------------


def test_add_member_with_generated_or_given_password(org: Org) -> None:
    generated = accounts.add_member(org.db, org.owner.principal, MemberCreate(email="a@x.io", role=Role.REVIEWER))
    assert generated["password"]
    assert generated["member"]["role"] == "reviewer" and generated["member"]["worker_id"]
    assert accounts.login(org.db, org.id, "a@x.io", generated["password"])["role"] == "reviewer"

    given = accounts.add_member(
        org.db, org.owner.principal, MemberCreate(email="b@x.io", password="correct horse battery")
    )
    assert given["password"] is None
    assert given["member"]["role"] == "annotator"
    assert accounts.login(org.db, org.id, "b@x.io", "correct horse battery")["id"] == given["member"]["id"]
    assert "correct horse battery" not in _all_stored_text(org.db)


def test_add_member_duplicate_email(org: Org) -> None:
    accounts.add_member(org.db, org.owner.principal, MemberCreate(email="dup@x.io"))
    with pytest.raises(Conflict) as exc:
        accounts.add_member(org.db, org.owner.principal, MemberCreate(email="DUP@x.io"))
    assert exc.value.details == {"field": "email"}


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR])
def test_only_staff_manage_members(org: Org, role: Role) -> None:
    actor = org.actor(role)
    with pytest.raises(Forbidden):
        accounts.add_member(org.db, actor.principal, MemberCreate(email="new@x.io"))
    with pytest.raises(Forbidden):
        accounts.update_member(org.db, actor.principal, actor.id, MemberUpdate(role=Role.ADMIN))
    assert accounts.get_member(org.db, actor.principal, actor.id)["role"] == str(role)


def test_only_owners_make_owners(org: Org) -> None:
    admin = org.actor(Role.ADMIN)
    with pytest.raises(Forbidden):
        accounts.add_member(org.db, admin.principal, MemberCreate(email="boss@x.io", role=Role.OWNER))
    annotator = org.actor(Role.ANNOTATOR)
    with pytest.raises(Forbidden):
        accounts.update_member(org.db, admin.principal, annotator.id, MemberUpdate(role=Role.OWNER))
    # an admin may not touch an owner either
    with pytest.raises(Forbidden):
        accounts.update_member(org.db, admin.principal, org.owner.id, MemberUpdate(name="renamed"))
    with pytest.raises(Forbidden):
        accounts.update_member(org.db, admin.principal, org.owner.id, MemberUpdate(disabled=True))
    # but an admin manages non-owners
    updated = accounts.update_member(org.db, admin.principal, annotator.id, MemberUpdate(role=Role.REVIEWER))
    assert updated["role"] == "reviewer"
    # and an owner makes owners
    promoted = accounts.update_member(org.db, org.owner.principal, admin.id, MemberUpdate(role=Role.OWNER))
    assert promoted["role"] == "owner"
    added = accounts.add_member(org.db, org.owner.principal, MemberCreate(email="o2@x.io", role=Role.OWNER))
    assert added["member"]["role"] == "owner"


def test_last_owner_cannot_be_demoted_or_disabled(org: Org) -> None:
    with pytest.raises(Conflict):
        accounts.update_member(org.db, org.owner.principal, org.owner.id, MemberUpdate(role=Role.ADMIN))
    with pytest.raises(Conflict):
        accounts.update_member(org.db, org.owner.principal, org.owner.id, MemberUpdate(disabled=True))
    assert accounts.get_member(org.db, org.owner.principal, org.owner.id)["role"] == "owner"
    assert accounts.get_member(org.db, org.owner.principal, org.owner.id)["disabled_at"] is None

    # with a second active owner, the first may step down
    second = org.add_member(Role.OWNER)
    demoted = accounts.update_member(org.db, org.owner.principal, org.owner.id, MemberUpdate(role=Role.ADMIN))
    assert demoted["role"] == "admin"
    # and now the second is the last one
    with pytest.raises(Conflict):
        accounts.update_member(org.db, second.principal, second.id, MemberUpdate(disabled=True))


def test_a_disabled_owner_does_not_count_as_the_remaining_owner(org: Org) -> None:
    second = org.add_member(Role.OWNER)
    accounts.update_member(org.db, org.owner.principal, second.id, MemberUpdate(disabled=True))
    with pytest.raises(Conflict):
        accounts.update_member(org.db, org.owner.principal, org.owner.id, MemberUpdate(role=Role.MANAGER))


def test_members_list_and_read(org: Org) -> None:
    annotator = org.actor(Role.ANNOTATOR)
    manager = org.actor(Role.MANAGER)
    members, cursor = accounts.list_members(org.db, manager.principal, cursor=None, limit=10)
    assert cursor is None
    assert {m["id"] for m in members} == {org.owner.id, annotator.id, manager.id}
    assert all(m["worker_id"] for m in members)
    # an annotator sees itself, not the list nor others
    assert accounts.get_member(org.db, annotator.principal, annotator.id)["id"] == annotator.id
    with pytest.raises(Forbidden):
        accounts.list_members(org.db, annotator.principal, cursor=None, limit=10)
    with pytest.raises(Forbidden):
        accounts.get_member(org.db, annotator.principal, org.owner.id)
    with pytest.raises(NotFound):
        accounts.get_member(org.db, manager.principal, "0" * 24)
    me = accounts.me(org.db, annotator.principal)
    assert me["organization_id"] == org.id and me["member"]["id"] == annotator.id


# --- keys ----------------------------------------------------------------------------------------


def test_create_own_key_and_use_it(org: Org) -> None:
    annotator = org.actor(Role.ANNOTATOR)
    created = accounts.create_key(org.db, annotator.principal, ApiKeyCreate(name="laptop"))
    assert created["member_id"] == annotator.id and created["name"] == "laptop"
    assert created["key"].startswith(created["prefix"])
    assert created["key"] not in _all_stored_text(org.db)
    assert accounts.authenticate(org.db, created["key"]).member_id == annotator.id


def test_keys_of_others_need_staff_and_owner_keys_need_an_owner(org: Org) -> None:
    annotator = org.actor(Role.ANNOTATOR)
    admin = org.actor(Role.ADMIN)
    with pytest.raises(Forbidden):
        accounts.create_key(org.db, annotator.principal, ApiKeyCreate(member_id=admin.id))
    with pytest.raises(Forbidden):
        accounts.create_key(org.db, admin.principal, ApiKeyCreate(member_id=org.owner.id))
    made = accounts.create_key(org.db, admin.principal, ApiKeyCreate(member_id=annotator.id))
    assert accounts.authenticate(org.db, made["key"]).member_id == annotator.id
    with pytest.raises(NotFound):
        accounts.create_key(org.db, admin.principal, ApiKeyCreate(member_id="0" * 24))


def test_no_new_key_for_a_disabled_member(org: Org) -> None:
    annotator = org.actor(Role.ANNOTATOR)
    accounts.update_member(org.db, org.owner.principal, annotator.id, MemberUpdate(disabled=True))
    with pytest.raises(InvalidInput) as exc:
        accounts.create_key(org.db, org.owner.principal, ApiKeyCreate(member_id=annotator.id))
    assert exc.value.details == {"field": "member_id"}


def test_revoke_own_key_and_others_keys(org: Org) -> None:
    annotator = org.actor(Role.ANNOTATOR)
    reviewer = org.actor(Role.REVIEWER)
    admin = org.actor(Role.ADMIN)
    reviewer_key_id = reviewer.principal.api_key_id or ""
    # not someone else's, without the right
    with pytest.raises(Forbidden):
        accounts.revoke_key(org.db, annotator.principal, reviewer_key_id)
    assert accounts.authenticate(org.db, reviewer.api_key).member_id == reviewer.id
    # an admin may
    revoked = accounts.revoke_key(org.db, admin.principal, reviewer_key_id)
    assert revoked["revoked_at"] is not None
    again = accounts.revoke_key(org.db, admin.principal, reviewer_key_id)  # idempotent
    assert again["revoked_at"] == revoked["revoked_at"]
    with pytest.raises(Unauthenticated):
        accounts.authenticate(org.db, reviewer.api_key)
    # one's own, always
    accounts.revoke_key(org.db, annotator.principal, annotator.principal.api_key_id or "")
    with pytest.raises(Unauthenticated):
        accounts.authenticate(org.db, annotator.api_key)
    with pytest.raises(NotFound):
        accounts.revoke_key(org.db, admin.principal, "0" * 24)


def test_list_keys_shows_annotators_only_their_own(org: Org) -> None:
    annotator = org.actor(Role.ANNOTATOR)
    admin = org.actor(Role.ADMIN)
    own, _ = accounts.list_keys(org.db, annotator.principal, cursor=None, limit=50)
    assert {k["member_id"] for k in own} == {annotator.id}
    below, _ = accounts.list_keys(org.db, admin.principal, cursor=None, limit=50)
    assert {k["member_id"] for k in below} == {annotator.id, admin.id}  # not the owner's: out of an admin's reach
    everyone, _ = accounts.list_keys(org.db, org.owner.principal, cursor=None, limit=50)
    assert {k["member_id"] for k in everyone} == {annotator.id, admin.id, org.owner.id}
    assert all("key_hash" in k for k in everyone)  # the service returns rows; the API hides the hash

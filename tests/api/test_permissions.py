"""Roles: every route, as every role, is allowed or 403 exactly as one permission table says.

The table is keyed by operation_id and names the policy action each route needs (the source of truth
for who holds an action is ``services/policy.py`` ALLOWED). A route missing from the table fails the
test, so a new route forces a decision. A forbidden call changes nothing.
"""

from __future__ import annotations

import pytest

from truthset.config import Settings
from truthset.domain import Role
from truthset.services.policy import ALLOWED, Action

from .helpers import API, Api, Org, api_routes, assert_error, build_world, call_for, send, snapshot

#: operation_id -> the action it needs (None: any member). Where a route acts on another member's
#: object (get_member, create_key, revoke_key), the walk uses another member's, so the table names
#: the action needed for that; acting on one's own is checked in test_own_member_and_keys below.
PERMISSIONS: dict[str, Action | None] = {
    "health": None,
    "get_me": None,
    "list_members": Action.READ_MEMBERS,
    "add_member": Action.MANAGE_MEMBERS,
    "get_member": Action.READ_MEMBERS,
    "update_member": Action.MANAGE_MEMBERS,
    "list_keys": None,
    "create_key": Action.MANAGE_KEYS,
    "revoke_key": Action.MANAGE_KEYS,
    "list_workers": Action.READ_MEMBERS,
    "list_question_types": None,
    "create_project": Action.MANAGE_PROJECTS,
    "list_projects": Action.READ_PROJECTS,
    "get_project": Action.READ_PROJECTS,
    "update_project": Action.MANAGE_PROJECTS,
    "create_batch": Action.MANAGE_TASKS,
    "list_batches": Action.READ_TASKS,
    "get_batch": Action.READ_TASKS,
    "finalize_batch": Action.MANAGE_TASKS,
    "cancel_batch": Action.MANAGE_TASKS,
    "export_project": Action.READ_TASKS,
    "create_task": Action.MANAGE_TASKS,
    "import_tasks": Action.MANAGE_TASKS,
    "list_tasks": Action.READ_TASKS,
    "get_task": Action.READ_TASKS,
    "cancel_task": Action.MANAGE_TASKS,
    "list_task_responses": Action.READ_TASKS,
    "submit_response": Action.ANNOTATE,
    "next_task": Action.ANNOTATE,
    "skip_assignment": Action.ANNOTATE,
    "release_assignment": Action.ANNOTATE,
    "upload_media": Action.UPLOAD_MEDIA,
    "get_media": Action.READ_MEDIA,
}

PUBLIC = {f"{API}/openapi.json", f"{API}/docs"}


def test_every_route_is_in_the_permission_table(api: Api) -> None:
    operations = {r.operation_id for r in api_routes(api.app) if r.path not in PUBLIC}
    assert None not in operations, "every API route needs an operation_id"
    missing = operations - set(PERMISSIONS)
    assert not missing, f"decide who may call {sorted(missing)}: add them to PERMISSIONS"
    assert not set(PERMISSIONS) - operations, "PERMISSIONS names routes that no longer exist"


@pytest.mark.parametrize("role", list(Role))
def test_each_role_is_allowed_or_forbidden_as_the_table_says(
    api: Api, org: Org, settings: Settings, role: Role
) -> None:
    caller = org.actor(role)
    world = build_world(org, settings, worker=caller)
    assert api.get(f"{API}/me", auth=caller).json()["member"]["role"] == role  # also records last use
    for route in api_routes(api.app):
        if route.path in PUBLIC:
            continue
        assert route.operation_id in PERMISSIONS, f"{route}: add it to PERMISSIONS"
        action = PERMISSIONS[route.operation_id]
        call = call_for(route, world)
        before = snapshot(org.db, org.id, settings.media_dir)
        response = send(api, route, call, caller)
        if action is None or role in ALLOWED[action]:
            assert 200 <= response.status_code < 300, f"{role} {route}: {response.status_code} {response.text}"
        else:
            error = assert_error(response, 403, "forbidden")
            assert str(role) in error["message"], error
            assert snapshot(org.db, org.id, settings.media_dir) == before, f"{role} {route} changed something"


def test_own_member_and_keys(api: Api, org: Org) -> None:
    """Any member reads itself and manages its own keys, whatever its role."""
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        me = org.actor(role)
        assert api.get(f"{API}/members/{me.id}", auth=me).json()["id"] == me.id
        created = api.post(f"{API}/keys", auth=me, json={"name": "laptop"})
        assert created.status_code == 201 and created.json()["member_id"] == me.id
        assert created.json()["key"].startswith("ts_")
        listed = api.get(f"{API}/keys", auth=me).json()["items"]
        assert {k["member_id"] for k in listed} == {me.id} and len(listed) == 2
        assert "key" not in listed[0] and "key_hash" not in listed[0]
        revoked = api.delete(f"{API}/keys/{created.json()['id']}", auth=me)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        assert_error(api.get(f"{API}/me", auth=created.json()["key"]), 401, "unauthenticated")


def test_only_owners_make_or_touch_owners(api: Api, org: Org) -> None:
    admin = org.actor(Role.ADMIN)
    before = snapshot(org.db, org.id)
    assert_error(api.post(f"{API}/members", auth=admin, json={"email": "x@y.example", "role": "owner"}), 403)
    assert_error(api.patch(f"{API}/members/{org.owner.id}", auth=admin, json={"name": "demoted"}), 403)
    assert_error(api.patch(f"{API}/members/{admin.id}", auth=admin, json={"role": "owner"}), 403)
    assert_error(api.post(f"{API}/keys", auth=admin, json={"member_id": org.owner.id}), 403)
    assert snapshot(org.db, org.id) == before
    # the owner may; and the last owner cannot stop being one
    r = api.post(f"{API}/members", auth=org.owner, json={"email": "co@y.example", "role": "owner"})
    assert r.status_code == 201 and r.json()["role"] == "owner" and r.json()["password"]
    assert api.patch(f"{API}/members/{r.json()['id']}", auth=org.owner, json={"role": "admin"}).status_code == 200
    assert_error(api.patch(f"{API}/members/{org.owner.id}", auth=org.owner, json={"role": "admin"}), 409, "conflict")
    assert_error(api.patch(f"{API}/members/{org.owner.id}", auth=org.owner, json={"disabled": True}), 409)


def test_someone_elses_lease_is_not_found(api: Api, org: Org, settings: Settings) -> None:
    """An assignment belongs to its worker: another member of the same org gets 404, not 403."""
    world = build_world(org, settings, worker=org.actor(Role.ANNOTATOR))
    other = org.actor(Role.MANAGER)
    for action in ("skip", "release"):
        r = api.post(f"{API}/assignments/{world.skip_assignment['id']}/{action}", auth=other)
        assert_error(r, 404, "not_found")

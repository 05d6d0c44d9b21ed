"""Roles: every route, as every role, is allowed or 403 exactly as one permission table says.

The table is keyed by operation_id and names the policy action each route needs (the source of truth
for who holds an action is ``services/policy.py`` ALLOWED, and REACH for actions on members and keys).
A route missing from the table fails the test, so a new route forces a decision. A forbidden call
changes nothing.

Actions on members and keys are walked over every (actor role, target role, action) triple against
the written-out rule :data:`EXPECTED_REACH`.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from truthset.config import Settings
from truthset.domain import Role
from truthset.services.policy import ALLOWED, REACH, Action, MemberAction

from .helpers import API, Actor, Api, Org, api_routes, assert_error, build_world, call_for, send, snapshot

#: operation_id -> the action it needs (None: any member). Where a route acts on another member's
#: object (get_member, create_key, revoke_key), the walk uses another member's (an annotator), so the
#: table names the action needed for that; acting on one's own is checked in test_own_member_and_keys.
PERMISSIONS: dict[str, Action | MemberAction | None] = {
    "health": None,
    "get_me": None,
    "list_members": Action.READ_MEMBERS,
    "add_member": MemberAction.ADD_MEMBER,
    "get_member": Action.READ_MEMBERS,
    "update_member": MemberAction.RENAME_MEMBER,
    "reset_member_password": MemberAction.RESET_PASSWORD,
    "change_my_password": None,  # every member changes their own
    "create_organization": Action.CREATE_ORGANIZATION,
    "list_keys": None,
    "create_key": MemberAction.CREATE_KEY,
    "revoke_key": MemberAction.REVOKE_KEY,
    "list_workers": Action.READ_MEMBERS,
    "list_question_types": None,
    "create_project": Action.MANAGE_PROJECTS,
    "validate_spec": Action.MANAGE_PROJECTS,
    "delete_project": Action.MANAGE_PROJECTS,
    "delete_project_with_data": Action.DELETE_PROJECT_DATA,
    "pause_batch": Action.MANAGE_TASKS,
    "resume_batch": Action.MANAGE_TASKS,
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
    "start_import": Action.MANAGE_TASKS,
    "list_tasks": Action.READ_TASKS,
    "get_task": Action.READ_TASKS,
    "cancel_task": Action.MANAGE_TASKS,
    "bulk_task_action": Action.MANAGE_TASKS,
    "list_task_responses": Action.READ_TASKS,
    "submit_response": Action.ANNOTATE,
    "next_task": Action.ANNOTATE,
    "skip_assignment": Action.ANNOTATE,
    "release_assignment": Action.ANNOTATE,
    "upload_media": Action.UPLOAD_MEDIA,
    "get_media": Action.READ_MEDIA,
    "get_media_thumbnail": Action.READ_MEDIA,
    "list_media": Action.LIST_MEDIA,
    "delete_media": Action.DELETE_MEDIA,
    "prune_media": Action.DELETE_MEDIA,
    "project_agreement": Action.READ_QUALITY,
    "project_workers": Action.READ_QUALITY,
    "project_dashboard": Action.READ_QUALITY,
    "worker_stats": None,  # every member reads their own figures (the walk asks for the caller's)
    "refit_project": Action.MANAGE_PROJECTS,
    "quality_models": Action.READ_QUALITY,
    "list_queue": Action.READ_TASKS,
    "rerank_queue": Action.MANAGE_PROJECTS,
    "next_review": Action.REVIEW,
    "review_task": Action.REVIEW,
    "skip_review": Action.REVIEW,
    "list_task_reviews": Action.READ_TASKS,
    "task_history": Action.READ_TASKS,
    "mark_gold": Action.MANAGE_TASKS,
    "unmark_gold": Action.MANAGE_TASKS,
    "list_gold": Action.MANAGE_TASKS,
    "import_gold": Action.MANAGE_TASKS,
    "reinstate_worker": Action.MANAGE_PROJECTS,
    "upload_predictions": Action.MANAGE_TASKS,
    "start_llm_labeling": Action.MANAGE_TASKS,
    "start_model_server_predictions": Action.MANAGE_TASKS,
    "task_predictions": Action.READ_TASKS,
    "train_model": Action.MANAGE_TASKS,
    "list_models": Action.READ_QUALITY,
    "list_jobs": None,  # every member lists jobs: managers and up all of them, others the ones they started
    "get_job": Action.READ_JOBS,  # the walk's jobs were started by the owner (others read their own)
    "cancel_job": Action.MANAGE_JOBS,
    "create_export": Action.READ_TASKS,
    "download_export": Action.READ_TASKS,
    **dict.fromkeys(
        [
            "create_webhook",
            "list_webhooks",
            "get_webhook",
            "update_webhook",
            "delete_webhook",
            "rotate_webhook_secret",
            "list_webhook_deliveries",
            "get_webhook_delivery",
            "replay_webhook_delivery",
        ],
        Action.MANAGE_WEBHOOKS,
    ),
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
        if action is None or _allowed(role, action):
            assert 200 <= response.status_code < 300, f"{role} {route}: {response.status_code} {response.text}"
        else:
            error = assert_error(response, 403, "forbidden")
            assert str(role) in error["message"], error
            assert snapshot(org.db, org.id, settings.media_dir) == before, f"{role} {route} changed something"


def _allowed(role: Role, action: Action | MemberAction) -> bool:
    if isinstance(action, MemberAction):  # the walk acts on an annotator (world.member, a new annotator)
        return Role.ANNOTATOR in EXPECTED_REACH[role]
    return role in ALLOWED[action]


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


# --- who may act on whom: every (actor role, target role, action) --------------------------------

#: The rule, written out (the policy's REACH must say the same): the roles each role may act on,
#: alike for every action on members and keys. Nobody below owner acts on an owner; an admin acts
#: on the roles below admin; managers, reviewers and annotators act on nobody (but their own keys).
EXPECTED_REACH: dict[Role, set[Role]] = {
    Role.OWNER: {Role.OWNER, Role.ADMIN, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR},
    Role.ADMIN: {Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR},
    Role.MANAGER: set(),
    Role.REVIEWER: set(),
    Role.ANNOTATOR: set(),
}

#: Each action on a target of some role, as an API call. ``change_role_to`` turns a manager into the
#: target role; ``change_role_from`` turns a member of the target role into an annotator (reviewer).
TARGET_ACTIONS = [
    "add_member",
    "rename_member",
    "change_role_from",
    "change_role_to",
    "disable_member",
    "enable_member",
    "create_key",
    "list_keys",
    "revoke_key",
]


def test_the_policy_table_is_the_written_rule() -> None:
    assert {role: set(REACH[role]) for role in Role} == EXPECTED_REACH


def _prepare(api: Api, org: Org, action: str, target_role: Role) -> Callable[[Actor], httpx.Response | bool]:
    """Set up a fresh target of ``target_role`` for ``action``; return the call, made as an actor.

    ``list_keys`` answers whether the target's key is listed (it is listed exactly when allowed).
    """
    if action == "add_member":
        body = {"email": f"new-{target_role}@{org.id}.example", "role": str(target_role)}
        return lambda actor: api.post(f"{API}/members", auth=actor, json=body)
    if action == "change_role_to":
        manager = org.add_member(Role.MANAGER)
        return lambda actor: api.patch(f"{API}/members/{manager.id}", auth=actor, json={"role": str(target_role)})
    target = org.add_member(target_role)
    url = f"{API}/members/{target.id}"
    (key_id,) = [k["id"] for k in api.get(f"{API}/keys", auth=target).json()["items"] if k["member_id"] == target.id]
    if action == "enable_member":
        assert api.patch(url, auth=org.owner, json={"disabled": True}).status_code == 200
    other_role = "reviewer" if target_role is Role.ANNOTATOR else "annotator"
    calls: dict[str, Callable[[Actor], httpx.Response | bool]] = {
        "rename_member": lambda actor: api.patch(url, auth=actor, json={"name": "renamed"}),
        "change_role_from": lambda actor: api.patch(url, auth=actor, json={"role": other_role}),
        "disable_member": lambda actor: api.patch(url, auth=actor, json={"disabled": True}),
        "enable_member": lambda actor: api.patch(url, auth=actor, json={"disabled": False}),
        "create_key": lambda actor: api.post(f"{API}/keys", auth=actor, json={"name": "x", "member_id": target.id}),
        "revoke_key": lambda actor: api.delete(f"{API}/keys/{key_id}", auth=actor),
        "list_keys": lambda actor: key_id in _all_key_ids(api, actor),
    }
    return calls[action]


def _all_key_ids(api: Api, actor: Actor) -> set[str]:
    seen: set[str] = set()
    cursor = None
    while True:
        page = api.get(f"{API}/keys", auth=actor, params={"cursor": cursor} if cursor else {}).json()
        seen |= {k["id"] for k in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


@pytest.mark.parametrize("action", TARGET_ACTIONS)
@pytest.mark.parametrize("actor_role", list(Role))
def test_who_may_act_on_whom(api: Api, org: Org, actor_role: Role, action: str) -> None:
    actor = org.actor(actor_role)
    for target_role in Role:
        expected = target_role in EXPECTED_REACH[actor_role]
        where = f"{actor_role} -> {action} -> {target_role}"
        call = _prepare(api, org, action, target_role)
        before = snapshot(org.db, org.id)
        response = call(actor)
        if isinstance(response, bool):
            assert response is expected, where
        elif expected:
            assert 200 <= response.status_code < 300, f"{where}: {response.status_code} {response.text}"
        else:
            error = assert_error(response, 403, "forbidden")
            assert str(actor_role) in error["message"] and str(target_role) in error["message"], (where, error)
            assert snapshot(org.db, org.id) == before, f"{where} changed something"


@pytest.mark.parametrize("role", list(Role))
def test_acting_on_oneself(api: Api, org: Org, role: Role) -> None:
    """Everyone looks after their own keys; changing oneself follows the table like anyone else."""
    me = org.actor(role)
    created = api.post(f"{API}/keys", auth=me, json={"name": "mine"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] in {k["id"] for k in api.get(f"{API}/keys", auth=me).json()["items"]}
    assert api.delete(f"{API}/keys/{created.json()['id']}", auth=me).status_code == 200
    renamed = api.patch(f"{API}/members/{me.id}", auth=me, json={"name": "me"})
    if role in EXPECTED_REACH[role]:
        assert renamed.status_code == 200, renamed.text
    else:
        assert_error(renamed, 403, "forbidden")

"""Tenants never see each other: walk EVERY route of the app as the owner of another organization.

The route list comes from the app's own route table, so a new route is covered automatically (and
fails until ROUTE_CALLS in conftest.py says how to call it). For a route with an object id in its
path, org B's owner gets exactly the 404 a random id gets, and org A's rows do not change. Every
response is searched for org A's ids: none may leak, whatever the route.
"""

from __future__ import annotations

import json
from typing import Any

from truthset.config import Settings
from truthset.storage.ids import new_id

from .helpers import (
    ANSWER,
    API,
    PNG,
    Api,
    Org,
    Route,
    api_routes,
    assert_error,
    build_world,
    call_for,
    ids_in,
    send,
    snapshot,
)

PUBLIC = {"/healthz", f"{API}/openapi.json", f"{API}/docs"}


def _normalise(message: str, ids: dict[str, str]) -> str:
    for real in ids.values():
        message = message.replace(real, "<id>")
    return message


def _request_text(call: Any) -> str:
    return json.dumps([call.path, call.params, call.json]) + (call.content or b"").decode()


def test_every_route_hides_other_tenants_objects(api: Api, org: Org, other_org: Org, settings: Settings) -> None:
    world = build_world(org, settings, worker=org.actor("annotator"))
    intruder = other_org.owner
    api.get(f"{API}/me", auth=intruder)  # the first use of a key records last_used_at: do it up front
    api.get(f"{API}/me", auth=org.owner)
    before = snapshot(org.db, org.id, settings.media_dir)
    a_ids = ids_in(before) - {org.id}
    walked = 0
    for route in api_routes(api.app):
        if route.path in PUBLIC:
            continue
        walked += 1
        call = call_for(route, world)
        response = send(api, route, call, intruder)
        assert response.status_code < 500, f"{route}: {response.text}"
        if route.path_params:
            error = assert_error(response, 404, "not_found")
            missing = {name: new_id() for name in call.path}
            call.path, real = missing, call.path
            twin = send(api, route, call, intruder)
            twin_error = assert_error(twin, 404, "not_found")
            assert _normalise(error["message"], real) == _normalise(twin_error["message"], missing), route
            assert error["details"] == twin_error["details"], route
            call.path = real
        elif route.operation_id in {"create_key"}:  # the body names org A's member
            assert_error(response, 404, "not_found")
        sent = _request_text(call)
        leaked = {i for i in a_ids if i in response.text and i not in sent}
        assert not leaked, f"{route} leaked org A ids {leaked}: {response.text[:500]}"
        assert snapshot(org.db, org.id, settings.media_dir) == before, f"{route} changed org A"
    assert walked >= 30


def test_list_routes_never_show_other_tenants_objects(api: Api, org: Org, other_org: Org, settings: Settings) -> None:
    world = build_world(org, settings)
    mine = build_world(other_org, settings)
    a_ids = ids_in(snapshot(org.db, org.id)) - {org.id}
    me = other_org.owner
    own_ids = {mine.project["id"], mine.task["id"], mine.batch["id"], mine.member.id}
    lists = [
        f"{API}/members",
        f"{API}/keys",
        f"{API}/workers",
        f"{API}/projects?include_archived=true",
        f"{API}/tasks",
        f"{API}/tasks?project_id={world.project['id']}",
        f"{API}/tasks?batch_id={world.batch['id']}",
        f"{API}/tasks?unique_id={world.task['unique_id']}" if world.task["unique_id"] else f"{API}/tasks?limit=5",
        f"{API}/tasks?status=pending",
        f"{API}/projects/{mine.project['id']}/batches",
    ]
    seen: set[str] = set()
    for url in lists:
        response = api.get(url, auth=me)
        assert response.status_code == 200, (url, response.text)
        body = response.json()
        seen |= {item["id"] for item in body["items"]}
        named = {world.project["id"], world.batch["id"]}  # ids the URL itself names may be echoed
        assert not {i for i in a_ids - named if i in response.text}, url
        if "project_id" in url or "batch_id" in url:
            assert body["items"] == [], url
    assert own_ids <= seen  # the lists do work: B sees its own objects
    # An export of one's own project has only one's own tasks.
    export = api.get(f"{API}/projects/{mine.project['id']}/export?all_statuses=true", auth=me)
    assert export.status_code == 200
    assert not {i for i in a_ids if i in export.text}


def test_ids_in_bodies_and_queries_do_not_cross_tenants(api: Api, org: Org, other_org: Org, settings: Settings) -> None:
    """Ids of org A given in a body or query on org B's own objects: not found, and nothing changes."""
    world = build_world(org, settings)
    mine = build_world(other_org, settings)
    me = other_org.owner
    api.get(f"{API}/me", auth=me)
    before = snapshot(org.db, org.id, settings.media_dir)
    mine_before = snapshot(other_org.db, other_org.id)

    # a task in B's project, placed in A's batch
    r = api.post(
        f"{API}/projects/{mine.project['id']}/tasks",
        auth=me,
        json={"data": {"text": "x"}, "batch_id": world.batch["id"]},
    )
    assert_error(r, 404, "not_found")
    # a bulk import into A's batch
    r = api.post(
        f"{API}/projects/{mine.project['id']}/tasks/bulk?batch_id={world.batch['id']}",
        auth=me,
        content=b'{"data": {"text": "x"}}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert_error(r, 404, "not_found")
    # an answer to B's task, claiming A's assignment
    r = api.post(
        f"{API}/tasks/{mine.answer_task['id']}/responses",
        auth=me,
        json={"answer": ANSWER, "assignment_id": world.skip_assignment["id"]},
    )
    assert_error(r, 404, "not_found")
    # an API key for A's member
    r = api.post(f"{API}/keys", auth=me, json={"member_id": world.member.id})
    assert_error(r, 404, "not_found")
    # an export of B's project filtered on A's batch: empty
    r = api.get(f"{API}/projects/{mine.project['id']}/export?batch_id={world.batch['id']}&all_statuses=true", auth=me)
    assert r.status_code == 200 and r.text == ""
    # a unique_id that exists in A is free in B (unique per organization), and A's task is untouched
    a_unique = "shared-unique-id"
    org.make_task(world.project["id"], "a's", unique_id=a_unique)
    before = snapshot(org.db, org.id, settings.media_dir)
    r = api.post(
        f"{API}/projects/{mine.project['id']}/tasks", auth=me, json={"data": {"text": "b's"}, "unique_id": a_unique}
    )
    assert r.status_code == 201, r.text
    assert r.json()["created"] is True and r.json()["data"] == {"text": "b's"}
    # the same image in both organizations: B's upload does not reveal A's row
    r = api.post(f"{API}/media", auth=me, files={"file": ("same.png", PNG, "image/png")})
    assert r.status_code == 201 and r.json()["id"] != world.media["id"]
    assert snapshot(org.db, org.id) == {k: v for k, v in before.items() if k != "media files"}
    assert len(snapshot(other_org.db, other_org.id)["tasks"]) == len(mine_before["tasks"]) + 1


def _public_or_401(api: Api, route: Route, headers: dict[str, str]) -> None:
    response = api.request(route.method, route.path, headers=headers)
    if route.path in PUBLIC:
        assert response.status_code == 200, (route, response.status_code)
    else:
        assert_error(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer", route


BAD_AUTH = [
    {},
    {"Authorization": "Bearer ts_not-a-real-key"},
    {"Authorization": "Bearer sk_live_wrong_prefix"},
    {"Authorization": "Basic %%%not-base64"},
    {"Authorization": "Token abc"},
]


def test_every_route_needs_a_valid_key(api: Api, org: Org) -> None:
    routes = api_routes(api.app)
    assert {r.path for r in routes} >= PUBLIC
    for headers in BAD_AUTH:
        for route in routes:
            _public_or_401(api, route, headers)


def test_revoked_keys_and_disabled_members_are_rejected_everywhere(api: Api, org: Org) -> None:
    revoked = org.add_member("manager")
    disabled = org.add_member("annotator")
    assert api.get(f"{API}/me", auth=revoked).status_code == 200
    key_id = next(k["id"] for k in api.get(f"{API}/keys", auth=revoked).json()["items"])
    assert api.delete(f"{API}/keys/{key_id}", auth=revoked).status_code == 200
    r = api.patch(f"{API}/members/{disabled.id}", auth=org.owner, json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    for route in api_routes(api.app):
        for actor in (revoked, disabled):
            _public_or_401(api, route, {"Authorization": f"Bearer {actor.api_key}"})

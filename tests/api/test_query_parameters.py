"""A query parameter a route does not take is refused (422 naming it), never silently ignored.

A misspelt filter (``stauts=pending``) or an unsupported sort used to return the unfiltered list
as if it had been applied. Every API route now compares the query with the parameters it
declares; ``list_tasks`` also takes the ``metadata.KEY`` family.
"""

from __future__ import annotations

import httpx
import pytest

from truthset.config import Settings

from .helpers import API, Api, Org, World, api_routes, assert_error, build_world, call_for, send, snapshot


@pytest.fixture
def world(org: Org, settings: Settings) -> World:
    return build_world(org, settings)


def _unknown(response: httpx.Response, *names: str) -> None:
    error = assert_error(response, 422, "invalid_input")
    assert error["details"]["field"] == names[0], error
    assert [e["field"] for e in error["details"]["errors"]] == list(names), error
    for name in names:
        assert name in error["message"], error


def test_unknown_filter_and_sort_parameters_are_refused_naming_them(api: Api, world: World) -> None:
    owner = world.org.owner
    _unknown(api.get(f"{API}/tasks?sort_by=created_at", auth=owner), "sort_by")
    # ``sort`` is a parameter of list_tasks (the task browser's sorts): an unsupported one is refused
    assert assert_error(api.get(f"{API}/tasks?sort=created_at", auth=owner), 422)["details"]["field"] == "query.sort"
    _unknown(api.get(f"{API}/tasks?stauts=pending&order=desc&limit=5", auth=owner), "stauts", "order")
    _unknown(api.get(f"{API}/projects?project_id=x", auth=owner), "project_id")
    _unknown(api.get(f"{API}/me?verbose=1", auth=owner), "verbose")
    assert_error(api.get(f"{API}/tasks?sort=created_at", auth="ts_wrong"), 401)  # credentials come first


def test_metadata_filters_are_taken_only_where_they_filter(api: Api, world: World) -> None:
    owner = world.org.owner
    assert api.get(f"{API}/tasks?metadata.lang=en", auth=owner).status_code == 200
    _unknown(api.get(f"{API}/tasks?metadata.=en", auth=owner), "metadata.")  # no key: not a filter
    _unknown(api.get(f"{API}/projects?metadata.lang=en", auth=owner), "metadata.lang")
    _unknown(api.get(f"{API}/projects/{world.project['id']}/batches?metadata.lang=en", auth=owner), "metadata.lang")


def test_every_declared_parameter_is_still_taken(api: Api, world: World) -> None:
    owner = world.org.owner
    params = {
        "project_id": world.project["id"],
        "batch_id": world.batch["id"],
        "status": "pending",
        "unique_id": "x",
        "created_after": "2020-01-01T00:00:00Z",
        "created_before": "2999-01-01T00:00:00Z",
        "updated_after": "2020-01-01T00:00:00Z",
        "updated_before": "2999-01-01T00:00:00Z",
        "completed_after": "2020-01-01T00:00:00Z",
        "completed_before": "2999-01-01T00:00:00Z",
        "limit": "10",
        "metadata.lang": "en",
    }
    assert api.get(f"{API}/tasks", auth=owner, params=params).status_code == 200
    export = {"status": "pending", "batch_id": world.batch["id"], "all_statuses": "false"}
    assert api.get(f"{API}/projects/{world.project['id']}/export", auth=owner, params=export).status_code == 200
    assert api.get(f"{API}/projects", auth=owner, params={"include_archived": "true", "limit": 5}).status_code == 200


def test_every_route_refuses_an_unknown_parameter_before_doing_anything(
    api: Api, org: Org, world: World, settings: Settings
) -> None:
    """The walk over every API route: 422 naming the parameter, and nothing stored or changed."""
    before = snapshot(org.db, org.id, settings.media_dir)
    for route in api_routes(api.app):
        if not route.path.startswith(API) or route.path.endswith(("/openapi.json", "/docs")):
            continue  # the API's own routes, not the health check or the document
        call = call_for(route, world)
        call.params = {**call.params, "no_such_parameter": "1"}
        _unknown(send(api, route, call, org.owner), "no_such_parameter")
    assert snapshot(org.db, org.id, settings.media_dir) == before

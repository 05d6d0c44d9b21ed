"""Bad input never gets a 500: a table of bad requests across every route, plus a bounded fuzz.

Every error has the one shape ``{"error": {"code", "message", "details"}}`` (pinned below); a
validation error names the field. The app re-raises unexpected exceptions in these tests, so a 500
fails with its traceback.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from truthset.config import Settings
from truthset.errors import Busy

from .helpers import ANSWER, API, PNG, Api, Org, World, api_routes, assert_error, build_world, call_for, send


@pytest.fixture
def world(org: Org, settings: Settings) -> World:
    return build_world(org, settings)


def test_the_error_shape_is_pinned(api: Api, world: World) -> None:
    """Every kind of error: exactly {"error": {"code", "message", "details"}}, JSON, with its code."""
    owner = world.org.owner
    annotator = world.org.actor("annotator")
    cases = [
        (api.get(f"{API}/me"), 401, "unauthenticated"),
        (api.get(f"{API}/members", auth=annotator), 403, "forbidden"),
        (api.get(f"{API}/projects/0123456789abcdef01234567", auth=owner), 404, "not_found"),
        (api.get(f"{API}/no-such-route", auth=owner), 404, "not_found"),
        (api.request("PUT", f"{API}/projects", auth=owner), 405, "method_not_allowed"),
        (api.post(f"{API}/projects/{world.project['id']}/batches", auth=owner, json={"name": "main"}), 409, "conflict"),
        (api.post(f"{API}/projects", auth=owner, json={"name": ""}), 422, "invalid_input"),
        (api.get(f"{API}/tasks?limit=0", auth=owner), 422, "invalid_input"),
    ]
    for response, status, code in cases:
        assert response.headers["content-type"] == "application/json", response.headers
        error = assert_error(response, status, code)
        assert response.json() == {"error": {"code": code, "message": error["message"], "details": error["details"]}}
    validation = assert_error(cases[-2][0], 422)
    assert validation["message"].startswith("name: ")
    assert validation["details"] == {
        "field": "name",
        "errors": [
            {"field": "name", "message": validation["details"]["errors"][0]["message"], "type": "string_too_short"},
            {"field": "spec", "message": "Field required", "type": "missing"},
        ],
    }


def test_anonymous_api_calls_get_401_before_their_body_is_read(make_api: Any, settings: Settings) -> None:
    """No key and no session: 401, never a validation error or a 413 that reveals the body was read."""
    api = make_api(settings.model_copy(update={"max_body_bytes": 1024}))
    for response in (
        api.post(f"{API}/projects", content=b"{not json", headers={"Content-Type": "application/json"}),
        api.post(f"{API}/projects", json={"name": ""}),
        api.post(f"{API}/projects", content=b"x" * 5000, headers={"Content-Type": "application/json"}),
        api.get(f"{API}/tasks?limit=0"),
    ):
        assert_error(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"
    assert api.get(f"{API}/openapi.json").status_code == 200  # the API description stays public
    # a wrong key is not anonymous: the app itself refuses it, in the same shape
    assert_error(api.get(f"{API}/projects", auth="ts_not_a_key"), 401, "unauthenticated")


def test_nul_in_the_query_names_the_field_like_every_422(api: Api, world: World) -> None:
    error = assert_error(api.get(f"{API}/tasks?unique_id=a%00b", auth=world.org.owner), 422, "invalid_input")
    assert error["details"]["field"] == "query" and error["details"]["errors"][0]["field"] == "query"


def test_a_busy_database_is_503_with_retry_after(api: Api) -> None:
    """A write that lost a race (truthset.errors.Busy, raised by the storage layer) asks for a retry."""

    @api.app.get("/test-busy")
    def busy() -> None:
        raise Busy("the database is busy with a conflicting write; try again")

    response = api.get("/test-busy")
    error = assert_error(response, 503, "busy")
    assert response.headers["retry-after"] == "1" and "try again" in error["message"]


def test_too_large_bodies_are_413(make_api: Any, org: Org, settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2048, "max_import_bytes": 4096, "max_upload_bytes": 3000})
    api = make_api(small)
    project = org.make_project()
    owner = org.owner
    big_json = {"name": "p", "description": "x" * 3000, "spec": {"fields": [], "questions": []}}
    error = assert_error(api.post(f"{API}/projects", auth=owner, json=big_json), 413, "too_large")
    assert error["details"] == {"limit": 2048}
    # streamed without a Content-Length: counted as it arrives
    chunks = [b'{"data": {"text": "%d' % n + b"x" * 999 + b'"}}\n' for n in range(5)]  # 5 different tasks

    async def stream() -> Any:
        for chunk in chunks:
            yield chunk

    r = api.post(
        f"{API}/projects/{project['id']}/tasks/bulk",
        auth=owner,
        content=stream(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert_error(r, 413, "too_large")
    assert org.make_tasks  # nothing stored:
    assert api.get(f"{API}/tasks?project_id={project['id']}", auth=owner).json()["items"] == []
    # the same import under the limit goes through
    r = api.post(
        f"{API}/projects/{project['id']}/tasks/bulk",
        auth=owner,
        content=b"".join(chunks[:3]),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200 and r.json()["created"] == 3
    assert_error(api.post(f"{API}/media", auth=owner, files={"file": ("big.png", PNG + b"\0" * 4000)}), 413)
    r = api.post(
        f"{API}/projects/{project['id']}/tasks",
        auth=owner,
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": "999999"},
    )
    assert r.status_code == 413


def _bad_requests(w: World) -> list[tuple[str, str, str, dict[str, Any], int, str | None]]:
    """(name, method, url, request kwargs, status, the field the error must name or None)."""
    p, t, b = w.project["id"], w.task["id"], w.batch["id"]
    spec = {"fields": [{"name": "text", "type": "text"}], "questions": [{"name": "q", "type": "text"}]}
    bulk = {"Content-Type": "application/x-ndjson"}
    return [
        (
            "malformed json",
            "POST",
            "/projects",
            {"content": b"{nope", "headers": {"Content-Type": "application/json"}},
            422,
            "body",
        ),
        ("json array body", "POST", "/projects", {"json": [1, 2]}, 422, "body"),
        ("unknown field", "POST", "/projects", {"json": {"name": "p", "spec": spec, "colour": "red"}}, 422, "colour"),
        ("wrong type", "POST", "/projects", {"json": {"name": 5, "spec": spec}}, 422, "name"),
        (
            "bad overlap",
            "POST",
            "/projects",
            {"json": {"name": "p", "spec": spec, "quality": {"overlap": 0}}},
            422,
            "quality.overlap",
        ),
        (
            "bad lease",
            "POST",
            "/projects",
            {"json": {"name": "p", "spec": spec, "lease_seconds": 1}},
            422,
            "lease_seconds",
        ),
        (
            "label one option",
            "POST",
            "/projects",
            {"json": {"name": "p", "spec": {**spec, "questions": [{"name": "q", "type": "label", "options": ["a"]}]}}},
            422,
            "spec.questions[0].options",
        ),
        (
            "unknown question type",
            "POST",
            "/projects",
            {"json": {"name": "p", "spec": {**spec, "questions": [{"name": "q", "type": "nope"}]}}},
            422,
            "spec.questions[0].type",
        ),
        (
            "unknown question key",
            "POST",
            "/projects",
            {"json": {"name": "p", "spec": {**spec, "questions": [{"name": "q", "type": "text", "bogus": 1}]}}},
            422,
            "spec.questions[0].bogus",
        ),
        (
            "bad rating scale",
            "POST",
            "/projects",
            {
                "json": {
                    "name": "p",
                    "spec": {**spec, "questions": [{"name": "q", "type": "rating", "min": 5, "max": 1}]},
                }
            },
            422,
            "spec.questions[0]",
        ),
        (
            "bad field type",
            "POST",
            "/projects",
            {"json": {"name": "p", "spec": {**spec, "fields": [{"name": "f", "type": "video"}]}}},
            422,
            "spec.fields",
        ),
        (
            "duplicate names",
            "POST",
            "/projects",
            {"json": {"name": "p", "spec": {**spec, "fields": [{"name": "f", "type": "text"}] * 2}}},
            422,
            "spec",
        ),
        (
            "no questions",
            "POST",
            "/projects",
            {"json": {"name": "p", "spec": {**spec, "questions": []}}},
            422,
            "spec.questions",
        ),
        ("update unknown field", "PATCH", f"/projects/{p}", {"json": {"colour": "red"}}, 422, "colour"),
        ("bad member email", "POST", "/members", {"json": {"email": "not an email"}}, 422, "email"),
        ("bad member role", "POST", "/members", {"json": {"email": "a@b.example", "role": "king"}}, 422, "role"),
        (
            "short password",
            "POST",
            "/members",
            {"json": {"email": "a@b.example", "password": "short"}},
            422,
            "password",
        ),
        ("bad disabled", "PATCH", f"/members/{w.member.id}", {"json": {"disabled": "maybe"}}, 422, "disabled"),
        ("empty key name", "POST", "/keys", {"json": {"name": ""}}, 422, "name"),
        ("batch without name", "POST", f"/projects/{p}/batches", {"json": {}}, 422, "name"),
        (
            "batch metadata not object",
            "POST",
            f"/projects/{p}/batches",
            {"json": {"name": "x", "metadata": [1]}},
            422,
            "metadata",
        ),
        ("task data missing", "POST", f"/projects/{p}/tasks", {"json": {"unique_id": "x"}}, 422, "data"),
        ("task data wrong field", "POST", f"/projects/{p}/tasks", {"json": {"data": {"txt": "x"}}}, 422, "data"),
        ("task data wrong type", "POST", f"/projects/{p}/tasks", {"json": {"data": {"text": 5}}}, 422, "data"),
        (
            "task priority huge",
            "POST",
            f"/projects/{p}/tasks",
            {"json": {"data": {"text": "x"}, "priority": 10**12}},
            422,
            "priority",
        ),
        (
            "task empty unique_id",
            "POST",
            f"/projects/{p}/tasks",
            {"json": {"data": {"text": "x"}, "unique_id": ""}},
            422,
            "unique_id",
        ),
        (
            "task missing batch",
            "POST",
            f"/projects/{p}/tasks",
            {"json": {"data": {"text": "x"}, "batch_id": "0" * 24}},
            404,
            None,
        ),
        (
            "bulk bad content type",
            "POST",
            f"/projects/{p}/tasks/bulk",
            {"content": b"a,b", "headers": {"Content-Type": "text/csv"}},
            422,
            None,
        ),
        ("bulk json object", "POST", f"/projects/{p}/tasks/bulk", {"json": {"data": {}}}, 422, None),
        (
            "bulk bad on_error",
            "POST",
            f"/projects/{p}/tasks/bulk?on_error=maybe",
            {"content": b"", "headers": bulk},
            422,
            "query.on_error",
        ),
        (
            "answer unknown question",
            "POST",
            f"/tasks/{w.answer_task['id']}/responses",
            {"json": {"answer": {**ANSWER, "mood": "x"}}},
            422,
            "answer",
        ),
        (
            "answer unknown option",
            "POST",
            f"/tasks/{w.answer_task['id']}/responses",
            {"json": {"answer": {"sentiment": "meh"}}},
            422,
            "answer",
        ),
        (
            "answer missing required",
            "POST",
            f"/tasks/{w.answer_task['id']}/responses",
            {"json": {"answer": {"stars": 3}}},
            422,
            "answer",
        ),
        (
            "answer rating out of range",
            "POST",
            f"/tasks/{w.answer_task['id']}/responses",
            {"json": {"answer": {**ANSWER, "stars": 9}}},
            422,
            "answer",
        ),
        (
            "answer not object",
            "POST",
            f"/tasks/{w.answer_task['id']}/responses",
            {"json": {"answer": "positive"}},
            422,
            "answer",
        ),
        (
            "answer negative duration",
            "POST",
            f"/tasks/{w.answer_task['id']}/responses",
            {"json": {"answer": ANSWER, "duration_ms": -1}},
            422,
            "duration_ms",
        ),
        (
            "answer other task's lease",
            "POST",
            f"/tasks/{w.answer_task['id']}/responses",
            {"json": {"answer": ANSWER, "assignment_id": w.skip_assignment["id"]}},
            422,
            None,
        ),
        (
            "idempotency key too long",
            "POST",
            f"/tasks/{w.answer_task['id']}/responses",
            {"json": {"answer": ANSWER}, "headers": {"Idempotency-Key": "k" * 201}},
            422,
            None,
        ),
        ("answer a canceled task", "POST", f"/tasks/{w.doomed_task['id']}/cancel", {}, 200, None),
        ("bad status filter", "GET", "/tasks?status=done", {}, 422, "query.status"),
        ("bad date filter", "GET", "/tasks?created_after=yesterday", {}, 422, "query.created_after"),
        ("bad date filter 2", "GET", "/tasks?completed_before=2024-13-45", {}, 422, "query.completed_before"),
        ("limit zero", "GET", "/tasks?limit=0", {}, 422, "query.limit"),
        ("limit huge", "GET", "/tasks?limit=100000", {}, 422, "limit"),
        ("limit not a number", "GET", "/projects?limit=ten", {}, 422, "query.limit"),
        ("bad bool", "GET", "/projects?include_archived=perhaps", {}, 422, "query.include_archived"),
        ("bad export status", "GET", f"/projects/{p}/export?status=done", {}, 422, "query.status"),
        ("finalize canceled batch", "POST", f"/batches/{w.doomed_batch['id']}/cancel", {}, 200, None),
        ("media not an image", "POST", "/media", {"files": {"file": ("a.txt", b"hello", "text/plain")}}, 422, "file"),
        (
            "media html as png",
            "POST",
            "/media",
            {"files": {"file": ("a.png", b"<script>x</script>", "image/png")}},
            422,
            "file",
        ),
        ("media without file", "POST", "/media", {"content": b"abc"}, 422, "file"),
        ("nul in path", "GET", "/projects/%00", {}, 422, None),
        ("nul in cursor", "GET", "/tasks?cursor=%00", {}, 422, None),
        ("nul in filter", "GET", f"/tasks?unique_id=a%00&metadata.k=%00&batch_id={b}", {}, 422, None),
        ("nul in name", "POST", "/projects", {"json": {"name": "a\x00", "spec": spec}}, 422, "name"),
        (
            "nul in unique_id",
            "POST",
            f"/projects/{p}/tasks",
            {"json": {"data": {"text": "x"}, "unique_id": "\x00"}},
            422,
            "unique_id",
        ),
        ("nul in email", "POST", "/members", {"json": {"email": "a\x00@b.example"}}, 422, "email"),
        ("nul in batch name", "POST", f"/projects/{p}/batches", {"json": {"name": "\x00"}}, 422, "name"),
        ("missing task", "GET", "/tasks/0123456789abcdef01234567", {}, 404, None),
        ("long id", "GET", f"/tasks/{'x' * 500}", {}, 404, None),
        ("odd id", "GET", "/projects/..%2F..%2Fetc", {}, 404, None),
        ("missing media", "GET", "/media/0123456789abcdef01234567", {}, 404, None),
        ("wrong method", "PUT", f"/projects/{p}", {"json": {}}, 405, None),
        ("cancel twice is fine", "POST", f"/tasks/{t}/cancel", {}, 200, None),
    ]


def test_bad_requests_get_clear_4xx_errors(api: Api, world: World) -> None:
    owner = world.org.owner
    for name, method, url, kwargs, status, field in _bad_requests(world):
        response = api.request(method, API + url, auth=owner, **kwargs)
        if status < 300:
            assert response.status_code == status, (name, response.text)
            continue
        error = assert_error(response, status)
        if field is not None:
            details = error["details"]
            assert isinstance(details, dict), (name, error)  # details are always an object
            fields = [details.get("field")] + [e["field"] for e in details.get("errors", [])]
            assert field in fields or error["message"].startswith(field), (name, error)
            if status == 422:  # every 422 names its field and lists the bad ones
                assert details["field"] == details["errors"][0]["field"], (name, error)


def test_state_errors_are_409(api: Api, world: World) -> None:
    owner = world.org.owner
    api.post(f"{API}/tasks/{world.doomed_task['id']}/cancel", auth=owner)
    r = api.post(f"{API}/tasks/{world.doomed_task['id']}/responses", auth=owner, json={"answer": ANSWER})
    assert_error(r, 409, "conflict")
    api.post(f"{API}/batches/{world.doomed_batch['id']}/cancel", auth=owner)
    assert_error(api.post(f"{API}/batches/{world.doomed_batch['id']}/finalize", auth=owner), 409, "conflict")
    r = api.post(f"{API}/tasks/{world.task['id']}/responses", auth=owner, json={"answer": ANSWER})
    assert_error(r, 409, "conflict")  # the owner answered it already
    lease = world.skip_assignment["id"]
    assert api.post(f"{API}/assignments/{lease}/skip", auth=owner).status_code == 200
    assert_error(api.post(f"{API}/assignments/{lease}/release", auth=owner), 409, "conflict")
    assert_error(api.post(f"{API}/members", auth=owner, json={"email": world.member.member["email"]}), 409)


# --- a bounded fuzz of every JSON body and every list query --------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@hsettings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_fuzzed_bodies_and_queries_never_500(api: Api, world: World, data: st.DataObject) -> None:
    owner = world.org.owner
    for route in api_routes(api.app):
        if route.path.endswith(("/openapi.json", "/docs")):
            continue
        call = call_for(route, world)
        if isinstance(call.json, dict):
            body = dict(call.json)
            how = data.draw(st.sampled_from(["replace", "add", "whole"]), label=f"{route.operation_id} mutation")
            if how == "replace" and body:
                body[data.draw(st.sampled_from(sorted(body)))] = data.draw(JSON)
            elif how == "add":
                body[data.draw(st.text(max_size=8))] = data.draw(JSON)
            else:
                body = data.draw(JSON)
            call.json = body
        if route.method == "GET":
            names = ["cursor", "limit", "status", "created_after", "updated_before", "metadata.k", "batch_id"]
            call.params = {**call.params, **data.draw(st.dictionaries(st.sampled_from(names), st.text(max_size=12)))}
        response = send(api, route, call, owner)
        assert response.status_code < 500, (route, response.text)
        if response.status_code >= 400:
            assert_error(response, response.status_code)


def test_nul_in_a_bulk_line_is_a_bad_line_not_a_500(api: Api, world: World) -> None:
    r = api.post(
        f"{API}/projects/{world.project['id']}/tasks/bulk",
        auth=world.org.owner,
        content=b'{"data": {"text": "a"}, "unique_id": "x\\u0000"}\n{"data": {"text": "b"}}\n',
        headers={"Content-Type": "application/x-ndjson"},
        params={"on_error": "skip"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1 and [e["line"] for e in r.json()["errors"]] == [1]

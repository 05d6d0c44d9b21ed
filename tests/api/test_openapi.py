"""The OpenAPI document says what the API does: its error answers, in the one shape, and its bounds.

tests/api/test_schemathesis.py holds every real answer against the document; these pin the rules
that build it, so a new route gets its error answers without anyone listing them.
"""

from __future__ import annotations

from typing import Any

from truthset.config import Settings

from .helpers import API, Api, Org, assert_error

ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        if path.startswith(API)
        for method, operation in item.items()
    ]


def _error_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if int(status) >= 400}


def test_every_operation_documents_its_error_answers_in_the_one_error_shape(api: Api) -> None:
    document = api.get(f"{API}/openapi.json").json()
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's shape is never sent
    operations = _operations(document)
    assert len(operations) > 30
    for method, path, operation in operations:
        name = f"{method.upper()} {path}"
        expected = {401, 403, 422, 503}
        names_an_object = operation["operationId"] in ("create_key", "create_task", "validate_spec", "create_webhook")
        if "{" in path or names_an_object:
            expected.add(404)
        if method != "get":
            expected |= {409, 507}  # a write can also find the disk full
        if "requestBody" in operation:
            expected.add(413)
        assert _error_statuses(operation) == expected, name
        for status in expected:
            response = operation["responses"][str(status)]
            assert response["content"] == {"application/json": {"schema": ERROR_REF}}, (name, status)
            assert response["description"], (name, status)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        assert "Retry-After" in operation["responses"]["503"]["headers"]


def test_the_public_health_check_documents_no_credential_errors(api: Api) -> None:
    health = api.get(f"{API}/openapi.json").json()["paths"]["/healthz"]["get"]
    assert _error_statuses(health) == {422}  # a NUL in its query; it takes no key and no body


def _limit_schemas(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: parameter["schema"]
        for _method, _path, operation in _operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter["name"] == "limit"
    }


def test_limit_parameters_are_bounded_as_the_server_bounds_them(make_api: Any, settings: Settings, org: Org) -> None:
    api = make_api(settings.model_copy(update={"page_size_max": 50}))
    limits = _limit_schemas(api.get(f"{API}/openapi.json").json())
    assert set(limits) == {
        "list_members", "list_keys", "list_workers", "list_projects", "list_batches", "list_tasks", "project_workers",
        "list_jobs", "list_media", "list_webhooks", "list_webhook_deliveries", "list_models", "list_queue", "list_gold",
    }
    for schema in limits.values():
        assert (schema["minimum"], schema["maximum"], schema["default"]) == (1, 50, 50)
    # what the document allows is accepted, and what it refuses is refused
    assert api.get(f"{API}/projects?limit=50", auth=org.owner).status_code == 200
    assert api.get(f"{API}/projects?limit=1", auth=org.owner).status_code == 200
    assert_error(api.get(f"{API}/projects?limit=51", auth=org.owner), 422)
    assert_error(api.get(f"{API}/projects?limit=0", auth=org.owner), 422)
    # without limit, the default page fits under the server's maximum (it was 100: refused)
    for _ in range(60):
        org.make_project()
    page = api.get(f"{API}/projects", auth=org.owner)
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 50


def test_limit_default_is_100_under_the_default_maximum(api: Api) -> None:
    limits = _limit_schemas(api.get(f"{API}/openapi.json").json())
    for schema in limits.values():
        assert (schema["minimum"], schema["maximum"], schema["default"]) == (1, 1000, 100)


def test_an_unparsable_body_is_a_422_naming_the_body(api: Api, org: Org) -> None:
    """Not UTF-8, or a broken multipart form: bad input like invalid JSON, not an undocumented 400."""
    cases = [
        ("POST", f"{API}/projects", b"\xff\xfe{", "application/json"),
        ("POST", f"{API}/media", b"--x\r\n[not a header]--x--\r\n", "multipart/form-data; boundary=x"),
    ]
    for method, url, body, content_type in cases:
        response = api.request(method, url, auth=org.owner, content=body, headers={"Content-Type": content_type})
        error = assert_error(response, 422, "invalid_input")
        assert error["details"]["field"] == "body", error
        assert error["message"].startswith("the body could not be parsed"), error


def test_parameters_are_described_as_they_travel(api: Api) -> None:
    """Absent, never null (a query string cannot say null); a plain string holds no NUL (refused)."""
    document = api.get(f"{API}/openapi.json").json()
    parameters = [p for _m, _p, operation in _operations(document) for p in operation.get("parameters", [])]
    assert parameters
    for parameter in parameters:
        schema = parameter["schema"]
        assert "anyOf" not in schema, parameter
        if schema.get("type") == "string" and not {"enum", "format"} & set(schema):
            assert "pattern" in schema, parameter
    unique_id = next(p for p in parameters if p["name"] == "unique_id")
    assert unique_id["schema"] == {"type": "string", "pattern": "^[^\\x00]*$", "title": "Unique Id"}
    key = next(p for p in parameters if p["name"] == "idempotency-key")
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 200)

"""The OpenAPI document: FastAPI's, plus the error answers each operation can give and the page bounds.

FastAPI documents the success answer of a route and a 422 in its own validation shape. This API
answers every error in one shape (``api/errors.py``), so the document is completed once, from
rules over what an operation is (secured, has path parameters, takes a body, changes state),
instead of a ``responses=`` list repeated on every route. Parameters are described as they travel
(absent rather than null, no NUL), and the ``limit`` bounds come from the settings, since
``TRUTHSET_PAGE_SIZE_MAX`` is chosen at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from truthset.api.deps import DEFAULT_PAGE_SIZE
from truthset.schemas import NO_NUL_PATTERN

__all__ = ["ERROR_SCHEMA", "install"]

Operation = dict[str, Any]

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "description": "The one error shape of every answer from 400 up.",
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "Stable and machine-readable: `not_found`, `conflict`..."},
                "message": {"type": "string", "description": "For people."},
                "details": {
                    "anyOf": [{"type": "object"}, {"type": "null"}],
                    "description": "For a 422: `field` (the first bad one) and `errors` (each with `field`, "
                    "`message`, `type`).",
                },
            },
        }
    },
}

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _secured(_method: str, operation: Operation, _schema: dict[str, Any]) -> bool:
    return bool(operation.get("security"))


def _names_an_object(_method: str, operation: Operation, schema: dict[str, Any]) -> bool:
    """A path parameter, or a body property ending in ``_id``, names an object that may not exist."""
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        return True
    return any(name.endswith("_id") for name in _body_properties(operation, schema))


def _changes_state(method: str, operation: Operation, schema: dict[str, Any]) -> bool:
    return method != "get" and _secured(method, operation, schema)


def _has_body(_method: str, operation: Operation, _schema: dict[str, Any]) -> bool:
    return "requestBody" in operation


def _always(_method: str, _operation: Operation, _schema: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    description: str
    applies: Callable[[str, Operation, dict[str, Any]], bool]
    headers: tuple[tuple[str, str], ...] = ()


ANSWERS = (
    ErrorAnswer(
        401,
        "No valid credentials: a missing, unknown or revoked API key, or an ended session.",
        _secured,
        (("WWW-Authenticate", "`Bearer`"),),
    ),
    ErrorAnswer(403, "Your role may not do this (or a session call lacks its `X-CSRF-Token`).", _secured),
    ErrorAnswer(
        404, "An object named by the request does not exist or belongs to another organization.", _names_an_object
    ),
    ErrorAnswer(
        409,
        "The request contradicts the stored state (a duplicate, a finished task, a closed batch...).",
        _changes_state,
    ),
    ErrorAnswer(413, "The body (or one task in it) is larger than the server's limit.", _has_body),
    ErrorAnswer(
        422,
        "Invalid input: `details.field` names the first bad field or parameter (an unknown query "
        "parameter too), `details.errors` lists them all.",
        _always,
    ),
    ErrorAnswer(
        503,
        "The database is busy or unavailable: retry after `Retry-After` seconds.",
        _secured,
        (("Retry-After", "Seconds to wait before retrying."),),
    ),
    ErrorAnswer(
        507,
        "The disk under the database or the media store is full: nothing was stored; retry after "
        "`Retry-After` seconds once space has been freed.",
        _changes_state,
        (("Retry-After", "Seconds to wait before retrying."),),
    ),
)


def _body_properties(operation: Operation, schema: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for media in operation.get("requestBody", {}).get("content", {}).values():
        body = _resolve(media.get("schema", {}), schema)
        if body.get("type") == "array":
            body = _resolve(body.get("items", {}), schema)
        names.update(body.get("properties", {}))
    return names


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    prefix = "#/components/schemas/"
    if ref.startswith(prefix):
        return schema.get("components", {}).get("schemas", {}).get(ref[len(prefix) :], {})
    return node


def _error_response(answer: ErrorAnswer) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": answer.description,
        "content": {"application/json": {"schema": _ERROR_REF}},
    }
    if answer.headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in answer.headers
        }
    return response


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers each operation can give, all in the one error shape (in place)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            for answer in ANSWERS:
                if answer.applies(method, operation, schema):
                    responses[str(answer.status)] = _error_response(answer)
    for name in _FASTAPI_VALIDATION_SCHEMAS:  # FastAPI's own 422 shape is never sent here
        schema["components"]["schemas"].pop(name, None)
    return schema


def bound_page_limits(schema: dict[str, Any], page_size_max: int) -> dict[str, Any]:
    """``limit`` takes 1..``TRUTHSET_PAGE_SIZE_MAX``: say so, with the default it really has (in place)."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") == "limit":
                    parameter["schema"].update(
                        minimum=1, maximum=page_size_max, default=min(DEFAULT_PAGE_SIZE, page_size_max)
                    )
    return schema


def tidy_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """Path, query and header parameters as they travel (in place).

    An optional parameter is absent, never null (a query string cannot say null; FastAPI writes
    ``anyOf: [..., null]`` for ``str | None``), and a plain string holds no NUL, which
    ``api.limits.NulGuardMiddleware`` refuses in the path and query and text columns refuse.
    """
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter["schema"])
                value = parameter["schema"]
                if value.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(value):
                    value["pattern"] = NO_NUL_PATTERN
    return schema


def _without_null(value: dict[str, Any]) -> dict[str, Any]:
    options = [option for option in value.get("anyOf", ()) if option != {"type": "null"}]
    if "anyOf" not in value or len(options) != 1:
        return value
    merged = {key: item for key, item in value.items() if key != "anyOf"}
    return {**options[0], **merged}


def install(app: FastAPI, *, page_size_max: int) -> None:
    """Make ``app.openapi()`` return the completed document (built once, on first use)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = bound_page_limits(tidy_parameters(document_errors(generate())), page_size_max)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

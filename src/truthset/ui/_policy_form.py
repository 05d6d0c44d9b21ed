"""The quality policy as form controls, described from the policy's own JSON schema.

The project editor shows the policy as JSON (every field, per-question overrides included) and,
above it, a form for its scalar settings. The form is built from ``QualityPolicy``'s JSON schema,
not written out by hand, so a field added to the policy shows up with its bounds, choices and
description without touching the page; what a form cannot hold well (lists, per-question maps) is
left to the JSON and named on the page.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from truthset.schemas import QualityPolicy

# ``overlap`` is a shorthand the server turns into min_overlap = max_overlap: never stored, so it
# gets no control; a draft that uses it has it spread over the two when the form edits either
_SHORTHANDS = {"overlap": ["min_overlap", "max_overlap"]}
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


@cache
def policy_controls() -> dict[str, Any]:
    """``{"controls", "json_only", "shorthands"}``: the controls, in the policy's field order.

    A control is ``{"path", "label", "help", "kind", "nullable", ...bounds}`` with ``kind`` one of
    ``integer``, ``number``, ``boolean``, ``choice`` (with ``choices``) or ``group`` (a nested
    policy, with ``children`` and, when it may be null = off, the ``default`` it starts from).
    """
    schema = QualityPolicy.model_json_schema()
    controls, json_only = _properties(schema, schema["$defs"], ())
    return {"controls": controls, "json_only": json_only, "shorthands": _SHORTHANDS}


def _properties(schema: dict[str, Any], defs: dict[str, Any], path: tuple[str, ...]) -> tuple[list, list]:
    controls: list[dict[str, Any]] = []
    json_only: list[str] = []
    for name, prop in schema.get("properties", {}).items():
        if not path and name in _SHORTHANDS:
            continue
        control = _control(prop, defs, (*path, name))
        if control is None:
            json_only.append(".".join((*path, name)))
        else:
            controls.append(control)
    return controls, json_only


def _control(prop: dict[str, Any], defs: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    body, nullable = _unwrap_null(prop)
    common = {
        "path": list(path),
        "label": _label(prop.get("title") or path[-1]),
        "help": prop.get("description", ""),
        "nullable": nullable,
    }
    if "$ref" in body:
        sub = defs[body["$ref"].rsplit("/", 1)[-1]]
        children, _ = _properties(sub, defs, path)
        default = {child["path"][-1]: sub["properties"][child["path"][-1]].get("default") for child in children}
        return {**common, "kind": "group", "children": children, "default": default}
    if "enum" in body:
        return {**common, "kind": "choice", "choices": list(body["enum"])}
    kind = body.get("type")
    if kind in ("integer", "number"):
        bounds = {key: body[key] for key in _BOUNDS if key in body}
        return {**common, "kind": kind, **bounds}
    if kind == "boolean":
        return {**common, "kind": "boolean"}
    return None  # lists and maps: edited in the JSON


def _unwrap_null(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``anyOf: [X, {"type": "null"}]`` -> (X, True); anything else -> (prop, False)."""
    options = prop.get("anyOf")
    if not options:
        return prop, False
    real = [option for option in options if option.get("type") != "null"]
    return (real[0], True) if len(real) == 1 else (prop, False)


def _label(title: str) -> str:
    words = title.replace("_", " ").split()
    return " ".join([words[0].capitalize(), *(word.lower() for word in words[1:])]) if words else title

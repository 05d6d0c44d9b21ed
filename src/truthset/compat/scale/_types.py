"""Scale task types as truthset specs: a type's params become a spec and a task's data, and a
truthset result becomes the type's ``response`` (docs/scale.md, "Task types").

Each supported type is one :class:`TaskType`: the params it takes, how they make the spec (what is
shown and asked), the task's data, and the Scale-shaped response. Params outside a type's list are
refused by name, so nothing a client sends is silently ignored.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from truthset.errors import InvalidInput
from truthset.questions import MEDIA_PREFIX

#: Params every task type takes (the task's record, not its spec).
COMMON_PARAMS = frozenset(
    {"project", "batch", "instruction", "callback_url", "metadata", "unique_id", "tags", "priority"}
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")  # a spec name (questions/_registry.NAME_PATTERN)
MAX_ATTACHMENTS = 10


def annotation_id(task_id: str, kind: str, index: int) -> str:
    """A stable id for the ``index``-th annotation of a response (Scale gives each one a ``uuid``
    or ``id``): the same task always answers the same ids, so a client may store them."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"truthset:{task_id}:{kind}:{index}"))


def bad(param: str, message: str) -> InvalidInput:
    """A Scale-style 400 naming the param."""
    return InvalidInput(f"{param}: {message}", details={"field": param})


def _required(params: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = params.get(name)
    if value is None:
        raise bad(name, f"is required ({what})")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise bad(name, f"must be {what}")
    return value


def _strings(params: Mapping[str, Any], name: str, *, minimum: int) -> list[str]:
    values = _required(params, name, list, f"a list of at least {minimum} strings")
    if len(values) < minimum or not all(isinstance(v, str) and v for v in values):
        raise bad(name, f"must be a list of at least {minimum} non-empty strings")
    if len(set(values)) != len(values):
        raise bad(name, "must not repeat a value")
    return values


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", MEDIA_PREFIX))


def _attachment_field(params: Mapping[str, Any], *, image_only: bool = False) -> tuple[dict[str, Any], str]:
    """The ``attachment`` param as a spec field and its value (an image URL, or text)."""
    attachment = _required(params, "attachment", str, "a string: an image URL or text")
    kind = params.get("attachment_type") or ("image" if image_only or _is_url(attachment) else "text")
    allowed = ("image",) if image_only else ("image", "text")
    if kind not in allowed:
        raise bad("attachment_type", f"{kind!r} is not supported here (supported: {', '.join(allowed)})")
    return {"name": "attachment", "type": kind, "label": "Attachment"}, attachment


# --- categorization ----------------------------------------------------------------------------


def _categorization_spec(params: Mapping[str, Any]) -> dict[str, Any]:
    field, _ = _attachment_field(params)
    multiple = params.get("allow_multiple", False)
    if not isinstance(multiple, bool):
        raise bad("allow_multiple", "must be true or false")
    question = {
        "name": "category",
        "type": "labels" if multiple else "label",
        "options": _strings(params, "categories", minimum=2),
    }
    return {"fields": [field], "questions": [question]}


def _attachment_data(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"attachment": params["attachment"]}


def _categorization_response(answer: Mapping[str, Any], data: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """``{"category": "red"}`` (Scale's callback example, scale.com/docs/api-reference/callbacks)."""
    return {"category": answer.get("category")}


# --- textcollection ----------------------------------------------------------------------------


def _attachments(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``attachments``: a list of ``{"type": "text"|"image", "content"}`` (or plain text) as (type, content)."""
    raw = _required(params, "attachments", list, "a list of attachments")
    if not 1 <= len(raw) <= MAX_ATTACHMENTS:
        raise bad("attachments", f"must have 1 to {MAX_ATTACHMENTS} attachments")
    out = []
    for index, item in enumerate(raw):
        where = f"attachments[{index}]"
        if isinstance(item, str):
            item = {"type": "text", "content": item}
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise bad(where, 'must be {"type": "text"|"image", "content": "..."} or a string')
        unknown = sorted(set(item) - {"type", "content"})
        if unknown:
            raise bad(f"{where}.{unknown[0]}", "is not supported")
        kind = item.get("type", "text")
        if kind not in ("text", "image"):
            raise bad(f"{where}.type", f"{kind!r} is not supported (supported: text, image)")
        out.append((kind, item["content"]))
    return out


_TEXT_FIELD_KEYS = frozenset(
    {"type", "field_id", "title", "description", "required", "min_characters", "max_characters"}
)


def _text_question(index: int, field: Any) -> dict[str, Any]:
    where = f"fields[{index}]"
    if not isinstance(field, dict):
        raise bad(where, "must be an object")
    if field.get("type") != "text":
        raise bad(f"{where}.type", f"{field.get('type')!r} is not supported (supported: text)")
    unknown = sorted(set(field) - _TEXT_FIELD_KEYS)
    if unknown:
        raise bad(f"{where}.{unknown[0]}", "is not supported")
    field_id = field.get("field_id")
    if not isinstance(field_id, str) or not _NAME.match(field_id):
        raise bad(f"{where}.field_id", "must be a name of letters, digits, _ and - (starting with a letter or _)")
    prompt = " - ".join(str(field[k]) for k in ("title", "description") if field.get(k))
    question: dict[str, Any] = {
        "name": field_id,
        "type": "text",
        "prompt": prompt,
        "required": field.get("required", True),
    }
    if field.get("min_characters") is not None:
        question["min_length"] = field["min_characters"]
    if field.get("max_characters") is not None:
        question["max_length"] = field["max_characters"]
    return question


def _textcollection_spec(params: Mapping[str, Any]) -> dict[str, Any]:
    fields = [
        {"name": f"attachment_{i}", "type": kind, "label": f"Attachment {i + 1}"}
        for i, (kind, _) in enumerate(_attachments(params))
    ]
    raw = _required(params, "fields", list, "a list of fields")
    if not raw:
        raise bad("fields", "must have at least one field")
    return {"fields": fields, "questions": [_text_question(i, f) for i, f in enumerate(raw)]}


def _textcollection_data(params: Mapping[str, Any]) -> dict[str, Any]:
    return {f"attachment_{i}": content for i, (_, content) in enumerate(_attachments(params))}


def _textcollection_response(answer: Mapping[str, Any], data: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """``{"annotations": {"<field_id>": value}}``: each key a ``field_id`` of the task's params
    (Scale's text collection callback format, docs.scale.com/reference/textcollection-callback-format)."""
    return {"annotations": dict(answer)}


# --- namedentityrecognition --------------------------------------------------------------------


def _ner_labels(params: Mapping[str, Any]) -> list[dict[str, str]]:
    raw = _required(params, "labels", list, "a list of labels")
    if not raw:
        raise bad("labels", "must have at least one label")
    labels = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise bad(f"labels[{index}]", 'must be a string or {"name", "display_name"?, "description"?}')
        unknown = sorted(set(item) - {"name", "display_name", "description"})
        if unknown:
            raise bad(f"labels[{index}].{unknown[0]}", "is not supported")
        labels.append({"value": item["name"], "label": item.get("display_name") or item["name"]})
    return labels


def _ner_spec(params: Mapping[str, Any]) -> dict[str, Any]:
    _required(params, "text", str, "the text to mark entities in")
    question = {"name": "entities", "type": "spans", "field": "text", "labels": _ner_labels(params)}
    return {"fields": [{"name": "text", "type": "text", "label": "Text"}], "questions": [question]}


def _ner_data(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"text": params["text"]}


def _ner_response(answer: Mapping[str, Any], data: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """``{"annotations": [{"id", "start", "end", "text", "label"}], "relationships": []}`` (Scale's
    NamedEntityRecognitionResponse, docs.scale.com/reference/callback-format-3; truthset's spans
    have no relationships)."""
    text = data.get("text", "")
    spans = answer.get("entities") or []
    annotations = [
        {"id": annotation_id(task_id, "entity", i), **span, "text": text[span["start"] : span["end"]]}
        for i, span in enumerate(spans)
    ]
    return {"annotations": annotations, "relationships": []}


# --- imageannotation ---------------------------------------------------------------------------

_GEOMETRY_QUESTIONS = {"box": "boxes", "polygon": "polygons"}
_GEOMETRY_KEYS = {
    "box": frozenset({"objects_to_annotate"}),
    "polygon": frozenset({"objects_to_annotate", "min_vertices", "max_vertices"}),
}


def _geometry_question(kind: str, config: Any) -> dict[str, Any]:
    where = f"geometries.{kind}"
    if not isinstance(config, dict):
        raise bad(where, "must be an object with objects_to_annotate")
    unknown = sorted(set(config) - _GEOMETRY_KEYS[kind])
    if unknown:
        raise bad(f"{where}.{unknown[0]}", "is not supported")
    objects = _strings(config, "objects_to_annotate", minimum=1) if "objects_to_annotate" in config else None
    if not objects:
        raise bad(f"{where}.objects_to_annotate", "is required (a list of at least 1 label)")
    question: dict[str, Any] = {
        "name": kind,
        "type": _GEOMETRY_QUESTIONS[kind],
        "field": "attachment",
        "labels": objects,
    }
    if kind == "polygon":
        for ours, theirs in (("min_points", "min_vertices"), ("max_points", "max_vertices")):
            if config.get(theirs) is not None:
                question[ours] = config[theirs]
    return question


def _imageannotation_spec(params: Mapping[str, Any]) -> dict[str, Any]:
    field, _ = _attachment_field(params, image_only=True)
    geometries = _required(params, "geometries", dict, "an object: {box: ..., polygon: ...}")
    unsupported = sorted(set(geometries) - set(_GEOMETRY_QUESTIONS))
    if unsupported:
        raise bad(f"geometries.{unsupported[0]}", "is not supported (supported: box, polygon)")
    if not geometries:
        raise bad("geometries", "must name at least one geometry (box, polygon)")
    return {
        "fields": [field],
        "questions": [_geometry_question(k, geometries[k]) for k in ("box", "polygon") if k in geometries],
    }


def _imageannotation_response(answer: Mapping[str, Any], data: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """``{"annotations": [...]}``: a box as ``uuid, type, label, left, top, width, height`` and a
    polygon as ``uuid, type, label, vertices: [{x, y}]``, in pixels (Scale's response fields,
    docs.scale.com/reference/boxes and /polygons)."""
    annotations: list[dict[str, Any]] = [
        {
            "uuid": annotation_id(task_id, "box", i),
            "type": "box",
            "label": b["label"],
            "left": b["x"],
            "top": b["y"],
            "width": b["width"],
            "height": b["height"],
        }
        for i, b in enumerate(answer.get("box") or [])
    ]
    annotations += [
        {
            "uuid": annotation_id(task_id, "polygon", i),
            "type": "polygon",
            "label": p["label"],
            "vertices": [{"x": x, "y": y} for x, y in p["points"]],
        }
        for i, p in enumerate(answer.get("polygon") or [])
    ]
    return {"annotations": annotations}


# --- comparison --------------------------------------------------------------------------------


def _comparison_items(params: Mapping[str, Any]) -> list[str]:
    items = _strings(params, "attachments", minimum=2)
    if len(items) > MAX_ATTACHMENTS:
        raise bad("attachments", f"must have at most {MAX_ATTACHMENTS} items")
    return items


def _comparison_spec(params: Mapping[str, Any]) -> dict[str, Any]:
    _comparison_items(params)
    kind = params.get("attachment_type", "text")
    if kind != "text":  # truthset shows the compared items side by side as text
        raise bad("attachment_type", f"{kind!r} is not supported for comparison tasks (supported: text)")
    question = {"name": "choice", "type": "label", "options": _strings(params, "choices", minimum=2)}
    return {"fields": [{"name": "attachments", "type": "responses", "label": "Compare"}], "questions": [question]}


def _comparison_data(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"attachments": _comparison_items(params)}


def _comparison_response(answer: Mapping[str, Any], data: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """``{"choice": "..."}``: the chosen one of the task's ``choices``."""
    return {"choice": answer.get("choice")}


# --- documenttranscription ---------------------------------------------------------------------


def _documenttranscription_spec(params: Mapping[str, Any]) -> dict[str, Any]:
    field, _ = _attachment_field(params, image_only=True)
    return {"fields": [field], "questions": [{"name": "transcription", "type": "text", "max_length": 1_000_000}]}


def _documenttranscription_response(answer: Mapping[str, Any], data: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """``{"annotations": [{"uuid", "page": 0, "label": "transcription", "text"}]}``: Scale's document
    transcription annotation (docs.scale.com/reference/document-transcription-hypothesis) for the
    one thing truthset asks, the whole page's text; it has no ``location`` (no region was drawn)."""
    text = answer.get("transcription")
    if text is None:
        return {"annotations": []}
    return {
        "annotations": [
            {"uuid": annotation_id(task_id, "transcription", 0), "page": 0, "label": "transcription", "text": text}
        ]
    }


# --- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskType:
    name: str
    params: frozenset[str]  # the type's own params (beyond COMMON_PARAMS)
    spec: Callable[[Mapping[str, Any]], dict[str, Any]]
    data: Callable[[Mapping[str, Any]], dict[str, Any]]
    response: Callable[[Mapping[str, Any], Mapping[str, Any], str], dict[str, Any]]  # (answer, data, task id)


TYPES: dict[str, TaskType] = {
    t.name: t
    for t in (
        TaskType(
            "categorization",
            frozenset({"attachment", "attachment_type", "categories", "allow_multiple"}),
            _categorization_spec,
            _attachment_data,
            _categorization_response,
        ),
        TaskType(
            "textcollection",
            frozenset({"attachments", "fields"}),
            _textcollection_spec,
            _textcollection_data,
            _textcollection_response,
        ),
        TaskType("namedentityrecognition", frozenset({"text", "labels"}), _ner_spec, _ner_data, _ner_response),
        TaskType(
            "imageannotation",
            frozenset({"attachment", "attachment_type", "geometries"}),
            _imageannotation_spec,
            _attachment_data,
            _imageannotation_response,
        ),
        TaskType(
            "comparison",
            frozenset({"attachments", "attachment_type", "choices"}),
            _comparison_spec,
            _comparison_data,
            _comparison_response,
        ),
        TaskType(
            "documenttranscription",
            frozenset({"attachment", "attachment_type"}),
            _documenttranscription_spec,
            _attachment_data,
            _documenttranscription_response,
        ),
    )
}


def task_type(name: str) -> TaskType:
    """The supported type ``name``, or a 400 listing the supported ones."""
    found = TYPES.get(name)
    if found is None:
        raise InvalidInput(
            f"task type {name!r} is not supported by truthset's Scale-compatible API "
            f"(supported: {', '.join(sorted(TYPES))})",
            details={"field": "type"},
        )
    return found


def check_params(kind: TaskType, params: Mapping[str, Any], *, common: bool = True) -> None:
    """A 400 naming the first param the type does not take."""
    allowed = kind.params | COMMON_PARAMS if common else kind.params | {"instruction"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidInput(
            f"parameter {unknown[0]!r} is not supported for {kind.name} tasks "
            f"(supported: {', '.join(sorted(allowed))})",
            details={"field": unknown[0]},
        )

"""The Scale v1 endpoints the official ``scaleapi`` client calls, over truthset's services.

Each route parses what the client sends, calls truthset's services (projects, batches, tasks) or
the Scale-only writes of ``_store``, and answers in Scale's shape (``_shapes``). The mapping is
documented in docs/scale.md.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import ValidationError

from truthset.compat.scale import _shapes as shapes
from truthset.compat.scale import _store as store
from truthset.compat.scale._auth import Caller
from truthset.compat.scale._types import TYPES, TaskType, bad, check_params, task_type
from truthset.domain import Principal
from truthset.errors import Conflict, InvalidInput
from truthset.schemas import BatchCreate, ProjectCreate, ProjectUpdate, TaskCreate, check_json
from truthset.services import projects, scale_records, tasks
from truthset.services.policy import Action, allowed
from truthset.storage import Database
from truthset.storage import tables as t

router = APIRouter()
JsonBody = Annotated[Any, Body()]
MAX_PAGE = 100

#: A Scale project's spec until its first task says what is shown and asked (docs/scale.md).
PENDING_SPEC = {
    "fields": [{"name": "attachment", "type": "text", "label": "Attachment"}],
    "questions": [{"name": "pending", "type": "text", "prompt": "Set by this project's first Scale task."}],
}


def _db(request: Request) -> Database:
    return request.app.state.db


DB = Annotated[Database, Depends(_db)]


def _object(body: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad(what, "must be a JSON object")
    try:
        check_json(body)
    except ValueError as exc:
        raise bad(what, str(exc)) from None
    return body


def _refuse_unknown(body: dict[str, Any], allowed_keys: set[str], where: str) -> None:
    unknown = sorted(set(body) - allowed_keys)
    if unknown:
        raise InvalidInput(
            f"parameter {unknown[0]!r} is not supported by {where} (supported: {', '.join(sorted(allowed_keys))})",
            details={"field": unknown[0]},
        )


def _validated(model: type, values: dict[str, Any]) -> Any:
    """A truthset input model, its first error as a Scale 400 naming the param."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise bad(where, first["msg"].removeprefix("Value error, ")) from None


# --- projects -----------------------------------------------------------------------------------


@router.post("/projects")
def create_project(body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    body = _object(body)
    _refuse_unknown(body, {"type", "name", "params", "rapid", "studio", "datasetId"}, "create_project")
    kind = task_type(str(body.get("type")))
    for flag in ("rapid", "studio"):
        if body.get(flag):
            raise bad(flag, "Scale Rapid and Studio projects are not supported")
    if body.get("datasetId") is not None:
        raise bad("datasetId", "Nucleus datasets are not supported")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise bad("name", "is required")
    params = _object(body.get("params") or {}, "params")
    check_params(kind, params, common=False)
    if store.project_name_taken(db, caller, name):
        raise Conflict(f"a project named {name!r} already exists", details={"field": "name"})
    instructions = params.get("instruction", "")
    scale = {
        "type": kind.name,
        "param_history": [{**params, "version": 0, "created_at": shapes.timestamp(_now())}],
        "spec_pending": True,
        "callback_auth_key": secrets.token_urlsafe(24),
    }
    data = _validated(ProjectCreate, {"name": name, "instructions": instructions, "spec": PENDING_SPEC})
    created = projects.create_project(db, caller, data, scale=scale)  # one transaction: row and record
    return shapes.project_json(created, with_secret=True)


@router.get("/projects")
def list_projects(db: DB, caller: Caller) -> list[dict[str, Any]]:
    secret = allowed(caller, Action.MANAGE_PROJECTS)
    return [shapes.project_json(p, with_secret=secret) for p in store.scale_projects(db, caller)]


@router.get("/projects/{name}")
def get_project(name: str, db: DB, caller: Caller) -> dict[str, Any]:
    return shapes.project_json(
        store.project_by_name(db, caller, name), with_secret=allowed(caller, Action.MANAGE_PROJECTS)
    )


@router.post("/projects/{name}/setParams")
def set_project_params(name: str, body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    """New params on top of the latest: later tasks that leave a param out take the project's."""
    body = _object(body)
    project = store.project_by_name(db, caller, name)
    check_params(TYPES[project["scale"]["type"]], body, common=False)
    if "instruction" in body:
        projects.update_project(
            db, caller, project["id"], _validated(ProjectUpdate, {"instructions": body["instruction"]})
        )
    scale = scale_records.add_project_params(db, caller, project["id"], body, shapes.timestamp(_now()) or "")
    return shapes.project_json({**project, "scale": scale}, with_secret=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --- batches ------------------------------------------------------------------------------------


@router.post("/batches")
def create_batch(body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    body = _object(body)
    _refuse_unknown(
        body, {"project", "name", "calibration_batch", "self_label_batch", "callback", "metadata"}, "create_batch"
    )
    for flag in ("calibration_batch", "self_label_batch"):
        if body.get(flag):
            raise bad(flag, "calibration and self-label batches are not supported")
    if body.get("callback"):
        raise bad("callback", "batch callbacks are not supported: give each task a callback_url")
    project = store.project_by_name(db, caller, str(body.get("project")))
    name = body.get("name")
    if isinstance(name, str) and store.batch_name_taken(db, caller, name):
        raise Conflict(f"a batch named {name!r} already exists", details={"field": "name"})
    data = _validated(BatchCreate, {"name": name, "metadata": body.get("metadata") or {}})
    batch = projects.create_batch(db, caller, project["id"], data)
    return shapes.batch_json(batch, project["name"])


@router.get("/batches")
def list_batches(
    db: DB,
    caller: Caller,
    project: str | None = None,
    status: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    exclude_archived: str | None = None,
    limit: int = MAX_PAGE,
    offset: int = 0,
) -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise bad("limit", f"must be between 1 and {MAX_PAGE} (offset at least 0)")
    project_row = store.project_by_name(db, caller, project) if project else None
    statuses = None
    if status is not None:
        statuses = tuple(ours for ours, theirs in shapes.BATCH_STATUSES.items() if theirs == status)
        if not statuses:
            raise bad("status", f"{status!r} is not one of {', '.join(sorted(set(shapes.BATCH_STATUSES.values())))}")
    rows, total = store.list_batches(
        db,
        caller,
        project_id=project_row["id"] if project_row else None,
        statuses=statuses,
        created_after=_time(start_time, "start_time"),
        created_before=_time(end_time, "end_time"),
        offset=offset,
        limit=limit,
    )
    docs = [shapes.batch_json(b, b["project_name"]) for b in rows]
    return {"docs": docs, "totalDocs": total, "limit": limit, "offset": offset, "has_more": offset + len(docs) < total}


@router.get("/batches/{name}")
def get_batch(name: str, db: DB, caller: Caller) -> dict[str, Any]:
    found = store.batch_by_name(db, caller, name)
    batch = projects.get_batch(db, caller, found["id"])
    return shapes.batch_json(batch, found["project_name"], batch["counts"])


@router.post("/batches/{name}/finalize")
def finalize_batch(name: str, db: DB, caller: Caller) -> dict[str, Any]:
    found = store.batch_by_name(db, caller, name)
    batch = projects.finalize_batch(db, caller, found["id"])
    return shapes.batch_json(batch, found["project_name"], batch["counts"])


@router.get("/batches/{name}/status")
def batch_status(name: str, db: DB, caller: Caller) -> dict[str, Any]:
    found = store.batch_by_name(db, caller, name)
    batch = projects.get_batch(db, caller, found["id"])
    return shapes.batch_status_json(batch, batch["counts"])


# --- tasks --------------------------------------------------------------------------------------


def _task_out(db: Database, caller: Principal, task: dict[str, Any]) -> dict[str, Any]:
    project = store.names(db, caller, t.projects, [task["project_id"]])
    batch = store.names(db, caller, t.batches, [task["batch_id"]])
    return shapes.task_json(task, project.get(task["project_id"]), batch.get(task["batch_id"]))


def _project_spec(db: Database, caller: Principal, project: dict[str, Any], kind: TaskType, params: dict) -> None:
    """The project's spec must be what this task asks; the first task of a project sets it."""
    spec = _validated(ProjectCreate, {"name": "x", "spec": kind.spec(params)}).spec.model_dump(mode="json")
    if scale_records.settle_project_spec(db, caller, project["id"], spec) != spec:
        raise InvalidInput(
            f"this task's {kind.name} params ask something else than the tasks of project {project['name']!r} "
            "(categories, labels, fields, geometries or attachment types differ): in truthset one project "
            "holds tasks of one shape; create another project for these",
            details={"field": "params"},
        )


def _task_params(project: dict[str, Any], kind: TaskType, body: dict[str, Any]) -> dict[str, Any]:
    """The task's own params over the project's latest (a task's param wins, as in Scale)."""
    latest = project["scale"]["param_history"][-1]
    defaults = {k: v for k, v in latest.items() if k in kind.params}
    return {**defaults, **{k: v for k, v in body.items() if k in kind.params}}


MAX_TAGS = 100


def _tags(value: Any) -> list[str]:
    """A list of tags: short strings without quotes or backslashes (each is also a JSON key that
    filters match on, see services/scale_records.TAG_KEY), at most :data:`MAX_TAGS`, repeats dropped."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise bad("tags", f"must be a list of at most {MAX_TAGS} strings")
    for tag in value:
        if not isinstance(tag, str) or not 1 <= len(tag) <= 200 or '"' in tag or "\\" in tag:
            raise bad("tags", f"{tag!r} is not a tag (1 to 200 characters, no quote or backslash)")
    return list(dict.fromkeys(value))


def _instruction(task: Any, project: Any) -> str:
    """The task's instruction, then the project's: a project's ``params.instruction`` "will instead
    be appended after the task-level instruction" (Scale's API reference, Create Project)."""
    if task is not None and not isinstance(task, str):
        raise bad("instruction", "must be a string")
    return "\n\n".join(part for part in (task, project) if isinstance(part, str) and part)


def _task_project(db: Database, caller: Principal, name: Any, batch: dict[str, Any] | None) -> dict[str, Any]:
    """The task's project: the named one, or the batch's when only a batch is named (as Scale
    does: "if a batch is specified, you need not specify the project")."""
    if not name and batch is None:
        raise bad("project", "is required (or a batch): truthset keeps every task in a project")
    project = store.project_by_name(db, caller, str(name or batch["project_name"]))  # type: ignore[index]
    if batch is not None and batch["project_id"] != project["id"]:
        owner = batch["project_name"]
        raise bad("batch", f"batch {batch['name']!r} belongs to project {owner!r}, not {project['name']!r}")
    return project


@router.post("/task/{type_name}")
def create_task(type_name: str, body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    kind = task_type(type_name)
    body = _object(body)
    check_params(kind, body)
    batch = store.batch_by_name(db, caller, str(body["batch"])) if body.get("batch") else None
    project = _task_project(db, caller, body.get("project"), batch)
    if project["scale"]["type"] != kind.name:
        raise bad("project", f"project {project['name']!r} holds {project['scale']['type']} tasks, not {kind.name}")
    params = _task_params(project, kind, body)
    callback = body.get("callback_url")
    if callback is not None and (not isinstance(callback, str) or not callback.startswith(("http://", "https://"))):
        raise bad("callback_url", "must be an http(s) URL")
    _project_spec(db, caller, project, kind, params)
    batch_id = batch["id"] if batch else None
    task = _validated(
        TaskCreate,
        {
            "data": kind.data(params),
            "unique_id": body.get("unique_id"),
            "metadata": body.get("metadata") or {},
            "priority": body.get("priority", 0),
            "batch_id": batch_id,
        },
    )
    tags = _tags(body.get("tags"))
    scale = {
        "type": kind.name,
        "params": params,
        "instruction": _instruction(body.get("instruction"), project["scale"]["param_history"][-1].get("instruction")),
        "callback_url": callback,
        **scale_records.with_tags({}, tags),
    }
    created = tasks.create_task(db, caller, project["id"], task, scale=scale)
    if not created["created"]:
        raise Conflict(f"a task with unique_id {task.unique_id!r} already exists", details={"field": "unique_id"})
    return _task_out(db, caller, created)


@router.get("/task/{task_id}")
def get_task(task_id: str, db: DB, caller: Caller) -> dict[str, Any]:
    return _task_out(db, caller, store.scale_task(db, caller, task_id))


@router.post("/task/{task_id}/cancel")
def cancel_task(task_id: str, db: DB, caller: Caller, clear_unique_id: str | None = None) -> dict[str, Any]:
    task = scale_records.cancel_pending_task(db, caller, task_id, clear_unique_id=_true(clear_unique_id))
    return _task_out(db, caller, task)


@router.post("/task/{task_id}/unique_id")
def update_unique_id(task_id: str, body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    body = _object(body)
    _refuse_unknown(body, {"unique_id"}, "update_task_unique_id")
    unique_id = body.get("unique_id")
    if not isinstance(unique_id, str) or not 1 <= len(unique_id) <= 400:
        raise bad("unique_id", "must be a string of 1 to 400 characters")
    return _task_out(db, caller, scale_records.edit_task(db, caller, task_id, unique_id=unique_id))


@router.delete("/task/{task_id}/unique_id")
def clear_unique_id(task_id: str, db: DB, caller: Caller) -> dict[str, Any]:
    return _task_out(db, caller, scale_records.edit_task(db, caller, task_id, unique_id=None))


@router.post("/task/{task_id}/setMetadata")
def set_metadata(task_id: str, body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    return _task_out(db, caller, scale_records.edit_task(db, caller, task_id, metadata=_object(body, "metadata")))


def _change_tags(db: Database, caller: Principal, task_id: str, body: Any, how: str) -> dict[str, Any]:
    given = _tags(body)
    change = {
        "set": lambda current: given,
        "add": lambda current: list(dict.fromkeys([*current, *given])),
        "delete": lambda current: [tag for tag in current if tag not in given],
    }[how]
    return _task_out(db, caller, scale_records.edit_task(db, caller, task_id, tags=change))


@router.post("/task/{task_id}/tags")
def set_tags(task_id: str, body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    return _change_tags(db, caller, task_id, body, "set")


@router.put("/task/{task_id}/tags")
def add_tags(task_id: str, body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    return _change_tags(db, caller, task_id, body, "add")


@router.delete("/task/{task_id}/tags")
def delete_tags(task_id: str, body: JsonBody, db: DB, caller: Caller) -> dict[str, Any]:
    return _change_tags(db, caller, task_id, body, "delete")


@router.post("/task/{task_id}/audit")
def audit_task(task_id: str, caller: Caller) -> None:
    raise bad("audit", "auditing through the Scale API is not supported: review tasks in truthset (docs/scale.md)")


# --- listing ------------------------------------------------------------------------------------

_TASK_FILTERS = {
    "start_time", "end_time", "status", "type", "project", "batch", "limit", "completed_before", "completed_after",
    "next_token", "customer_review_status", "tags", "updated_before", "updated_after", "unique_id",
    "include_attachment_url", "limited_response",
}  # fmt: skip


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad(name, f"{value!r} is not an ISO 8601 time (YYYY-MM-DD HH:MM:SS.mmmmmm, UTC)") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _limit(value: str | None) -> int:
    """The page size: 1 to 100, default 100 (scaleapi ``tasks()``: "Determines the page size (1-100)")."""
    if value is None:
        return MAX_PAGE
    try:
        limit = int(value)
    except ValueError:
        raise bad("limit", f"{value!r} is not a whole number (1 to {MAX_PAGE})") from None
    if not 1 <= limit <= MAX_PAGE:
        raise bad("limit", f"must be between 1 and {MAX_PAGE}")
    return limit


@router.get("/tasks")
def list_tasks(request: Request, db: DB, caller: Caller) -> dict[str, Any]:
    """Keyset pages: ``next_token`` is the last task's id, so paging to the end never repeats or
    skips a task while others are created."""
    query = request.query_params
    _refuse_unknown(dict(query), _TASK_FILTERS, "GET /tasks")
    one = {key: query.get(key) or None for key in _TASK_FILTERS}
    limit = _limit(one["limit"])
    token = one["next_token"]
    if token is not None and (len(token) != 24 or any(ch not in "0123456789abcdef" for ch in token)):
        raise bad("next_token", "is not a token this server gave")
    project = store.project_by_name(db, caller, one["project"]) if one["project"] else None
    batch = store.batch_by_name(db, caller, one["batch"]) if one["batch"] else None
    review = one["customer_review_status"]
    select = store.task_query(
        caller,
        project_id=project["id"] if project else None,
        batch_id=batch["id"] if batch else None,
        kind=one["type"],
        status=one["status"],
        review_statuses=review.split(",") if review else None,
        unique_ids=query.getlist("unique_id") or None,
        tags=_tags(query.getlist("tags")) or None,
        ranges={
            name: (_time(one[after], after), _time(one[before], before))
            for name, after, before in (
                ("created_at", "start_time", "end_time"),
                ("completed_at", "completed_after", "completed_before"),
                ("updated_at", "updated_after", "updated_before"),
            )
        },
    )
    rows, next_token, total = store.task_page(db, caller, select, cursor=token, limit=limit)
    project_names = store.names(db, caller, t.projects, [r["project_id"] for r in rows])
    batch_names = store.names(db, caller, t.batches, [r["batch_id"] for r in rows])
    docs = [shapes.task_json(r, project_names.get(r["project_id"]), batch_names.get(r["batch_id"])) for r in rows]
    if _true(one["limited_response"]):
        docs = [shapes.limited(d) for d in docs]
    return {
        "docs": docs,
        "total": total,
        "limit": limit,
        "offset": 0,
        "has_more": next_token is not None,
        "next_token": next_token,
    }


__all__ = ["router"]

"""Tasks: create, bulk import (JSON array or streamed JSONL), list, get, cancel, responses."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request, Response, status
from starlette.requests import ClientDisconnect

from truthset.api.deps import DB, AppSettings, Caller, MetadataFilters, MinConfidence, PageLimit
from truthset.api.responses import model_response
from truthset.domain import ReviewStatus, TaskStatus
from truthset.errors import InvalidInput
from truthset.schemas import (
    ImportReport,
    Page,
    ResponseCreate,
    ResponseOut,
    SubmitResult,
    TaskBulkAction,
    TaskBulkResult,
    TaskCreate,
    TaskCreated,
    TaskOut,
)
from truthset.services import queue, task_bulk, task_stream, tasks

router = APIRouter(tags=["tasks"])

#: The task browser's sorts (services/task_browse.py SORTS).
TaskSort = Literal["created", "-created", "updated", "-updated", "confidence", "-confidence", "priority", "-priority"]
#: An id (default order) or an opaque sorted-page cursor.
TaskCursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9A-Za-z_-]{1,400}$", description="`next_cursor` of the previous page; omit for the first."),
]
MaxConfidence = Annotated[
    float | None,
    Query(ge=0, le=1, description="Only tasks whose result has at most this confidence."),
]

JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "text/plain")


@router.post(
    "/projects/{project_id}/tasks",
    response_model=TaskCreated,
    operation_id="create_task",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": TaskCreated, "description": "A task with this unique_id already existed."}},
)
def create_task(
    db: DB, caller: Caller, settings: AppSettings, project_id: str, body: TaskCreate, response: Response
) -> dict:
    """Create one task. Repeating a `unique_id` returns the existing task with status 200."""
    task = tasks.create_task(db, caller, project_id, body, max_task_bytes=settings.max_task_bytes)
    if not task["created"]:
        response.status_code = status.HTTP_200_OK
    return task


@router.post(
    "/projects/{project_id}/tasks/bulk",
    response_model=ImportReport,
    operation_id="import_tasks",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}, "example": '{"data": {"text": "hi"}}\n'},
                "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/TaskCreate"}}},
            },
        }
    },
)
async def import_tasks(
    request: Request,
    project_id: str,
    caller: Caller,
    batch_id: str | None = None,
    on_error: Annotated[
        Literal["reject", "skip"],
        Query(description="reject: store none if any line is bad; skip: store the good lines"),
    ] = "reject",
) -> dict:
    """Create many tasks in one request: a JSONL stream or a JSON array, both read as they arrive.

    Every line is validated before the first is stored; the report names bad lines by number.
    A `unique_id` (or, without one, the same data and metadata) already stored creates nothing.
    Bad lines with nothing stored (`on_error=reject`, or every line bad) answer 422 with the report
    in `details.report`. Files of other formats, and big ones, go through `POST /projects/{id}/imports`.
    """
    db = request.app.state.db
    settings = request.app.state.settings
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    chunks = _body_chunks(request)
    if content_type == "application/json":
        items: Iterator[tuple[int, Any]] = task_stream.json_array_items(chunks, settings.max_task_bytes)
    elif content_type in JSONL_TYPES or not content_type:
        items = task_stream.jsonl_items(chunks, settings.max_task_bytes)
    else:
        raise InvalidInput(
            f"unsupported content type {content_type!r}: send application/x-ndjson or application/json",
            details={"field": "content-type"},
        )
    report = await anyio.to_thread.run_sync(
        lambda: tasks.import_tasks(
            db, caller, project_id, items, batch_id=batch_id, on_error=on_error, max_task_bytes=settings.max_task_bytes
        )
    )
    if report.refused:
        raise report.refusal()
    return report.as_dict()


def _body_chunks(request: Request) -> Iterator[bytes]:
    """The request body, chunk by chunk, for a worker thread: each chunk is awaited on the event loop."""
    stream = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None
        except ClientDisconnect:
            message = "the client closed the connection before the body ended"
            raise InvalidInput(message, details={"field": "body"}) from None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk


@router.get("/tasks", response_model=Page[TaskOut], operation_id="list_tasks")
def list_tasks(
    db: DB,
    caller: Caller,
    limit: PageLimit,
    metadata: MetadataFilters,
    project_id: str | None = None,
    batch_id: str | None = None,
    status: TaskStatus | None = None,
    unique_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
    completed_after: datetime | None = None,
    completed_before: datetime | None = None,
    min_confidence: MinConfidence = None,
    review_status: Annotated[ReviewStatus | None, Query(description="Only tasks at this review stage.")] = None,
    cursor: TaskCursor = None,
    max_confidence: MaxConfidence = None,
    worker_id: Annotated[str | None, Query(max_length=24, description="Only tasks this worker answered.")] = None,
    gold: Annotated[bool | None, Query(description="true: only gold tasks; false: no gold task.")] = None,
    unreviewed: Annotated[bool, Query(description="Only tasks never sent to review.")] = False,
    search: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Words that must all appear in the task's data.")
    ] = None,
    sort: Annotated[TaskSort, Query(description="Order: a name, or -name for descending.")] = "created",
) -> dict:
    """Tasks, oldest first, filtered; `metadata.KEY=VALUE` filters on metadata. Pages with `cursor`.

    Sorted by `updated`, `confidence` (only tasks with a result) or `priority`, within a project."""
    filters = tasks.TaskFilter(
        project_id=project_id,
        batch_id=batch_id,
        status=status,
        unique_id=unique_id,
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        updated_before=updated_before,
        completed_after=completed_after,
        completed_before=completed_before,
        metadata=metadata,
        min_confidence=min_confidence,
        review_status=review_status,
        max_confidence=max_confidence,
        worker_id=worker_id,
        gold=gold,
        unreviewed=unreviewed,
        search=search,
    )
    items, next_cursor = tasks.list_tasks(db, caller, filters, cursor=cursor, limit=limit, sort=sort)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/projects/{project_id}/tasks/actions", response_model=TaskBulkResult, operation_id="bulk_task_action")
def bulk_task_action(db: DB, caller: Caller, project_id: str, body: TaskBulkAction) -> dict:
    """Cancel, re-queue, set the priority of, or promote to gold the project's tasks named by `ids` or
    matching `filter`; in blocks of 500, one transaction each. Returns counts."""
    return task_bulk.bulk_action(
        db,
        caller,
        project_id,
        body.action,
        ids=body.ids,
        filters=tasks.TaskFilter(**body.filter.model_dump()) if body.filter is not None else None,
        priority=body.priority,
        dry_run=body.dry_run,
    )


@router.get("/tasks/{task_id}", response_model=TaskOut, operation_id="get_task")
def get_task(db: DB, caller: Caller, task_id: str) -> dict:
    return tasks.get_task(db, caller, task_id)


@router.post("/tasks/{task_id}/cancel", response_model=TaskOut, operation_id="cancel_task")
def cancel_task(db: DB, caller: Caller, task_id: str) -> dict:
    return tasks.cancel_task(db, caller, task_id)


@router.get("/tasks/{task_id}/responses", response_model=list[ResponseOut], operation_id="list_task_responses")
def list_task_responses(db: DB, caller: Caller, task_id: str) -> list[dict]:
    return tasks.task_responses(db, caller, task_id)


#: 1 to 200 characters (the stored column's size), no control characters (PostgreSQL text holds no NUL).
IDEMPOTENCY_KEY = Header(
    min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="Makes a retried submit harmless."
)


@router.post(
    "/tasks/{task_id}/responses",
    response_model=SubmitResult,
    status_code=status.HTTP_201_CREATED,
    operation_id="submit_response",
)
async def submit_response(
    db: DB,
    caller: Caller,
    task_id: str,
    body: ResponseCreate,
    idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY] = None,
) -> Response:
    """Answer a task (normally the one your assignment leased). Validated against the project's spec."""
    submit = functools.partial(queue.submit, idempotency_key=idempotency_key)
    result = await asyncio.wrap_future(db.submit(submit, db, caller, task_id, body))
    if result["replayed"]:
        return model_response(SubmitResult, result, headers={"Idempotent-Replayed": "true"})
    return model_response(SubmitResult, result, status_code=status.HTTP_201_CREATED)

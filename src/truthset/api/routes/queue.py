"""The annotation queue: lease the next task, skip, release."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from truthset.api.deps import DB, Caller, PageLimit
from truthset.api.responses import model_response
from truthset.schemas import AssignmentOut, JobOut, Page, QueueTaskOut
from truthset.services import active_learning, queue

router = APIRouter(tags=["queue"])


@router.post(
    "/projects/{project_id}/next",
    response_model=AssignmentOut | None,
    operation_id="next_task",
    responses={204: {"description": "No task is waiting for you in this project."}},
)
async def next_task(db: DB, caller: Caller, project_id: str) -> Response:
    """Lease the next task to you until `expires_at`. Answer it, skip it or release it."""
    assignment = await asyncio.wrap_future(db.submit(queue.next_assignment, db, caller, project_id))
    if assignment is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return model_response(AssignmentOut, assignment)


@router.post("/assignments/{assignment_id}/skip", response_model=AssignmentOut, operation_id="skip_assignment")
def skip_assignment(db: DB, caller: Caller, assignment_id: str) -> dict:
    """You won't answer this task; it goes to someone else and never comes back to you."""
    return queue.skip(db, caller, assignment_id)


@router.post("/assignments/{assignment_id}/release", response_model=AssignmentOut, operation_id="release_assignment")
def release_assignment(db: DB, caller: Caller, assignment_id: str) -> dict:
    """Give the task back to the queue without answering (you may get it again later)."""
    return queue.release(db, caller, assignment_id)


QueueCursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9A-Za-z_-]{1,200}$", description="`next_cursor` of the previous page; omit for the first."),
]


@router.get("/projects/{project_id}/queue", response_model=Page[QueueTaskOut], operation_id="list_queue")
def list_queue(db: DB, caller: Caller, project_id: str, limit: PageLimit, cursor: QueueCursor = None) -> dict:
    """The tasks still short of workers, in the order the queue serves them: priority, then queue rank, then oldest.

    Whichever worker asks (a worker also passes over the tasks they already had). Readers and above.
    """
    items, next_cursor = active_learning.queue_page(db, caller, project_id, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/projects/{project_id}/queue/rerank", response_model=JobOut, status_code=202, operation_id="rerank_queue"
)
def rerank_queue(db: DB, caller: Caller, project_id: str) -> dict:
    """Re-rank the queue now, as a background job (`queue.rerank`); follow it at `/jobs/{id}`.

    Under `ordering: "uncertainty"` or `"model_uncertainty"` the pending tasks are ordered by the
    value of one more human judgment; under `"priority"` every rank goes back to 0. Re-ranks also
    run by themselves after predictions, refits and policy changes. The re-rank already waiting, if any, is returned.
    Managers and above.
    """
    return active_learning.request_rerank(db, caller, project_id)

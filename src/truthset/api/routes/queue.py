"""The annotation queue: lease the next task, skip, release."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status

from truthset.api.deps import DB, Caller
from truthset.api.responses import model_response
from truthset.schemas import AssignmentOut
from truthset.services import queue

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

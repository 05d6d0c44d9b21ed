"""Review: the review queue, verdicts on a task's result, and a task's history."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from truthset.api.deps import DB, Caller
from truthset.api.responses import model_response
from truthset.schemas import HistoryStep, ReviewCreate, ReviewItem, ReviewOut, ReviewResult, TaskOut
from truthset.services import history, review

router = APIRouter(tags=["review"])


@router.post(
    "/projects/{project_id}/reviews/next",
    response_model=ReviewItem | None,
    operation_id="next_review",
    responses={204: {"description": "No task is waiting for your review in this project."}},
)
def next_review(db: DB, caller: Caller, project_id: str) -> Response:
    """Claim the next task waiting for review until `expires_at`, with every response and the result.

    Never a task you answered or skipped. Reviewers and above.
    """
    item = review.next_review(db, caller, project_id)
    if item is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return model_response(ReviewItem, item)


@router.post(
    "/tasks/{task_id}/reviews",
    response_model=ReviewResult,
    status_code=status.HTTP_201_CREATED,
    operation_id="review_task",
)
def review_task(db: DB, caller: Caller, task_id: str, body: ReviewCreate) -> dict:
    """Accept, reject (with a `reason`: the task goes back to the queue) or fix (with the corrected `answer`)."""
    return review.submit_review(db, caller, task_id, body.verdict, body.reason, body.answer)


@router.post("/tasks/{task_id}/reviews/skip", response_model=TaskOut, operation_id="skip_review")
def skip_review(db: DB, caller: Caller, task_id: str) -> dict:
    """You won't review this task: it goes back to the review queue for another reviewer."""
    return review.skip_review(db, caller, task_id)


@router.get("/tasks/{task_id}/reviews", response_model=list[ReviewOut], operation_id="list_task_reviews")
def list_task_reviews(db: DB, caller: Caller, task_id: str) -> list[dict]:
    """The task's reviews, oldest first."""
    return review.list_reviews(db, caller, task_id)


@router.get("/tasks/{task_id}/history", response_model=list[HistoryStep], operation_id="task_history")
def task_history(db: DB, caller: Caller, task_id: str) -> list[dict]:
    """Every step of the task in time order: leases, responses, completion, overlap raised, refits, reviews."""
    return history.task_history(db, caller, task_id)

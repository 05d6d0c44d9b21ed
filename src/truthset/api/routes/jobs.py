"""Jobs: background work (refits, exports, webhook deliveries) with its progress; cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from truthset.api.deps import DB, Caller, Cursor, PageLimit
from truthset.domain import JobStatus
from truthset.schemas import JobOut, Page
from truthset.services import jobs

router = APIRouter(tags=["jobs"])


@router.get("/jobs", response_model=Page[JobOut], operation_id="list_jobs")
def list_jobs(
    db: DB,
    caller: Caller,
    limit: PageLimit,
    cursor: Cursor = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=40, description="Only jobs of this kind.")] = None,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
) -> dict:
    """The organization's jobs, newest first. Managers and above see every job; others the jobs they started."""
    items, next_cursor = jobs.list_jobs(db, caller, kind=kind, status=status, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/jobs/{job_id}", response_model=JobOut, operation_id="get_job")
def get_job(db: DB, caller: Caller, job_id: str) -> dict:
    """One job: status, progress, attempts, result or last error."""
    return jobs.get_job(db, caller, job_id)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, operation_id="cancel_job")
def cancel_job(db: DB, caller: Caller, job_id: str) -> dict:
    """Cancel a job: a queued one never runs; a running one stops at its next progress report.

    Canceling a canceled job changes nothing; a job that has succeeded or failed is a 409 `job_finished`.
    """
    return jobs.cancel(db, caller, job_id)

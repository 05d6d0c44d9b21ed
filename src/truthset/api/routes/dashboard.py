"""The project dashboard's figures: one endpoint, read every few seconds by the dashboard page."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from truthset.api.deps import DB, Caller
from truthset.schemas import DashboardOut
from truthset.services import dashboard

router = APIRouter(tags=["quality"])

WorkerCursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9a-f]{24}$", description="`workers.next_cursor` of the previous answer: the next workers."),
]


@router.get("/projects/{project_id}/dashboard", response_model=DashboardOut, operation_id="project_dashboard")
def project_dashboard(
    db: DB,
    caller: Caller,
    project_id: str,
    interval: Annotated[
        Literal["hour", "day"], Query(description="Throughput per hour (last 48 hours) or per day (last 30 days).")
    ] = "hour",
    workers_cursor: WorkerCursor = None,
    workers_limit: Annotated[int, Query(ge=1, le=200, description="Workers in the per-worker table.")] = 50,
) -> dict:
    """A project's dashboard: progress, throughput, judgments per task, confidence distribution,
    agreement per question, a page of the per-worker table and the cost. Managers and above.

    Agreement figures are computed on the most recent 2,000 tasks with answers; the counts are the
    whole project's. Cost is judgments x the quality policy's `price_per_judgment` (null without one).
    """
    return dashboard.project_dashboard(
        db, caller, project_id, interval=interval, cursor=workers_cursor, limit=workers_limit
    )

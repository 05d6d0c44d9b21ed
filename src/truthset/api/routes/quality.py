"""Quality figures: agreement per question, figures per worker."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from truthset.api.deps import DB, Caller, Cursor, PageLimit
from truthset.schemas import AgreementOut, JobOut, Page, QualityModelsOut, WorkerFigures, WorkerStats
from truthset.services import quality, refit

router = APIRouter(tags=["quality"])

BatchId = Annotated[str | None, Query(description="Only the responses to this batch's tasks.")]


@router.get("/projects/{project_id}/agreement", response_model=AgreementOut, operation_id="project_agreement")
def project_agreement(db: DB, caller: Caller, project_id: str, batch_id: BatchId = None) -> dict:
    """Inter-annotator agreement per question: percent agreement, Fleiss' and Cohen's kappa, Krippendorff's alpha.

    A figure that is not defined is null, with the reason in `reasons`. Managers and above.
    """
    return quality.project_agreement(db, caller, project_id, batch_id=batch_id)


@router.get("/projects/{project_id}/workers", response_model=Page[WorkerFigures], operation_id="project_workers")
def project_workers(
    db: DB, caller: Caller, project_id: str, limit: PageLimit, cursor: Cursor = None, batch_id: BatchId = None
) -> dict:
    """Figures of each worker who answered in the project, in worker id order. Managers and above."""
    items, next_cursor = quality.project_workers(db, caller, project_id, batch_id=batch_id, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/workers/{worker_id}/stats", response_model=WorkerStats, operation_id="worker_stats")
def worker_stats(
    db: DB,
    caller: Caller,
    worker_id: str,
    project_id: Annotated[str, Query(description="The project the figures are about.")],
    batch_id: BatchId = None,
) -> dict:
    """One worker's figures on a project. Managers and above read anyone's; every member their own."""
    return quality.worker_stats(db, caller, worker_id, project_id, batch_id=batch_id)


@router.get("/projects/{project_id}/quality-models", response_model=QualityModelsOut, operation_id="quality_models")
def quality_models(db: DB, caller: Caller, project_id: str) -> dict:
    """The project's fitted worker models: per question (and option, criterion), the current version, its
    method, when and on how many answers it was fitted, and how its confidence is calibrated. Empty before
    the first refit. Managers and above.
    """
    return {"project_id": project_id, "items": quality.quality_models(db, caller, project_id)}


@router.post("/projects/{project_id}/refit", response_model=JobOut, status_code=202, operation_id="refit_project")
def refit_project(db: DB, caller: Caller, project_id: str) -> dict:
    """Refit the project's worker models now, as a background job (`quality.refit`); follow it at `/jobs/{id}`.

    Completed tasks are then re-scored; an answer that changes is recorded in the task's history.
    Refits also run by themselves as answers arrive. The refit already waiting, if any, is returned.
    Managers and above.
    """
    return refit.request_refit(db, caller, project_id)

"""The built-in text model: train a version (202 with the job), list the trained versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from truthset.api.deps import DB, Caller, Cursor, PageLimit
from truthset.schemas import JobOut, ModelTrainCreate, Page, ProjectModelOut
from truthset.services import model_training, predictions

router = APIRouter(tags=["models"])


@router.post(
    "/projects/{project_id}/models",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="train_model",
)
def train_model(db: DB, caller: Caller, project_id: str, body: ModelTrainCreate) -> dict:
    """Start a `model.train` job for a text `label`/`labels` question. Managers and above.

    The job trains the built-in text model on the project's trusted results (reviewed, gold, or at
    the question's target confidence), stores the version with its metrics, and predicts every task
    still waiting for people as model `truthset-text` (docs/models.md). Follow it with
    `GET /jobs/{job_id}`; too few labels ends it with `result.status` `not_enough_data`.
    """
    return model_training.request_training(db, caller, project_id, body.question)


@router.get("/projects/{project_id}/models", response_model=Page[ProjectModelOut], operation_id="list_models")
def list_models(db: DB, caller: Caller, project_id: str, limit: PageLimit, cursor: Cursor = None) -> dict:
    """The project's trained model versions with their metrics, newest first. Managers and above."""
    items, next_cursor = model_training.list_models(db, caller, project_id, cursor=cursor, limit=limit)
    return {"items": [_shown(row) for row in items], "next_cursor": next_cursor}


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "model": predictions.model_name(model_training.MODEL, row["version"])}

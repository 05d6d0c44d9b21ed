"""Predictions: a model version's answers uploaded as its responses; a task's predictions."""

from __future__ import annotations

from fastapi import APIRouter

from truthset.api.deps import DB, Caller
from truthset.schemas import PredictionOut, PredictionReport, PredictionUpload
from truthset.services import predictions

router = APIRouter(tags=["predictions"])


@router.post("/projects/{project_id}/predictions", response_model=PredictionReport, operation_id="upload_predictions")
def upload_predictions(db: DB, caller: Caller, project_id: str, body: PredictionUpload) -> dict:
    """Store predictions of one model version (a worker of kind `model`, `name@version`). Managers and above.

    Each prediction names a task (`task_id` or `unique_id`), a question, the answer (checked against
    the spec like a person's) and the model's score in [0, 1]. Uploading the same prediction again
    changes nothing (`unchanged`); a different one for a task and question already predicted by this
    version is refused: upload it as a new version (docs/models.md).
    """
    return predictions.upload_predictions(db, caller, project_id, body)


@router.get("/tasks/{task_id}/predictions", response_model=list[PredictionOut], operation_id="task_predictions")
def task_predictions(db: DB, caller: Caller, task_id: str) -> list[dict]:
    """The task's predictions, oldest first: model, answer and score per question. Reviewers and above."""
    return predictions.list_task_predictions(db, caller, task_id)

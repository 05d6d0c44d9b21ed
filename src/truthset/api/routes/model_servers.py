"""External model servers: start a job that trains and asks a project's model server (docs/models.md)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import Field

from truthset.api.deps import DB, AppSettings, Caller
from truthset.schemas import Input, JobOut, ModelName
from truthset.services import model_servers

router = APIRouter(tags=["predictions"])


class ModelServerPredictCreate(Input):
    question: str = Field(min_length=1, max_length=64, description="The question of the spec the model answers.")
    base_url: str = Field(
        min_length=1,
        max_length=2000,
        description="The model server's root: the job calls `{base_url}/health`, `/train` and `/predict`.",
    )
    name: ModelName | None = Field(
        None,
        min_length=1,
        max_length=96,
        description="The model worker's name (no '@'; default: /health's name). The version is /health's.",
    )
    api_key: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="Sent as `Authorization: Bearer`; stored sealed (AES-GCM) in the job, never shown.",
    )
    limit: int | None = Field(None, ge=1, le=1_000_000, description="Ask about at most this many tasks (gold first).")
    batch_size: int = Field(64, ge=1, le=1000, description="Tasks per /predict and results per /train request.")
    train: bool = Field(
        True, description="First send /train the results completed or reviewed since the last such job (never gold)."
    )
    include_gold: bool = Field(
        True, description="Ask about the gold tasks too, first (the model is measured on them like a person)."
    )
    default_score: float = Field(0.5, ge=0.0, le=1.0, description="The score of an answer the server gave none.")


@router.post(
    "/projects/{project_id}/model-server-predictions",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_model_server_predictions",
)
def start_model_server_predictions(
    db: DB, caller: Caller, settings: AppSettings, project_id: str, body: ModelServerPredictCreate
) -> dict:
    """Start a `model.server_predict` job against an external model server. Managers and above.

    The job sends `/train` the project's new trusted results, then asks `/predict` about the gold,
    then pending, tasks its model version has not answered; valid answers are stored as predictions
    of the model worker `<name>@<version>` (the version from `/health`), invalid ones counted in the
    job's `result`. A `base_url` the network guard refuses is a 422 at once (docs/models.md,
    "External model servers").
    """
    request = model_servers.ServerPredictRequest(**body.model_dump())
    return model_servers.start_server_predictions(db, caller, settings, project_id, request)

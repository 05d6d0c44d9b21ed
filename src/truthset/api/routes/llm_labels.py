"""The LLM labeler: start a job that labels a project's gold and pending tasks with an OpenAI-compatible model."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import Field

from truthset.api.deps import DB, AppSettings, Caller
from truthset.schemas import Input, JobOut, ModelName
from truthset.services import llm_labeling

router = APIRouter(tags=["predictions"])


class LlmLabelCreate(Input):
    question: str = Field(min_length=1, max_length=64, description="The question of the spec the model answers.")
    base_url: str = Field(
        min_length=1,
        max_length=2000,
        description="The endpoint up to and including `/v1`: the job POSTs to `{base_url}/chat/completions`.",
    )
    model: ModelName = Field(min_length=1, max_length=96, description="The model's name on that server (no '@').")
    version: str | None = Field(
        None,
        min_length=1,
        max_length=60,
        description="The model worker's version (default: derived from the model, prompt, question and sampling).",
    )
    limit: int | None = Field(None, ge=1, le=1_000_000, description="Label at most this many tasks (gold first).")
    api_key: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="Sent as `Authorization: Bearer`; stored sealed (AES-GCM) in the job, never shown. "
        "Default: the runner's TRUTHSET_LLM_API_KEY.",
    )
    default_score: float = Field(
        0.5, ge=0.0, le=1.0, description="The score of an answer whose reply has no token log-probabilities."
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=1, le=32_768, description="Longest reply, in tokens.")
    concurrency: int = Field(4, ge=1, le=32, description="Requests in flight at once.")
    include_gold: bool = Field(
        True, description="Label the gold tasks too, first (the model is measured on them like a person)."
    )


@router.post(
    "/projects/{project_id}/llm-labels",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_llm_labeling",
)
def start_llm_labeling(db: DB, caller: Caller, settings: AppSettings, project_id: str, body: LlmLabelCreate) -> dict:
    """Start a `model.llm_label` job: ask the model about the project's gold, then pending, tasks. Managers and above.

    Its valid answers are stored as predictions of the model worker `llm:<model>@<version>`, measured
    like any worker; invalid answers and failed calls are counted in the job's `result`, with the
    tokens spent. A `base_url` the network guard refuses (a private address, unless
    TRUTHSET_OUTBOUND_ALLOW names it) is a 422 at once (docs/models.md, "LLM labeler").
    """
    request = llm_labeling.LlmLabelRequest(**body.model_dump())
    return llm_labeling.start_llm_labeling(db, caller, settings, project_id, request)

"""An LLM as a model worker of a project: a ``model.llm_label`` job asks an OpenAI-compatible
chat-completions endpoint about the project's gold, then pending, tasks and stores its valid answers as
predictions (docs/models.md, "LLM labeler").

:func:`start_llm_labeling` (the API's side) checks the request at once: managers and above, the
project of the caller's organization, the question in its spec, the endpoint's URL through the
network guard (a refused address is a 422 naming ``base_url``); then it queues the job in its
transaction. :func:`run_llm_labeling` (the handler) reads the gold and pending tasks the model version has
not predicted yet (keyset, in chunks), asks :class:`~truthset.learners.llm_labeler.LLMLabeler`
through a ``send`` that goes through :mod:`~truthset.services.netguard` (address rules, DNS pinning,
time and size limits), and uploads each chunk's valid answers with
:func:`~truthset.services.predictions.upload_predictions`: the model version is a worker
``llm:<model>@<version>`` measured like any other. Invalid answers and failed calls are counted in
the job's result, never stored; tokens are summed there (a response row has no place for them).

The API key: from the request, sealed with AES-GCM under the server's secret key (the webhooks'
key, ``TRUTHSET_WEBHOOK_SECRET_KEY`` or its key file) before it enters the job's payload, and
unsealed only by the runner; else ``TRUTHSET_LLM_API_KEY`` of the runner. It is never logged nor
returned.

Safe to repeat: a retried job skips the tasks the model version already predicted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from truthset.config import Settings, get_settings
from truthset.domain import Principal, TaskStatus
from truthset.errors import InvalidInput
from truthset.learners.llm_labeler import SYSTEM_PROMPT, LabelOutcome, LLMConfig, LLMLabeler
from truthset.questions import QuestionConfig
from truthset.services import jobs, model_endpoints, netguard, predictions
from truthset.services.jobs import JobContext
from truthset.services.policy import Action, require
from truthset.services.projects import compiled_spec, load_project, require_active
from truthset.storage import Database

__all__ = ["KIND", "LlmLabelRequest", "run_llm_labeling", "start_llm_labeling"]

KIND = "model.llm_label"
MODEL_PREFIX = "llm:"
#: Tasks asked about between two uploads (and two checks for a cancel).
CHUNK = 32
#: Invalid answers and failed calls whose reasons the result keeps (the counts are complete).
MAX_REPORTED = 20
_KEY_PURPOSE = "llm-label"


@dataclass(frozen=True)
class LlmLabelRequest:
    question: str
    base_url: str
    model: str
    version: str | None = None
    limit: int | None = None
    api_key: str | None = field(default=None, repr=False)
    default_score: float = 0.5
    temperature: float = 0.0
    max_tokens: int = 512
    concurrency: int = 4
    include_gold: bool = True


# --- starting a job (the API's side) ----------------------------------------------------------------


def start_llm_labeling(
    db: Database, principal: Principal, settings: Settings, project_id: str, body: LlmLabelRequest
) -> dict[str, Any]:
    """Queue a ``model.llm_label`` job (managers and above); returns the job as the API shows it."""
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        require_active(project)
        question = model_endpoints.question_named(compiled_spec(project).questions, body.question)
    if "@" in body.model or not body.model.strip():
        raise InvalidInput("model: a model name has no '@' (the version follows it)", details={"field": "model"})
    model_endpoints.check_base_url(body.base_url, "/chat/completions", settings)
    version = body.version or derived_version(body, question, project.get("instructions") or "")
    payload: dict[str, Any] = {
        "project_id": project["id"],
        "question": question.name,
        "base_url": body.base_url,
        "model": body.model,
        "version": version,
        "limit": body.limit,
        "default_score": body.default_score,
        "temperature": body.temperature,
        "max_tokens": body.max_tokens,
        "concurrency": body.concurrency,
        "include_gold": body.include_gold,
        "worker": predictions.model_name(MODEL_PREFIX + body.model, version),
    }
    if body.api_key:
        sealed = model_endpoints.seal_api_key(settings, principal.organization_id, _KEY_PURPOSE, body.api_key)
        payload["api_key"] = sealed
    with db.write() as conn:
        job = jobs.enqueue(
            conn, principal.organization_id, KIND, payload, created_by=principal.member_id, max_attempts=3
        )
    return jobs.public(job)




def derived_version(body: LlmLabelRequest, question: QuestionConfig, instructions: str) -> str:
    """A version named by what shapes the answers (model, prompt, question, sampling): the same set-up
    is the same worker; a changed prompt or question is a new one, measured afresh."""
    shaped = {
        "model": body.model,
        "system": SYSTEM_PROMPT,
        "instructions": instructions,
        "question": question.model_dump(mode="json"),
        "temperature": body.temperature,
        "max_tokens": body.max_tokens,
    }
    return hashlib.sha256(json.dumps(shaped, sort_keys=True).encode()).hexdigest()[:10]


# --- the network -----------------------------------------------------------------------------------


# --- the job ---------------------------------------------------------------------------------------


@dataclass
class _Result:
    model: str
    worker_id: str | None = None
    waiting: int = 0  # gold and pending tasks the model version had not predicted when the job started
    asked: int = 0
    stored: int = 0
    invalid: int = 0
    failed: int = 0
    refused: int = 0  # valid answers the upload refused (the task changed meanwhile)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    structured: str = "json_schema"
    problems: list[dict[str, Any]] = field(default_factory=list)

    def add(self, outcome: LabelOutcome) -> None:
        self.invalid += len(outcome.invalid)
        self.failed += len(outcome.failed)
        self.calls += outcome.usage.calls
        self.prompt_tokens += outcome.usage.prompt_tokens
        self.completion_tokens += outcome.usage.completion_tokens
        for kind, items in (("invalid", outcome.invalid), ("failed", outcome.failed)):
            for item in items:
                if len(self.problems) < MAX_REPORTED:
                    self.problems.append({"task_id": item.task_key, "kind": kind, "reason": item.reason[:300]})

    def as_dict(self) -> dict[str, Any]:
        tokens = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "per_call": round((self.prompt_tokens + self.completion_tokens) / self.calls, 1) if self.calls else None,
        }
        counts = ("waiting", "asked", "stored", "invalid", "failed", "refused", "calls")
        return {
            "model": self.model,
            "worker_id": self.worker_id,
            **{name: getattr(self, name) for name in counts},
            "usage": tokens,
            "structured": self.structured,
            "problems": self.problems,
        }


def run_llm_labeling(db: Database, job: JobContext) -> dict[str, Any]:
    """The ``model.llm_label`` handler: label the gold and pending tasks, store the valid answers (see the module)."""
    settings = job.settings or get_settings()
    payload = job.payload
    target = model_endpoints.job_target(db, job, "LLM labeling")
    principal, project, question, fields = target.principal, target.project, target.question, target.spec.fields
    result = _Result(str(payload["worker"]))
    statuses = (TaskStatus.GOLD, TaskStatus.PENDING) if payload.get("include_gold", True) else (TaskStatus.PENDING,)
    todo = model_endpoints.unpredicted(
        db, principal.organization_id, project["id"], result.model, payload.get("limit"), statuses
    )
    result.waiting = len(todo)
    send = model_endpoints.GuardedSend(_guard(settings))
    labeler = LLMLabeler(_config(payload, settings, principal.organization_id), send)
    job.progress(0, len(todo))
    for start in range(0, len(todo), CHUNK):
        job.check()  # a cancel stops between chunks: what was stored stays (a repeat skips it)
        chunk = model_endpoints.still_waiting(db, principal.organization_id, todo[start : start + CHUNK], statuses)
        outcome = labeler.label(question, chunk, fields=fields, instructions=project.get("instructions") or "")
        result.asked += len(chunk)
        result.add(outcome)
        result.structured = labeler.structured
        _store(db, principal, project["id"], payload, outcome, result)
        job.progress(min(start + CHUNK, len(todo)), len(todo))
    return result.as_dict()


def _guard(settings: Settings) -> netguard.Guard:
    return netguard.Guard.from_settings(settings)


def _config(payload: Mapping[str, Any], settings: Settings, organization_id: str) -> LLMConfig:
    return LLMConfig(
        base_url=str(payload["base_url"]),
        model=str(payload["model"]),
        api_key=_api_key(payload, settings, organization_id),
        temperature=float(payload.get("temperature", 0.0)),
        max_tokens=int(payload.get("max_tokens", 512)),
        default_score=float(payload.get("default_score", 0.5)),
        concurrency=int(payload.get("concurrency", 4)),
    )


def _api_key(payload: Mapping[str, Any], settings: Settings, organization_id: str) -> str | None:
    """The job's sealed key, else the runner's ``TRUTHSET_LLM_API_KEY``."""
    key = model_endpoints.unseal_api_key(payload, settings, organization_id, _KEY_PURPOSE)
    if key is not None:
        return key
    return settings.llm_api_key.get_secret_value() if settings.llm_api_key else None


def _store(
    db: Database,
    principal: Principal,
    project_id: str,
    payload: Mapping[str, Any],
    outcome: LabelOutcome,
    result: _Result,
) -> None:
    if not outcome.predictions:
        return
    items = [
        {"task_id": p.task_key, "question": p.question, "answer": p.answer, "score": p.score}
        for p in outcome.predictions
        if p.score is not None
    ]
    model = MODEL_PREFIX + str(payload["model"])
    report = model_endpoints.store_predictions(db, principal, project_id, model, str(payload["version"]), items)
    result.stored += report["stored"] + report["unchanged"]
    result.refused += report["invalid"]
    result.worker_id = report["worker_id"] or result.worker_id

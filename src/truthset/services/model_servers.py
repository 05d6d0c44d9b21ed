"""An external model server as a model worker of a project: a ``model.server_predict`` job tells the
server of the project's new trusted results (``POST /train``) and stores its answers about the gold
and pending tasks (``POST /predict``) as predictions (docs/models.md, "External model servers").

The server speaks the protocol of :mod:`truthset.learners.model_server`; the job calls it through
:class:`~truthset.services.model_endpoints.GuardedSend` (the network guard: address rules, DNS pinning,
no redirects, time and size limits). :func:`start_server_predictions` (the API's side) checks the
request at once: managers and above, the project of the caller's organization, the question in its
spec, ``base_url`` through the guard (a refused address is a 422 naming ``base_url``); then it queues
the job in its transaction. :func:`run_server_predictions` (the handler):

1. With ``train`` on, the training labels (the built-in model's rule, without gold: reviewed
   results and completed results at target) of the tasks changed since the previous job of this
   project, question and server succeeded (its ``result.trained_until``) are sent to ``/train``.
   Gold answers never are: the model is measured on the gold tasks it is asked about.
2. ``GET /health`` names the model worker: ``<name>@<version>`` (``name`` from the request, if
   given, else the server's).
3. The gold, then pending, tasks this model version has not predicted yet are sent to ``/predict``
   in batches (the client's); valid answers are stored through
   :func:`~truthset.services.predictions.upload_predictions`; invalid ones and abstentions are
   counted in the result, never stored. A cancel stops between chunks; a repeat skips what is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select

from truthset.config import Settings, get_settings
from truthset.domain import JobStatus, Principal, TaskStatus
from truthset.learners._records import Task
from truthset.learners.model_server import ModelServerClient, PredictOutcome, SendError, ServerError
from truthset.questions import QuestionConfig
from truthset.services import jobs, model_endpoints, netguard, predictions
from truthset.services.completion import completion_rules
from truthset.services.jobs import JobContext, JobFailed
from truthset.services.model_training import LABEL_COLUMNS, task_rows, training_label
from truthset.services.policy import Action, require
from truthset.services.projects import compiled_spec, load_project, require_active
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

__all__ = ["KIND", "ServerPredictRequest", "run_server_predictions", "start_server_predictions"]

KIND = "model.server_predict"
#: Tasks sent between two uploads (and two checks for a cancel); the client splits them in batches.
CHUNK = 256
#: Invalid answers whose reasons the result keeps (the counts are complete).
MAX_REPORTED = 20
_KEY_PURPOSE = "model-server"
#: Only completed tasks are sent to /train, never gold: the model is asked about gold tasks, and a
#: model that had seen their answers would be measured on what it was told.
_TRAIN_STATUSES = (str(TaskStatus.COMPLETED),)


@dataclass(frozen=True)
class ServerPredictRequest:
    question: str
    base_url: str
    name: str | None = None
    api_key: str | None = field(default=None, repr=False)
    limit: int | None = None
    batch_size: int = 64
    train: bool = True
    include_gold: bool = True
    default_score: float = 0.5


# --- starting a job (the API's side) ----------------------------------------------------------------


def start_server_predictions(
    db: Database, principal: Principal, settings: Settings, project_id: str, body: ServerPredictRequest
) -> dict[str, Any]:
    """Queue a ``model.server_predict`` job (managers and above); returns the job as the API shows it."""
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_TASKS)
        require_active(project)
        model_endpoints.question_named(compiled_spec(project).questions, body.question)
    model_endpoints.check_base_url(body.base_url, "/health", settings)
    payload: dict[str, Any] = {
        "project_id": project["id"],
        "question": body.question,
        "base_url": body.base_url.rstrip("/"),
        "name": body.name,
        "limit": body.limit,
        "batch_size": body.batch_size,
        "train": body.train,
        "include_gold": body.include_gold,
        "default_score": body.default_score,
    }
    if body.api_key:
        sealed = model_endpoints.seal_api_key(settings, principal.organization_id, _KEY_PURPOSE, body.api_key)
        payload["api_key"] = sealed
    with db.write() as conn:
        job = jobs.enqueue(
            conn, principal.organization_id, KIND, payload, created_by=principal.member_id, max_attempts=3
        )
    return jobs.public(job)




# --- the job ---------------------------------------------------------------------------------------


@dataclass
class _Result:
    model: str = ""
    worker_id: str | None = None
    trained: dict[str, Any] = field(default_factory=lambda: {"sent": 0, "accepted": 0, "version": None})
    trained_until: str | None = None
    waiting: int = 0  # gold and pending tasks the model version had not predicted when the job started
    asked: int = 0
    stored: int = 0
    invalid: int = 0
    abstained: int = 0
    refused: int = 0  # valid answers the upload refused (the task changed meanwhile)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def add(self, outcome: PredictOutcome) -> None:
        self.invalid += len(outcome.invalid)
        self.abstained += len(outcome.missing)
        for item in outcome.invalid:
            if len(self.problems) < MAX_REPORTED:
                self.problems.append({"task_id": item.task_key, "kind": "invalid", "reason": item.reason[:300]})

    def as_dict(self) -> dict[str, Any]:
        counts = ("model", "worker_id", "trained", "trained_until", "waiting", "asked", "stored")
        return {name: getattr(self, name) for name in (*counts, "invalid", "abstained", "refused", "problems")}


def run_server_predictions(db: Database, job: JobContext) -> dict[str, Any]:
    """The ``model.server_predict`` handler: train, then predict and store (see the module)."""
    settings = job.settings or get_settings()
    payload = job.payload
    target = model_endpoints.job_target(db, job, "model-server run")
    principal, project, spec, question = target.principal, target.project, target.spec, target.question
    client = _client(payload, settings, principal.organization_id)
    result = _Result()
    if payload.get("train", True):
        _train(db, job, client, project, question, spec.fields, result)
    info = _call(client.health)  # after /train: a server that learned at once names its new version
    name = str(payload.get("name") or info.name)
    if "@" in name or not name.strip():
        raise JobFailed(f"the model's name {name!r} is not a model name (no '@', not empty)")
    result.model = predictions.model_name(name, info.version)
    statuses = (TaskStatus.GOLD, TaskStatus.PENDING) if payload.get("include_gold", True) else (TaskStatus.PENDING,)
    todo = model_endpoints.unpredicted(
        db, principal.organization_id, project["id"], result.model, payload.get("limit"), statuses
    )
    result.waiting = len(todo)
    instructions = project.get("instructions") or ""
    job.progress(0, len(todo))
    for start in range(0, len(todo), CHUNK):
        job.check()  # a cancel stops between chunks: what was stored stays (a repeat skips it)
        chunk = model_endpoints.still_waiting(db, principal.organization_id, todo[start : start + CHUNK], statuses)
        predict = partial(client.predict, question, chunk, fields=spec.fields, instructions=instructions)
        outcome = _call(predict)
        result.asked += len(chunk)
        result.add(outcome)
        _store(
            db, principal, project["id"], name, info.version, float(payload.get("default_score", 0.5)), outcome, result
        )
        job.progress(min(start + CHUNK, len(todo)), len(todo))
    return result.as_dict()


def _client(payload: Mapping[str, Any], settings: Settings, organization_id: str) -> ModelServerClient:
    guard = netguard.Guard.from_settings(settings)
    return ModelServerClient(
        str(payload["base_url"]),
        model_endpoints.GuardedSend(guard),
        api_key=model_endpoints.unseal_api_key(payload, settings, organization_id, _KEY_PURPOSE),
        batch_size=int(payload.get("batch_size") or 64),
    )



def _call(call: Callable[[], Any]) -> Any:
    """A call to the server; one that still fails after the client's retries fails the job (a
    retryable failure lets the runner try the job again later, which skips what was stored)."""
    try:
        return call()
    except ServerError as exc:
        raise JobFailed(f"the model server's reply: {exc}") from None
    except SendError as exc:
        if exc.retryable:
            raise
        raise JobFailed(f"the model server: {exc}") from None


# --- /train: the new training labels -----------------------------------------------------------------


def _train(
    db: Database,
    job: JobContext,
    client: ModelServerClient,
    project: dict[str, Any],
    question: QuestionConfig,
    fields: list[Any],
    result: _Result,
) -> None:
    """Send the labels of the tasks changed since the previous successful job (a watermark on
    ``updated_at``; a task changed twice is sent twice: the server learns its newest answer)."""
    since = _previous_watermark(db, job)
    result.trained_until = utcnow().isoformat()  # read before the tasks: a change meanwhile is sent next time
    target = completion_rules(project).questions[question.name].target
    batch: list[tuple[Task, Any]] = []
    rows = task_rows(
        db, job.organization_id, project["id"], _TRAIN_STATUSES, *LABEL_COLUMNS, changed_since=since, chunk=CHUNK
    )
    for row in rows:
        label, _source = training_label(row, question.name, target)
        if label is not None:
            batch.append((Task(row.id, row.data), label))
        if len(batch) == CHUNK:
            _send_train(client, question, fields, batch, result)
            batch = []
            job.check()
    if batch:
        _send_train(client, question, fields, batch, result)


def _send_train(
    client: ModelServerClient,
    question: QuestionConfig,
    fields: list[Any],
    batch: list[tuple[Task, Any]],
    result: _Result,
) -> None:
    outcome = _call(lambda: client.train(question, [t for t, _ in batch], [a for _, a in batch], fields=fields))
    result.trained["sent"] += len(batch)
    result.trained["accepted"] += outcome.accepted
    result.trained["version"] = outcome.version or result.trained["version"]


def _previous_watermark(db: Database, job: JobContext) -> datetime | None:
    """``trained_until`` of the newest succeeded job for the same project, question and server."""
    j = t.jobs.c
    payload = job.payload
    same = ("project_id", "question", "base_url")
    query = (
        select(j.payload, j.result)
        .where(j.organization_id == job.organization_id, j.kind == KIND, j.status == str(JobStatus.SUCCEEDED))
        .where(j.payload["project_id"].as_string() == str(payload.get("project_id")))
        .order_by(j.finished_at.desc(), j.id.desc())
    )
    with db.read() as conn:
        for earlier, result in conn.execute(query):
            if all(earlier.get(key) == payload.get(key) for key in same) and earlier.get("train", True):
                until = (result or {}).get("trained_until")
                return datetime.fromisoformat(until) if until else None
    return None


# --- storing the answers -----------------------------------------------------------------------------


def _store(
    db: Database,
    principal: Principal,
    project_id: str,
    name: str,
    version: str,
    default_score: float,
    outcome: PredictOutcome,
    result: _Result,
) -> None:
    if not outcome.predictions:
        return
    items = [
        {
            "task_id": p.task_key,
            "question": p.question,
            "answer": p.answer,
            "score": default_score if p.score is None else p.score,  # undeclared: the request's default
        }
        for p in outcome.predictions
    ]
    report = model_endpoints.store_predictions(db, principal, project_id, name, version, items)
    result.stored += report["stored"] + report["unchanged"]
    result.refused += report["invalid"]
    result.worker_id = report["worker_id"] or result.worker_id


# --- the Models page's list of model runs ------------------------------------------------------------

#: The jobs that ask an outside model about a project's tasks: the LLM labeler's and a model server's.
RUN_KINDS = ("model.llm_label", KIND)


def model_runs(
    db: Database, principal: Principal, project_id: str, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The project's LLM-labeling and model-server jobs, newest first, a keyset page at a time, with
    their results (tokens, answers stored and refused). Managers and above."""
    j = t.jobs
    with db.read() as conn:
        load_project(conn, principal, project_id)
        require(principal, Action.READ_QUALITY)
        query = repo.scoped(j, principal.organization_id).where(
            j.c.kind.in_(RUN_KINDS), j.c.payload["project_id"].as_string() == project_id
        )
        rows, next_cursor = repo.page(conn, query, j, cursor=cursor, limit=limit, descending=True)
    return [jobs.public(row) for row in rows], next_cursor

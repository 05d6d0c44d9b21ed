"""What the jobs that call a model's HTTP endpoint share (the LLM labeler, the model-server job).

Both take an optional API key that must not sit in a job's payload in the clear (sealed with the
server's key, as webhook secrets are, and unsealed only by the runner), name the question the model
answers, refuse at request time an endpoint the runner's network guard would refuse, send through
that guard (:class:`GuardedSend`), run as the member who started them on the payload's project and
question (:func:`job_target`),
read the tasks the model version has not predicted yet (:func:`unpredicted`, :func:`still_waiting`)
and store its valid answers as predictions (:func:`store_predictions`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from truthset.config import Settings
from truthset.domain import Principal, TaskStatus
from truthset.errors import InvalidInput
from truthset.learners._http import HttpReply, HttpRequest, SendError
from truthset.learners._records import Task
from truthset.questions import CompiledSpec, QuestionConfig
from truthset.schemas import PredictionUpload
from truthset.services import jobs, netguard, predictions, webhooks
from truthset.services.jobs import JobContext, JobFailed
from truthset.services.policy import Action
from truthset.services.projects import compiled_spec, load_project
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id


def seal_api_key(settings: Settings, organization_id: str, purpose: str, api_key: str) -> dict[str, str]:
    """The key as a job payload keeps it: ``{"id", "sealed"}`` (the id makes each seal's context)."""
    key_id = new_id()
    return {"id": key_id, "sealed": webhooks.seal(settings, organization_id, f"{purpose}/{key_id}", api_key)}


def unseal_api_key(payload: Mapping[str, Any], settings: Settings, organization_id: str, purpose: str) -> str | None:
    """The payload's sealed key in the clear (None without one); a key the server cannot read fails the job."""
    sealed = payload.get("api_key")
    if not isinstance(sealed, Mapping):
        return None
    try:
        return webhooks.unseal(settings, organization_id, f"{purpose}/{sealed['id']}", sealed["sealed"])
    except webhooks.SecretUnreadable as exc:
        raise JobFailed(str(exc).replace("webhook's secret", "API key")) from None


@dataclass(frozen=True)
class JobTarget:
    """What a model-endpoint job works on: its starter as they are now, the project, its spec, the
    question the model answers."""

    principal: Principal
    project: dict[str, Any]
    spec: CompiledSpec
    question: QuestionConfig


def job_target(db: Database, job: JobContext, what: str) -> JobTarget:
    """The job's :class:`JobTarget`, read from its payload (``project_id``, ``question``) with the
    starter's rights today (:func:`truthset.services.jobs.started_by`)."""
    principal = jobs.started_by(db, job, Action.MANAGE_TASKS, what)
    with db.read() as conn:
        project = load_project(conn, principal, str(job.payload.get("project_id")))
        spec = compiled_spec(project)
    return JobTarget(principal, project, spec, question_named(spec.questions, str(job.payload.get("question"))))


def question_named(questions: list[QuestionConfig], name: str) -> QuestionConfig:
    """The spec's question ``name``, or a 422 naming the field and the questions there are."""
    found = next((q for q in questions if q.name == name), None)
    if found is None:
        names = ", ".join(q.name for q in questions)
        raise InvalidInput(
            f"question: the spec has no question {name!r} (it has: {names})", details={"field": "question"}
        )
    return found


def check_base_url(base_url: str, path: str, settings: Settings) -> None:
    """Refuse at once what the runner's guard would refuse (same settings), naming ``base_url``."""
    try:
        netguard.check_url(f"{base_url.rstrip('/')}{path}", netguard.Guard.from_settings(settings))
    except InvalidInput as exc:
        message = str(exc).removeprefix("url: ")
        # the same kind of error (url_refused, fetch_failed), naming the request's field
        raise type(exc)(f"base_url: {message}", details={**exc.details, "field": "base_url"}) from None


class GuardedSend:
    """The labeler's ``send`` through the network guard: every request's address checked (and pinned),
    no redirects followed, the reply cut at the request's size and time limits."""

    def __init__(self, guard: netguard.Guard) -> None:
        self._guard = guard

    def __call__(self, request: HttpRequest) -> HttpReply:
        # an LLM may think for a while before its first byte: the request's own limit rules
        guard = replace(self._guard, read_timeout=request.timeout, total_timeout=request.timeout)
        try:
            fetched = netguard.request(
                request.method,
                request.url,
                guard,
                headers=request.headers,
                content=request.content,
                follow_redirects=False,
                max_bytes=request.max_bytes,
            )
        except netguard.OutboundRefused as exc:
            raise SendError(f"url refused: {exc}", retryable=False) from None
        except netguard.FetchFailed as exc:
            # a reply over the size limit will be as big next time; a timeout or a lost connection may not
            raise SendError(str(exc), retryable="bytes" not in str(exc)) from None
        return HttpReply(fetched.status_code, dict(fetched.headers), fetched.content)


def store_predictions(
    db: Database, principal: Principal, project_id: str, model: str, version: str, items: list[dict[str, Any]]
) -> dict[str, Any]:
    """Store a model's valid answers as predictions (``on_error: skip``: a refused one is counted, the
    others kept); the upload's report."""
    body = PredictionUpload(model=model, version=version, predictions=items, on_error="skip")
    return predictions.upload_predictions(db, principal, project_id, body)


def unpredicted(
    db: Database, organization_id: str, project_id: str, model: str, limit: Any, statuses: tuple[TaskStatus, ...]
) -> list[str]:
    """The ids of the project's tasks in ``statuses`` (in that order: gold first, so even a limited
    run is measured against gold) the model version has not predicted, at most ``limit`` (ids only:
    the tasks' data is read a chunk at a time)."""
    cap = int(limit) if isinstance(limit, int) and limit > 0 else None
    found: list[str] = []
    with db.snapshot(lasting=True) as conn:
        for status in statuses:
            for ids in _pages(conn, organization_id, project_id, status):
                done = predictions.predicted_tasks(conn, organization_id, model, ids)
                found.extend(task_id for task_id in ids if task_id not in done)
                if cap is not None and len(found) >= cap:
                    return found[:cap]
    return found


def _pages(
    conn: Any, organization_id: str, project_id: str, status: TaskStatus, size: int = 1000
) -> Iterator[list[str]]:
    tk = t.tasks
    after = ""
    while True:
        query = (
            repo.scoped(tk, organization_id, tk.c.id)
            .where(tk.c.project_id == project_id, tk.c.status == str(status), tk.c.id > after)
            .order_by(tk.c.id)
            .limit(size)
        )
        ids = list(conn.execute(query).scalars())
        if not ids:
            return
        yield ids
        after = ids[-1]


def still_waiting(db: Database, organization_id: str, ids: list[str], statuses: tuple[TaskStatus, ...]) -> list[Task]:
    """The chunk's tasks with their data, in order, without those completed or canceled meanwhile
    (no tokens are spent on a task that no longer waits)."""
    tk = t.tasks
    query = repo.scoped(tk, organization_id, tk.c.id, tk.c.data).where(
        tk.c.id.in_(ids), tk.c.status.in_([str(status) for status in statuses])
    )
    with db.read() as conn:
        data = {row.id: row.data for row in conn.execute(query)}
    return [Task(task_id, data[task_id]) for task_id in ids if task_id in data]



"""A project's Models page: the built-in model's trained versions and learning curve, "Train now",
every model worker with its figures, and the LLM-labeling and model-server runs with their costs.

Guarded like the APIs it reads (``READ_QUALITY``: owners, admins, managers), so a direct URL answers
403 to a role the link is not shown to. The tables are rendered here, each a keyset page with its
own cursor in the query string (``versions``, ``workers``, ``runs``), so they work without script;
``static/models.js`` adds "Train now" (``POST /projects/{id}/models`` with the session's CSRF token,
then following the job with ``job-kit.js``) and the learning curve (uPlot).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from truthset.domain import WorkerKind
from truthset.errors import InvalidInput, TruthsetError
from truthset.services import model_servers, model_training, quality
from truthset.services.policy import Action, allowed
from truthset.services.projects import compiled_spec
from truthset.ui._guard import Guarded, _db, _failure, guard
from truthset.ui._render import page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
#: Versions the learning curve plots at most (the newest; one point each).
CURVE_POINTS = 200
#: Worker figures read for the model table (figures are computed for the whole project at once).
MAX_WORKERS = 100_000
_CURSOR = re.compile(r"^[0-9a-f]{24}$")


@router.get("/projects/{project_id}/models")
def models_page(
    request: Request,
    project_id: str,
    versions: str | None = None,
    workers: str | None = None,
    runs: str | None = None,
) -> Response:
    """Trained versions, the learning curve, model workers and model runs of a project."""
    guarded = guard(request, Action.READ_QUALITY, project_id=project_id)
    if not isinstance(guarded, Guarded):
        return guarded
    db, principal, project = _db(request), guarded.principal, guarded.project
    assert project is not None
    try:
        for name, cursor in (("versions", versions), ("workers", workers), ("runs", runs)):
            if cursor is not None and not _CURSOR.match(cursor):
                raise InvalidInput(f"{name}: not a page cursor", details={"field": name})
        rows, next_versions = model_training.list_models(db, principal, project_id, cursor=versions, limit=PAGE_SIZE)
        curve = _curve(db, principal, project_id)
        model_workers, next_workers = _model_workers(db, principal, project_id, workers)
        run_rows, next_runs = model_servers.model_runs(db, principal, project_id, cursor=runs, limit=PAGE_SIZE)
    except TruthsetError as exc:
        return _failure(request, exc)
    spec_questions = compiled_spec(project).questions
    questions = [q.name for q in spec_questions if q.type in ("label", "labels")]
    may_manage = allowed(principal, Action.MANAGE_TASKS) and project["archived_at"] is None
    may_train = may_manage and bool(questions)
    config = {"project_id": project_id, "curve": curve}
    return page(
        request,
        "models.html",
        project=project,
        versions=[_version(row) for row in rows],
        next_versions=next_versions,
        workers=model_workers,
        next_workers=next_workers,
        runs=[_run(job) for job in run_rows],
        next_runs=next_runs,
        questions=questions,
        may_train=may_train,
        llm_questions=[q.name for q in spec_questions],  # any question: the answer is validated
        may_label=may_manage,
        paged=any(c is not None for c in (versions, workers, runs)),
        config=config,
    )


def _version(row: dict[str, Any]) -> dict[str, Any]:
    """A trained version as its table row shows it."""
    metrics = row["metrics"] or {}
    return {
        "version": row["version"],
        "model": f"{model_training.MODEL}@{row['version']}",
        "question": row["question"],
        "accuracy": metrics.get("accuracy"),
        "verified_accuracy": metrics.get("verified_accuracy"),
        "verified_examples": metrics.get("verified_examples") or 0,
        "baseline": metrics.get("baseline_accuracy"),
        "ece": metrics.get("ece"),
        "brier": metrics.get("brier"),
        "examples": metrics.get("n_examples"),
        "labels": metrics.get("labels") or {},
        "created_at": row["created_at"],
    }


def _curve(db: Any, principal: Any, project_id: str) -> dict[str, list[dict[str, Any]]]:
    """Per question, one point per version (oldest first): training labels, accuracy (on all its
    labels and on the verified ones), ECE."""
    rows, _ = model_training.list_models(db, principal, project_id, cursor=None, limit=CURVE_POINTS)
    out: dict[str, list[dict[str, Any]]] = {}
    for row in reversed(rows):
        metrics = row["metrics"] or {}
        if metrics.get("n_examples") is None:
            continue
        point = {
            "n": metrics["n_examples"],
            "accuracy": metrics.get("accuracy"),
            "verified_accuracy": metrics.get("verified_accuracy"),
            "ece": metrics.get("ece"),
        }
        out.setdefault(row["question"], []).append(point)
    return out


def _model_workers(
    db: Any, principal: Any, project_id: str, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The project's model workers with their figures, in worker id order, a page after ``after``."""
    figures, _ = quality.project_workers(db, principal, project_id, cursor=after, limit=MAX_WORKERS)
    models = [f for f in figures if f.get("kind") == str(WorkerKind.MODEL)]
    page_rows = models[:PAGE_SIZE]
    return page_rows, page_rows[-1]["worker_id"] if len(models) > PAGE_SIZE else None


def _run(job: dict[str, Any]) -> dict[str, Any]:
    """An LLM-labeling or model-server job as the runs table shows it (tokens from its result)."""
    payload, result = job["payload"] or {}, job["result"] if isinstance(job["result"], dict) else {}
    usage = result.get("usage") or {}
    return {
        "id": job["id"],
        "kind": "LLM" if job["kind"] == "model.llm_label" else "model server",
        "model": result.get("model") or payload.get("worker") or payload.get("name") or payload.get("base_url"),
        "question": payload.get("question"),
        "status": job["status"],
        "done": job["progress"]["done"],
        "total": job["progress"]["total"],
        "stored": result.get("stored"),
        "invalid": result.get("invalid"),
        "failed": result.get("failed", result.get("abstained")),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "error": job["error"],
        "created_at": job["created_at"],
    }

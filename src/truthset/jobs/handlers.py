"""truthset's own job kinds: thin handlers over the services that do the work.

Each is listed in the ``truthset.jobs`` entry-point group of ``pyproject.toml`` (name = kind), so a
runner loads it when it starts and the services that enqueue these jobs never import this module.
Handlers import their service inside the call: loading the registry stays cheap.
"""

from __future__ import annotations

from typing import Any

from truthset.services.jobs import JobContext, JobFailed
from truthset.storage import Database

__all__ = [
    "auto_label",
    "export",
    "import_file",
    "llm_label",
    "media_prune",
    "model_server_predict",
    "model_train",
    "project_delete",
    "quality_refit",
    "queue_rerank",
]


def _project_id(job: JobContext) -> str:
    """The payload's ``project_id`` (a payload without one fails the job for good), once the job has
    checked it may go on (not canceled)."""
    project_id = job.payload.get("project_id")
    if not isinstance(project_id, str):
        raise JobFailed("the payload names no project_id")
    job.check()
    return project_id


def quality_refit(db: Database, job: JobContext) -> dict[str, Any]:
    """``quality.refit``, payload ``{"project_id": ...}``: fit the project's worker models and re-score
    its completed tasks (:func:`truthset.services.refit.refit_project`). Safe to repeat: a repeat
    stores one more model version and changes no answer the previous run already changed."""
    from truthset.services import refit

    return refit.refit_project(db, job.organization_id, _project_id(job))


def export(db: Database, job: JobContext) -> dict[str, Any]:
    """``export``, payload ``{"project_id", "format", "filters"}``: write the export's file in the data
    directory (:func:`truthset.services.export_jobs.run_export`). Safe to repeat: each attempt writes
    a file of its own from the start, and only a finished file is ever served."""
    from truthset.services import export_jobs

    return export_jobs.run_export(db, job)


def import_file(db: Database, job: JobContext) -> dict[str, Any]:
    """``import``: read an uploaded file (JSONL, JSON, CSV, Parquet, Label Studio, a zip of images)
    and store its tasks (:func:`truthset.services.imports.run_import`). Safe to repeat: the rows a
    previous run stored are found by unique_id or content hash and count as existing."""
    from truthset.config import get_settings
    from truthset.services import imports

    return imports.run_import(db, job, job.settings or get_settings())


def llm_label(db: Database, job: JobContext) -> dict[str, Any]:
    """``model.llm_label``: ask an OpenAI-compatible endpoint about the project's gold and pending tasks and store
    its valid answers as predictions (:func:`truthset.services.llm_labeling.run_llm_labeling`). Safe to
    repeat: the tasks the model version already predicted are skipped."""
    from truthset.services import llm_labeling

    return llm_labeling.run_llm_labeling(db, job)


def model_train(db: Database, job: JobContext) -> dict[str, Any]:
    """``model.train``, payload ``{"project_id", "question"}``: train the built-in text model on the
    project's trusted results, store the version and predict the waiting tasks
    (:func:`truthset.services.model_training.run_training`). Safe to repeat: the same data is the
    same version (no new row), and predictions already stored count as unchanged."""
    from truthset.services import model_training

    return model_training.run_training(db, job)


def auto_label(db: Database, job: JobContext) -> dict[str, Any]:
    """``model.auto_label``, payload ``{"project_id"}``: send a paused model's unconfirmed auto-labels
    back to people and auto-label the backlog of eligible models
    (:func:`truthset.services.auto_label.sweep`). Safe to repeat: reopened and labeled tasks are
    skipped the next time."""
    from truthset.services import auto_label as service

    return service.sweep(db, job.organization_id, _project_id(job))


def queue_rerank(db: Database, job: JobContext) -> dict[str, Any]:
    """``queue.rerank``, payload ``{"project_id": ...}``: re-rank the project's pending tasks by the
    value of one more judgment, or reset the ranks under "priority"
    (:func:`truthset.services.active_learning.rerank_project`). Safe to repeat: a repeat computes
    the same ranks from the same state and writes only those that changed."""
    from truthset.services import active_learning

    return active_learning.rerank_project(db, job.organization_id, _project_id(job))


def model_server_predict(db: Database, job: JobContext) -> dict[str, Any]:
    """``model.server_predict``: tell an external model server of the project's new trusted results
    and store its answers about the gold and pending tasks as predictions
    (:func:`truthset.services.model_servers.run_server_predictions`). Safe to repeat: the tasks the
    model version already predicted are skipped."""
    from truthset.services import model_servers

    return model_servers.run_server_predictions(db, job)


def project_delete(db: Database, job: JobContext) -> dict[str, Any]:
    """``project.delete``, payload ``{"project_id", "name"}``: delete the project with everything stored
    about it (:func:`truthset.services.project_deletion.run`). Safe to repeat: each run deletes what is
    left, and a project already gone is a success."""
    from truthset.services import project_deletion

    return project_deletion.run(db, job)


def media_prune(db: Database, job: JobContext) -> dict[str, Any]:
    """``media.prune``, payload ``{"uploaded_before"[, "project_id"]}``: remove the organization's
    images uploaded before then that no task names (:func:`truthset.services.media_pruning.run`).
    Safe to repeat: a run removes what is still unnamed."""
    from truthset.services import media_pruning

    return media_pruning.run(db, job)

"""Projects, batches, export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse

from truthset import questions
from truthset.api.deps import DB, AppSettings, Caller, Cursor, MinConfidence, PageLimit
from truthset.domain import TaskStatus
from truthset.schemas import (
    BatchCreate,
    BatchOut,
    JobOut,
    Page,
    ProjectCreate,
    ProjectDeletion,
    ProjectOut,
    ProjectUpdate,
    QuestionTypeOut,
    SpecCheck,
    SpecChecked,
)
from truthset.services import active_learning, export, project_deletion, projects
from truthset.services.formats.images import write_options

router = APIRouter(tags=["projects"])

EXPORT_SEND_BYTES = 1024 * 1024


@router.get("/question-types", response_model=list[QuestionTypeOut], operation_id="list_question_types")
def list_question_types(caller: Caller) -> list[dict]:
    """Question types a spec may use (built-ins and installed plugins), each with its config's JSON schema."""
    return [questions.describe(name) for name in questions.names()]


@router.post("/specs/validate", response_model=SpecChecked, operation_id="validate_spec")
def validate_spec(db: DB, caller: Caller, body: SpecCheck) -> dict:
    """Check a spec and policy without saving (422 naming the field, as creating a project would);
    with `project_id`, also check the change against the project's stored work (409 naming it)."""
    return projects.check_spec(db, caller, body)


@router.post("/projects", response_model=ProjectOut, status_code=status.HTTP_201_CREATED, operation_id="create_project")
def create_project(db: DB, caller: Caller, settings: AppSettings, body: ProjectCreate) -> dict:
    return projects.create_project(db, caller, body, default_lease_seconds=settings.default_lease_seconds)


@router.get("/projects", response_model=Page[ProjectOut], operation_id="list_projects")
def list_projects(
    db: DB,
    caller: Caller,
    limit: PageLimit,
    cursor: Cursor = None,
    include_archived: bool = False,
) -> dict:
    items, next_cursor = projects.list_projects(
        db, caller, cursor=cursor, limit=limit, include_archived=include_archived
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get("/projects/{project_id}", response_model=ProjectOut, operation_id="get_project")
def get_project(db: DB, caller: Caller, project_id: str) -> dict:
    return projects.get_project(db, caller, project_id)


@router.patch("/projects/{project_id}", response_model=ProjectOut, operation_id="update_project")
def update_project(db: DB, caller: Caller, project_id: str, body: ProjectUpdate) -> dict:
    project = projects.update_project(db, caller, project_id, body)
    if body.quality is not None:  # the queue's ordering may have changed: a re-rank job (active learning)
        active_learning.note_policy(db, caller, project)
    return project


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_project")
def delete_project(db: DB, caller: Caller, project_id: str) -> None:
    """Delete a project that has no tasks (409 `project_has_tasks` otherwise: archive it, or delete it
    with its data through `POST /projects/{id}/deletion`)."""
    projects.delete_project(db, caller, project_id)


@router.post(
    "/projects/{project_id}/deletion",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="delete_project_with_data",
)
def delete_project_with_data(db: DB, caller: Caller, project_id: str, body: ProjectDeletion) -> dict:
    """Delete a project with everything stored about it (tasks, answers, reviews, history, models,
    webhook deliveries, export files), for good: the project is archived at once and a
    `project.delete` job deletes the rest; follow it at `/jobs/{id}`. Owners and admins; `confirm`
    must repeat the project's name (422 otherwise). The deletion already waiting, if any, is returned.
    """
    return project_deletion.start(db, caller, project_id, body.confirm)


@router.post(
    "/projects/{project_id}/batches",
    response_model=BatchOut,
    status_code=status.HTTP_201_CREATED,
    operation_id="create_batch",
)
def create_batch(db: DB, caller: Caller, project_id: str, body: BatchCreate) -> dict:
    return projects.create_batch(db, caller, project_id, body)


@router.get("/projects/{project_id}/batches", response_model=Page[BatchOut], operation_id="list_batches")
def list_batches(db: DB, caller: Caller, project_id: str, limit: PageLimit, cursor: Cursor = None) -> dict:
    items, next_cursor = projects.list_batches(db, caller, project_id, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/batches/{batch_id}", response_model=BatchOut, operation_id="get_batch")
def get_batch(db: DB, caller: Caller, batch_id: str) -> dict:
    return projects.get_batch(db, caller, batch_id)


@router.post("/batches/{batch_id}/finalize", response_model=BatchOut, operation_id="finalize_batch")
def finalize_batch(db: DB, caller: Caller, batch_id: str) -> dict:
    """Open -> finalized: the batch's tasks join the queue."""
    return projects.finalize_batch(db, caller, batch_id)


@router.post("/batches/{batch_id}/pause", response_model=BatchOut, operation_id="pause_batch")
def pause_batch(db: DB, caller: Caller, batch_id: str) -> dict:
    """Finalized -> paused: the batch's waiting tasks leave the queue (tasks out on a lease finish)."""
    return projects.pause_batch(db, caller, batch_id)


@router.post("/batches/{batch_id}/resume", response_model=BatchOut, operation_id="resume_batch")
def resume_batch(db: DB, caller: Caller, batch_id: str) -> dict:
    """Paused -> finalized: the batch's tasks join the queue again."""
    return projects.resume_batch(db, caller, batch_id)


@router.post("/batches/{batch_id}/cancel", response_model=BatchOut, operation_id="cancel_batch")
def cancel_batch(db: DB, caller: Caller, batch_id: str) -> dict:
    """Cancel the batch and its unfinished tasks; completed results are kept."""
    return projects.cancel_batch(db, caller, batch_id)


@router.get(
    "/projects/{project_id}/export",
    operation_id="export_project",
    response_class=StreamingResponse,
    responses={
        200: {
            # every format's type: label_studio and coco are JSON, yolo and voc zips, conll text
            "content": {
                "application/x-ndjson": {},
                "text/csv": {},
                "application/vnd.apache.parquet": {},
                "application/json": {},
                "application/zip": {},
                "text/plain": {},
            },
            "description": "One JSON object per task (or the file of another `format`).",
        }
    },
)
def export_project(
    db: DB,
    caller: Caller,
    settings: AppSettings,
    project_id: str,
    status: TaskStatus | None = TaskStatus.COMPLETED,
    batch_id: str | None = None,
    all_statuses: bool = False,
    min_confidence: MinConfidence = None,
    export_format: Annotated[
        str, Query(alias="format", description="File format.", json_schema_extra={"enum": list(export.FORMATS)})
    ] = "jsonl",
    question_names: Annotated[
        list[str] | None,
        Query(
            alias="questions",
            max_length=200,
            description="Only these questions (repeat it: `questions=a&questions=b`); as an export job's `questions`.",
        ),
    ] = None,
) -> StreamingResponse:
    """Tasks with their results as JSONL (completed tasks by default; `all_statuses=true` for every task).

    `format` names the file format (`jsonl`, the default, `csv`, `parquet`...); an unknown one is a
    422 naming the formats. For big projects start an export job instead (`POST
    /projects/{project_id}/exports`): it shows progress and its file can be downloaded again.

    The tasks are read from one snapshot of the database (a task completed while the export runs
    shows as it was when the export began).
    """
    project, writer = export.prepare(db, caller, project_id, export_format, question_names)
    filters = export.ExportFilter(
        status=None if all_statuses else status, batch_id=batch_id, min_confidence=min_confidence
    )
    rows = export.rows_for(writer, db, caller, project_id, filters)
    options = write_options(writer, db, caller.organization_id, settings.media_dir)  # image formats: sizes
    return StreamingResponse(_blocks(export.spool(rows, writer, project, **options)), media_type=writer.media_type)


def _blocks(spool: IO[bytes]) -> Iterator[bytes]:
    """The file in 1 MiB blocks (one thread hop per block, not per line), then closed (deleted)."""
    with spool:
        while block := spool.read(EXPORT_SEND_BYTES):
            yield block

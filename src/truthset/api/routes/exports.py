"""Export jobs: start one (202 with the job), follow it as any job, download its file."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import FileResponse
from pydantic import Field

from truthset.api.deps import DB, AppSettings, Caller
from truthset.schemas import ExportCreate, JobOut
from truthset.services import export, export_jobs

router = APIRouter(tags=["exports"])


class ExportBody(ExportCreate):
    """The body, with the formats this server writes listed in the OpenAPI document."""

    format: str = Field(
        "jsonl",
        min_length=1,
        max_length=40,
        description="File format.",
        json_schema_extra={"enum": list(export.FORMATS)},
    )


@router.post(
    "/projects/{project_id}/exports",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_export",
)
def create_export(db: DB, caller: Caller, project_id: str, body: ExportBody) -> dict:
    """Start an export job: the file is written in the background from one snapshot of the database.

    Follow it with `GET /jobs/{job_id}` (progress: tasks written of all); once it has succeeded its
    `result` names the file (`size`, `sha256`, `tasks`, `cursor` for a delta export) and
    `GET /exports/{job_id}/file` downloads it. An unknown format is a 422 naming the formats;
    `questions` narrows the file to the questions named (a 422 names an unknown one).
    """
    filters = export.ExportFilter(
        status=None if body.all_statuses else body.status,
        batch_id=body.batch_id,
        min_confidence=body.min_confidence,
        review_status=body.review_status,
        updated_since=export_jobs.naive_utc(body.updated_since) if body.updated_since else None,
    )
    return export_jobs.start_export(db, caller, project_id, body.format, filters, body.questions)


@router.get(
    "/exports/{job_id}/file",
    operation_id="download_export",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The export's file."}},
)
def download_export(db: DB, caller: Caller, settings: AppSettings, job_id: str) -> FileResponse:
    """The file of a finished export job, streamed from disk (409 `export_not_ready` until the job has
    succeeded; 404 `export_expired` once `TRUTHSET_EXPORT_RETENTION_HOURS` have passed)."""
    path, result = export_jobs.export_file(db, caller, job_id, settings.exports_dir)
    return FileResponse(
        path,
        media_type=result.get("media_type") or "application/octet-stream",
        filename=result.get("download_name") or path.name,
        headers={"X-Content-SHA256": str(result.get("sha256", ""))},
    )

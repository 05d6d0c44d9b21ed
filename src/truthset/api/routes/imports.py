"""Imports: upload a file of tasks (any format) and get the job that imports it."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request, status

from truthset.api.deps import Caller
from truthset.api.routes.tasks import _body_chunks
from truthset.schemas import JobOut
from truthset.services import imports

router = APIRouter(tags=["imports"])

# label_studio: the export format's spelling, accepted for the same file format
ImportFormat = Literal["jsonl", "json", "csv", "parquet", "label-studio", "label_studio", "images", "urls"]


@router.post(
    "/projects/{project_id}/imports",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def start_import(
    request: Request,
    project_id: str,
    caller: Caller,
    filename: Annotated[
        str, Query(min_length=1, max_length=300, description="The file's name; its extension names the format.")
    ],
    format: Annotated[
        ImportFormat | None, Query(description="The file's format (default: from the filename's extension).")
    ] = None,
    on_error: Annotated[
        Literal["reject", "skip"],
        Query(description="reject: store nothing if any row is bad; skip: store the good rows"),
    ] = "reject",
    batch_id: str | None = None,
    field: Annotated[
        str | None, Query(max_length=200, description="images: the spec's image field (default: its only one).")
    ] = None,
) -> dict:
    """Upload a file of tasks as the request body and import it in the background.

    Answers 202 with the `import` job: follow it with `GET /jobs/{id}` (progress, then the report
    in `result`). Bad rows with nothing stored fail the job, with the report in `result`.
    """
    db = request.app.state.db
    settings = request.app.state.settings
    chunks = _body_chunks(request)
    return await anyio.to_thread.run_sync(
        lambda: imports.start_import(
            db,
            caller,
            project_id,
            chunks,
            settings=settings,
            filename=filename,
            format=format,
            on_error=on_error,
            batch_id=batch_id,
            field=field,
        )
    )

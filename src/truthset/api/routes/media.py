"""Uploaded images for image fields (`media:<id>`)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, UploadFile, status
from fastapi.responses import FileResponse

from truthset.api.deps import DB, AppSettings, Caller
from truthset.api.headers import MEDIA_CSP
from truthset.schemas import MediaOut
from truthset.services import media

router = APIRouter(tags=["media"])


def _out(row: dict) -> dict:
    return {**row, "reference": f"media:{row['id']}"}


@router.post("/media", response_model=MediaOut, status_code=status.HTTP_201_CREATED, operation_id="upload_media")
def upload_media(db: DB, caller: Caller, settings: AppSettings, file: UploadFile) -> dict:
    """Upload an image (PNG, JPEG, GIF, WebP). Use the returned `reference` as an image field value."""

    def chunks() -> Iterator[bytes]:
        while block := file.file.read(1 << 20):
            yield block

    row = media.store(
        db,
        caller,
        chunks(),
        filename=file.filename or "upload",
        media_dir=settings.media_dir,
        max_bytes=settings.max_upload_bytes,
    )
    return _out(row)


@router.get(
    "/media/{media_id}",
    operation_id="get_media",
    response_class=FileResponse,
    responses={200: {"content": {"image/*": {}}}},
)
def get_media(db: DB, caller: Caller, settings: AppSettings, media_id: str) -> FileResponse:
    row = media.get(db, caller, media_id)
    return FileResponse(
        media.blob_path(settings.media_dir, row["sha256"]),
        media_type=row["content_type"],
        # user content: opened as a page of its own it runs nothing and has no origin of ours
        headers={"Cache-Control": "private, max-age=86400", "Content-Security-Policy": MEDIA_CSP},
    )

"""Uploaded images for image fields (`media:<id>`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import anyio
from fastapi import APIRouter, Query, UploadFile, status
from fastapi.responses import FileResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from truthset.api.deps import DB, AppSettings, Caller, Cursor, PageLimit
from truthset.api.headers import MEDIA_CSP
from truthset.errors import InvalidInput, NotFound
from truthset.questions import media_reference
from truthset.schemas import JobOut, MediaOut, MediaPruning, Page
from truthset.services import media, media_pruning

router = APIRouter(tags=["media"])


class MediaFileResponse(FileResponse):
    """A file response sent from a file the route already opened, that ignores a Range header it
    cannot serve.

    The open file: a prune may unlink the file between the route's check and the sending (the
    row no task names, deleted at that instant). Starlette's own ``stat`` and ``open`` by path
    would then fail the response half-sent, a 500; an open descriptor keeps the file's bytes until
    it is closed, so the whole image is sent either way.

    Range: Starlette answers a header it cannot parse with a plain-text 400 or 416, outside the
    one error shape. A server may always ignore Range (RFC 9110, section 14.2), and a client
    asking for a range it cannot have is best served by the whole file (200, which says the range
    was not applied).
    """

    def __init__(self, file: BinaryIO, **kwargs: Any) -> None:
        super().__init__(file.name, stat_result=os.fstat(file.fileno()), **kwargs)
        self._file = file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"}
        try:  # without pathsend: a server offering it would open the file by its path again
            await super().__call__({**scope, "extensions": extensions}, receive, send)
        finally:
            self._file.close()

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        self._file.seek(0)
        yield anyio.wrap_file(self._file)  # closed by __call__, after the last range

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except (MalformedRangeHeader, RangeNotSatisfiable):
            return []  # no range: the whole file


def _out(row: dict) -> dict:
    return {**row, "reference": media_reference(row["id"])}


def _filename(file: UploadFile) -> str:
    """The name the client gave the file; PostgreSQL text cannot hold NUL, so one is refused."""
    name = file.filename or "upload"
    if "\x00" in name:
        raise InvalidInput("the file name must not contain NUL characters", details={"field": "filename"})
    return name


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
        filename=_filename(file),
        media_dir=settings.media_dir,
        max_bytes=settings.max_upload_bytes,
    )
    return _out(row)


@router.get("/media", response_model=Page[MediaOut], operation_id="list_media")
def list_media(
    db: DB,
    caller: Caller,
    limit: PageLimit,
    cursor: Cursor = None,
    filename: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=media.MAX_FILENAME_FILTER,
            description="Only images whose file name contains this, ignoring case.",
        ),
    ] = None,
) -> dict:
    """The organization's uploaded images, newest first. Managers and above."""
    items, next_cursor = media.list_media(db, caller, filename=filename, cursor=cursor, limit=limit)
    return {"items": [_out(row) for row in items], "next_cursor": next_cursor}


@router.post(
    "/media/pruning",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="prune_media",
)
def prune_media(db: DB, caller: Caller, body: MediaPruning) -> dict:
    """Remove, for good, the organization's uploaded images that no task names and that were
    uploaded more than `older_than_hours` ago (default 24): a `media.prune` job; follow it at
    `/jobs/{id}`. Owners and admins. Deleting a project with its data queues one a day later."""
    return media_pruning.start(db, caller, body.older_than_hours)


@router.delete("/media/{media_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_media")
def delete_media(db: DB, caller: Caller, settings: AppSettings, media_id: str) -> None:
    """Remove, for good and at once, an uploaded image that no task of the organization names (409
    naming a task that does), with its file unless another organization uploaded the same bytes.
    Owners and admins, and the member who uploaded it (`created_by`) while their role may upload."""
    media_pruning.delete_image(db, caller, media_id, settings.media_dir)


@router.get(
    "/media/{media_id}/thumbnail",
    operation_id="get_media_thumbnail",
    response_class=MediaFileResponse,
    status_code=status.HTTP_200_OK,
    responses={200: {"content": {"image/webp": {}}}},
)
def get_media_thumbnail(db: DB, caller: Caller, settings: AppSettings, media_id: str) -> MediaFileResponse:
    """The image made small: a WebP of at most 256 pixels a side, made on first use and kept (an
    image over 25 megapixels that is no JPEG is sent as it is)."""
    path, media_type = media.thumbnail(db, caller, media_id, settings.media_dir)
    # gone since it was made: a prune removed it with its image
    return _sent(path, media_type, NotFound(f"media {media_id} not found"))


@router.get(
    "/media/{media_id}",
    operation_id="get_media",
    response_class=MediaFileResponse,
    status_code=status.HTTP_200_OK,  # FastAPI reads it from __init__'s signature otherwise, which has none
    responses={200: {"content": {"image/*": {}}}},
)
def get_media(db: DB, caller: Caller, settings: AppSettings, media_id: str) -> MediaFileResponse:
    row = media.get(db, caller, media_id)
    path = media.blob_path(settings.media_dir, row["sha256"])
    return _sent(path, row["content_type"], media.file_missing(media_id))  # e.g. restored without media/


def _sent(path: Path, media_type: str, missing: NotFound) -> MediaFileResponse:
    """The stored file at ``path``, opened here (see :class:`MediaFileResponse`); ``missing`` when it is not there."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise missing from None
    return MediaFileResponse(
        file,
        media_type=media_type,
        # user content: opened as a page of its own it runs nothing and has no origin of ours
        headers={"Cache-Control": "private, max-age=86400", "Content-Security-Policy": MEDIA_CSP},
    )

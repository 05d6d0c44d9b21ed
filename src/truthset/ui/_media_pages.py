"""The Images page: the organization's uploaded images, newest first, by file name; an upload form;
Delete on an image no task names (owners and admins, and its uploader); and, for owners and admins,
the removal of all the images no task names (``static/media-prune.js``).

What it lists, and who may upload or remove, are the media services' rules (``GET /api/v1/media``,
``POST /api/v1/media``, ``POST /api/v1/media/pruning``): managers and above see the page and upload,
owners and admins prune. Server-rendered: the filter is a GET form (a filtered view is a link), the
upload a multipart POST form with the session's CSRF token; each image is shown through
``GET /api/v1/media/{id}``, which the session's cookie opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from truthset.api import session
from truthset.errors import Conflict, TruthsetError
from truthset.questions import media_reference
from truthset.services import media, media_pruning
from truthset.services.policy import Action, allowed
from truthset.ui._account_pages import _confirm, _cursor, _error_page, _posted, _redirect, _render
from truthset.ui._guard import Guarded, _db, _failure, guard

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


@router.get("/media")
def media_list(request: Request, filename: str = "", cursor: str | None = None) -> Response:
    """The organization's images, newest first; ``filename`` narrows them."""
    guarded = guard(request, Action.LIST_MEDIA)
    if not isinstance(guarded, Guarded):
        return guarded
    return _page(request, guarded, filename=filename, cursor=cursor)


def _page(
    request: Request,
    guarded: Guarded,
    *,
    filename: str = "",
    cursor: str | None = None,
    upload_error: str | None = None,
) -> Response:
    errors: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    next_cursor = None
    try:
        rows, next_cursor = media.list_media(
            _db(request), guarded.principal, filename=filename or None, cursor=_cursor(cursor), limit=PAGE_SIZE
        )
    except TruthsetError as exc:
        if (exc.details or {}).get("field") != "filename":
            return _failure(request, exc)
        errors["filename"] = exc.message
    query = {"filename": filename} if filename else {}
    return _render(
        request,
        "media.html",
        status_code=422 if errors or upload_error else 200,
        rows=[{**_row(row), "may_delete": media_pruning.may_delete(guarded.principal, row)} for row in rows],
        values={"filename": filename},
        errors=errors,
        upload_error=upload_error,
        may_prune=allowed(guarded.principal, Action.DELETE_MEDIA),
        first_url=(f"/media?{urlencode(query)}" if query else "/media") if cursor else None,
        next_url=f"/media?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None,
    )


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """An image as the table shows it."""
    width, height = row.get("width"), row.get("height")
    return {
        **row,
        "reference": media_reference(row["id"]),
        "pixels": f"{width}x{height}" if width and height else "-",
    }


# POST /media itself: the server's body limit lets a path ending in /media carry an upload's size
@router.post("/media")
async def upload(request: Request) -> Response:
    """Store the image the form sent (the media service checks it: an image, within the size limit),
    then show the list filtered to its file name; a refusal shows the page with the reason."""
    guarded = guard(request, Action.UPLOAD_MEDIA)
    if not isinstance(guarded, Guarded):
        return guarded
    settings = request.app.state.settings
    form = await request.form()
    token = form.get(session.CSRF_FIELD)
    if not session.csrf_ok(request, guarded.info, token if isinstance(token, str) else None):
        return _error_page(request, 403, "Not allowed", "The form expired: reload the page and try again.")
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return _page(request, guarded, upload_error="Choose an image file to upload.")
    try:  # in a worker thread, as the API's upload: hashing, decoding and the write would hold the event loop
        row = await run_in_threadpool(
            media.store,
            _db(request),
            guarded.principal,
            _chunks(file),
            filename=file.filename.replace("\x00", ""),
            media_dir=settings.media_dir,
            max_bytes=settings.max_upload_bytes,
        )
    except TruthsetError as exc:
        return _page(request, guarded, upload_error=f"{file.filename}: {exc.message}")
    finally:
        await file.close()
    flash = {"title": f"Uploaded {row['filename']}: use media:{row['id']} as an image field's value"}
    return _redirect(request, f"/media?{urlencode({'filename': row['filename']})}", flash)


def _chunks(file: UploadFile) -> Iterator[bytes]:
    while block := file.file.read(1 << 20):
        yield block


@router.get("/media/{media_id}/delete")
def delete_confirm(request: Request, media_id: str) -> Response:
    """Ask before an image is removed for good (owners and admins; its uploader)."""
    guarded = guard(request, Action.UPLOAD_MEDIA)
    if not isinstance(guarded, Guarded):
        return guarded
    try:
        row = media_pruning.image_to_delete(_db(request), guarded.principal, media_id)
    except TruthsetError as exc:
        return _failure(request, exc)
    return _confirm(
        request,
        title=f"Delete {row['filename']}?",
        message=f"The image media:{media_id} and its file are removed for good. It is removed only if no task "
        "of the organization names it; otherwise nothing changes and you are told which task does.",
        action=f"/media/{media_id}/delete",
        button="Delete the image",
        cancel="/media",
    )


@router.post("/media/{media_id}/delete")
async def delete(request: Request, media_id: str) -> Response:
    """Remove the image (the media service refuses one a task names: back to the list, saying which)."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    settings = request.app.state.settings
    try:
        row = media.get(_db(request), posted[0].principal, media_id)
        # in a worker thread: the search for a task naming the image reads every task's text
        await run_in_threadpool(
            media_pruning.delete_image, _db(request), posted[0].principal, media_id, settings.media_dir
        )
    except Conflict as exc:
        return _redirect(request, "/media", {"title": exc.message})
    except TruthsetError as exc:
        return _failure(request, exc)
    return _redirect(request, "/media", {"title": f"Deleted {row['filename']} (media:{media_id})"})

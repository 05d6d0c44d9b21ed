"""Uploaded media (images): a content-addressed local store, one row per organization and file."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from truthset.domain import Principal
from truthset.errors import InvalidInput, NotFound, TooLarge, full_disk_is_storage_full
from truthset.services.policy import Action, require
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.files import locked, make_private_dirs
from truthset.storage.ids import new_id, utcnow

# Recognised by their first bytes, so a file's claimed type can't smuggle HTML or script in.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniff(head: bytes) -> str | None:
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


_PILLOW_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


def inspect_image(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """The image's content type, width and height, checked by decoding it with Pillow.

    Only PNG, JPEG, GIF and WebP are opened (``formats``), and Pillow's decompression-bomb guard
    (``Image.MAX_IMAGE_PIXELS``) refuses an image with too many pixels before it is decoded.
    Raises :class:`InvalidInput` for anything that is not a whole, readable image of those types.
    """
    try:
        with Image.open(path, formats=list(_PILLOW_FORMATS)) as image:
            if image.width * image.height > (Image.MAX_IMAGE_PIXELS or 1 << 62):
                raise InvalidInput(f"the image has too many pixels ({image.width} x {image.height})")
            kind, size = image.format, image.size
            image.verify()  # reads the whole file: a truncated or corrupt image fails here
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,  # an error where warnings are (tests); refused above otherwise
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        reason = "not a PNG, JPEG, GIF or WebP image" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise InvalidInput(f"not a readable image: {reason}", details={"field": "file"}) from None
    return _PILLOW_FORMATS[str(kind)], size[0], size[1]


#: In the media directory: held shared while a file arrives and its row is written, exclusively while
#: a prune removes files (services/media_pruning.py).
LOCK_FILE = ".lock"


def blob_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / sha256[:2] / sha256


#: A stored file's name: its content's SHA-256, in the folder of its first two hex digits.
_BLOB_NAME = re.compile(r"[0-9a-f]{64}")


def stored_blobs(media_dir: Path) -> Iterator[str]:
    """The SHA-256 of every file in the store (what :func:`blob_path` names; temporaries and the lock
    file are not), folder by folder."""
    if not media_dir.is_dir():
        return
    for folder in sorted(media_dir.iterdir()):
        if folder.is_dir() and len(folder.name) == 2:
            yield from (p.name for p in folder.iterdir() if _BLOB_NAME.fullmatch(p.name) and p.name[:2] == folder.name)


@full_disk_is_storage_full("the media store")
def store(
    db: Database, principal: Principal, chunks: Iterable[bytes], *, filename: str, media_dir: Path, max_bytes: int
) -> dict[str, Any]:
    """Stream an upload to disk, hashing as it goes; the same file twice is stored once.

    The file is checked twice: by its first bytes (a cheap refusal of what is plainly no image) and
    by decoding it with Pillow, which also gives the width and height kept with it."""
    require(principal, Action.UPLOAD_MEDIA)
    make_private_dirs(media_dir)
    digest = hashlib.sha256()
    size = 0
    head = b""
    with tempfile.NamedTemporaryFile(dir=media_dir, delete=False) as tmp:
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"the file is larger than {max_bytes} bytes")
                if len(head) < 16:
                    head += chunk[:16]
                digest.update(chunk)
                tmp.write(chunk)
            if _sniff(head) is None:
                raise InvalidInput("not a PNG, JPEG, GIF or WebP image", details={"field": "file"})
            tmp.flush()
            content_type, width, height = inspect_image(tmp.name)
            os.fsync(tmp.fileno())
        except BaseException:
            os.unlink(tmp.name)
            raise
    sha = digest.hexdigest()
    target = blob_path(media_dir, sha)
    # From the file's arrival to its row's commit, a prune (services/media_pruning.py) must not
    # remove the file: it may be another row's, about to be the only one left, or this one's.
    with locked(media_dir / LOCK_FILE, exclusive=False):
        try:
            make_private_dirs(target.parent)
            os.replace(tmp.name, target)  # mkstemp made it 0600: owner-only, like the rest of the data
        except BaseException:
            os.unlink(tmp.name)
            raise
        return _add_row(db, principal, sha, content_type, size, filename, width, height)


def _add_row(
    db: Database,
    principal: Principal,
    sha: str,
    content_type: str,
    size: int,
    filename: str,
    width: int,
    height: int,
) -> dict[str, Any]:
    """The organization's row for the file: the one it has, or a new one."""
    with db.write() as conn:
        existing = (
            conn.execute(repo.scoped(t.media, principal.organization_id).where(t.media.c.sha256 == sha))
            .mappings()
            .first()
        )
        if existing:
            return dict(existing)
        return repo.add(
            conn,
            t.media,
            {
                "id": new_id(),
                "organization_id": principal.organization_id,
                "sha256": sha,
                "content_type": content_type,
                "size": size,
                "filename": filename[:300] or "upload",
                "created_at": utcnow(),
                "width": width,
                "height": height,
                "created_by": principal.member_id,
            },
        )


#: The longest filename filter: a stored filename has at most 300 characters.
MAX_FILENAME_FILTER = 300


def list_media(
    db: Database, principal: Principal, *, filename: str | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """The organization's uploaded images, newest first, a page at a time (keyset on id).

    ``filename`` keeps those whose file name contains it, ignoring case (``%`` and ``_`` match
    themselves). Managers and above: the list names every upload, where fetching one needs its id.
    """
    require(principal, Action.LIST_MEDIA)
    query = repo.scoped(t.media, principal.organization_id)
    if filename:
        if len(filename) > MAX_FILENAME_FILTER:
            raise InvalidInput(f"filename has at most {MAX_FILENAME_FILTER} characters", details={"field": "filename"})
        if "\x00" in filename:
            raise InvalidInput("filename must not contain NUL characters", details={"field": "filename"})
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", filename) + "%"
        query = query.where(t.media.c.filename.ilike(pattern, escape="\\"))
    with db.read() as conn:
        return repo.page(conn, query, t.media, cursor=cursor, limit=limit, descending=True)


#: The longest side of a thumbnail (the Images page shows them at 64 CSS pixels; 256 stays sharp
#: when zoomed and on dense screens).
THUMBNAIL_SIDE = 256
#: Thumbnails live beside the files, in a folder whose name is no file folder's (two hex digits).
THUMBNAILS = "thumbnails"
#: Above this many pixels an image that cannot be decoded small (all but JPEG) gets no thumbnail:
#: decoding it whole would take 4 bytes a pixel of the server's memory. Its thumbnail is the image.
THUMBNAIL_MAX_PIXELS = 25_000_000
#: Thumbnails decoded at once, in the whole process: a page of 50 images asks for 50 together.
_DECODING = threading.BoundedSemaphore(2)


def file_missing(media_id: str) -> NotFound:
    """The 404 for an image whose row is there but whose file is not in the store."""
    return NotFound(f"media {media_id} has no file in the media store (restore the data directory's media/)")


def thumbnail_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / THUMBNAILS / sha256[:2] / f"{sha256}.webp"


def stored_thumbnails(media_dir: Path) -> Iterator[tuple[str, Path]]:
    """Every thumbnail in the store: the SHA-256 of the file it shows, and its path."""
    root = media_dir / THUMBNAILS
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.is_dir():
            for path in folder.iterdir():
                if path.suffix == ".webp" and _BLOB_NAME.fullmatch(path.stem):
                    yield path.stem, path


@full_disk_is_storage_full("the media store")
def thumbnail(db: Database, principal: Principal, media_id: str, media_dir: Path) -> tuple[Path, str]:
    """The image's thumbnail (WebP, at most :data:`THUMBNAIL_SIDE` pixels a side), made from its
    file on first use and kept beside it; the prune removes it with the file. Returns its path and
    content type (the image's own for one over :data:`THUMBNAIL_MAX_PIXELS` that is no JPEG).

    Made once per file, not per request: a page of 50 camera photos would otherwise send the
    browser hundreds of megabytes, or decode them all on every visit. Written to a temporary file
    and renamed, so two requests making it at once each leave a whole one.
    """
    row = get(db, principal, media_id)
    target = thumbnail_path(media_dir, row["sha256"])
    if target.is_file():
        return target, "image/webp"
    source = blob_path(media_dir, row["sha256"])
    try:
        with _DECODING, Image.open(source, formats=list(_PILLOW_FORMATS)) as image:
            if image.format != "JPEG" and image.width * image.height > THUMBNAIL_MAX_PIXELS:
                return source, row["content_type"]
            image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # a JPEG decodes at a fraction of its size
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            small = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")
    except FileNotFoundError:
        raise file_missing(media_id) from None
    make_private_dirs(target.parent)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as tmp:
        try:
            small.save(tmp, format="WEBP", quality=80)
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, target)
    return target, "image/webp"


def get(db: Database, principal: Principal, media_id: str) -> dict[str, Any]:
    with db.read() as conn:
        row = repo.get(conn, t.media, principal.organization_id, media_id)
    if row is None:
        raise NotFound(f"media {media_id} not found")
    require(principal, Action.READ_MEDIA)
    return row

"""Uploaded media (images): a content-addressed local store, one row per organization and file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from truthset.domain import Principal
from truthset.errors import InvalidInput, NotFound, TooLarge, full_disk_is_storage_full
from truthset.services.policy import Action, require
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.files import make_private_dirs
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


def blob_path(media_dir: Path, sha256: str) -> Path:
    return media_dir / sha256[:2] / sha256


@full_disk_is_storage_full("the media store")
def store(
    db: Database, principal: Principal, chunks: Iterable[bytes], *, filename: str, media_dir: Path, max_bytes: int
) -> dict[str, Any]:
    """Stream an upload to disk, hashing as it goes; the same file twice is stored once."""
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
            content_type = _sniff(head)
            if content_type is None:
                raise InvalidInput("not a PNG, JPEG, GIF or WebP image", details={"field": "file"})
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            os.unlink(tmp.name)
            raise
    sha = digest.hexdigest()
    target = blob_path(media_dir, sha)
    make_private_dirs(target.parent)
    os.replace(tmp.name, target)  # mkstemp made it 0600: owner-only, like the rest of the data
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
            },
        )


def get(db: Database, principal: Principal, media_id: str) -> dict[str, Any]:
    with db.read() as conn:
        row = repo.get(conn, t.media, principal.organization_id, media_id)
    if row is None:
        raise NotFound(f"media {media_id} not found")
    require(principal, Action.READ_MEDIA)
    return row

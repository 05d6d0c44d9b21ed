"""Images of an export: where an uploaded image's file is, and its size in pixels.

Shape answers are pixel coordinates on the image's natural size; COCO needs that size, and YOLO
and Label Studio need it to turn pixels into fractions or percentages. An image uploaded to
truthset (``media:<id>``) is in the local media store: its size is read from the file's header
with Pillow (the pixels are never decoded). An image given as an external URL has no size truthset
knows, and a size is never guessed: writing such a task in a format that needs the size is refused,
naming the task (:func:`require_image`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from truthset.errors import InvalidInput
from truthset.questions import MEDIA_PREFIX
from truthset.services.formats._common import task_name
from truthset.services.media import blob_path
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}


@dataclass(frozen=True, slots=True)
class ImageFile:
    """An uploaded image: its file in the media store, its size, and the extension of its type."""

    path: Path
    width: int
    height: int
    extension: str


class MediaFiles(Protocol):
    """Finds uploaded images for a writer; a block of references at a time."""

    def load(self, references: Iterable[str]) -> None:
        """Look up these ``media:<id>`` references (one query for a block of rows)."""

    def get(self, reference: str) -> ImageFile | None:
        """A reference loaded before, or None when it is not an uploaded image of the organization."""


class MediaStore:
    """The media of one organization: rows from the database, files from ``media_dir``.

    Lookups are scoped to the organization, so a task can never name another tenant's file. Only
    the current block's images are held (``load`` forgets the previous block's).
    """

    def __init__(self, db: Database, organization_id: str, media_dir: Path) -> None:
        self._db = db
        self._organization_id = organization_id
        self._media_dir = media_dir
        self._files: dict[str, ImageFile] = {}
        self._unreadable: set[str] = set()

    def load(self, references: Iterable[str]) -> None:
        ids = sorted({r.removeprefix(MEDIA_PREFIX) for r in references if r.startswith(MEDIA_PREFIX)})
        self._files, self._unreadable = {}, set()
        if not ids:
            return
        query = repo.scoped(t.media, self._organization_id, t.media.c.id, t.media.c.sha256, t.media.c.content_type)
        with self._db.read() as conn:
            found = conn.execute(query.where(t.media.c.id.in_(ids))).all()
        for media_id, sha256, content_type in found:
            path = blob_path(self._media_dir, sha256)
            try:
                width, height = image_size(path)
            except OSError:  # the file is gone from the store, or Pillow cannot read its header
                self._unreadable.add(MEDIA_PREFIX + media_id)
                continue
            self._files[MEDIA_PREFIX + media_id] = ImageFile(path, width, height, _EXTENSIONS.get(content_type, ""))

    def get(self, reference: str) -> ImageFile | None:
        return self._files.get(reference)

    def unreadable(self, reference: str) -> bool:
        """Whether the reference is an uploaded image whose file could not be read."""
        return reference in self._unreadable


def write_options(writer: object, db: Database, organization_id: str, media_dir: Path) -> dict[str, Any]:
    """The keyword arguments an export passes to ``writer.write``: a writer with ``needs_media``
    (COCO, YOLO, VOC, Label Studio) gets the organization's media store as ``media``."""
    if getattr(writer, "needs_media", False):
        return {"media": MediaStore(db, organization_id, media_dir)}
    return {}


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header: Pillow opens lazily and decodes no pixels here."""
    with Image.open(path) as image:
        return image.size


def image_references(rows: Iterable[Mapping[str, Any]], fields: Iterable[str]) -> list[str]:
    """The image references (``data[field]``) of ``rows``, for :meth:`MediaFiles.load`."""
    names = list(fields)
    return [ref for row in rows for name in names if isinstance(ref := (row.get("data") or {}).get(name), str)]


def require_media(writer: str, media: MediaFiles | None) -> MediaFiles:
    """The media lookup; a writer of image formats cannot run without one (a caller's bug)."""
    if media is None:
        raise TypeError(f"{writer}: writing image annotations needs media= (a MediaStore of the organization)")
    return media


def require_image(writer: str, media: MediaFiles, row: Mapping[str, Any], field: str) -> ImageFile:
    """The uploaded image of ``row``'s ``field``; refused, naming the task, when it is not one."""
    reference = (row.get("data") or {}).get(field)
    image = media.get(reference) if isinstance(reference, str) else None
    if image is not None:
        return image
    if isinstance(reference, str) and getattr(media, "unreadable", lambda _: False)(reference):
        why = "is an uploaded image whose file is missing from the media store or unreadable"
    elif isinstance(reference, str) and not reference.startswith(MEDIA_PREFIX):
        why = "is an external URL, whose size truthset does not know (upload the image, or import it by URL)"
    else:
        why = "is not an uploaded image of this organization"
    raise InvalidInput(
        f"{writer}: {task_name(dict(row))}: the image in data.{field} ({reference!r}) {why}; "
        f"{writer} needs each image's width and height",
        details={"field": f"data.{field}", "task_id": row.get("task_id"), "format": writer},
    )


# --- geometry: shapes clipped to their image ----------------------------------------------------


def clip_box(shape: Mapping[str, Any], width: int, height: int) -> tuple[float, float, float, float] | None:
    """A box ``(x, y, w, h)`` cut to the image; None when nothing of it is on the image."""
    x0, y0 = max(0.0, shape["x"]), max(0.0, shape["y"])
    x1, y1 = min(float(width), shape["x"] + shape["width"]), min(float(height), shape["y"] + shape["height"])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def clip_polygon(points: list[list[float]], width: int, height: int) -> list[list[tuple[float, float]]]:
    """The polygon's pieces on the image (usually the polygon itself), each a ring of points.

    A polygon inside the image is returned unchanged; one crossing the border is cut by GEOS
    (shapely's ``clip_by_rect``), which may leave several pieces, or none when it lies outside.
    """
    if all(0 <= x <= width and 0 <= y <= height for x, y in points):
        return [[(float(x), float(y)) for x, y in points]]
    import shapely  # here, not at the top: it loads NumPy, a tenth of a second in every export process

    clipped = shapely.clip_by_rect(shapely.Polygon(points), 0, 0, width, height)
    pieces = getattr(clipped, "geoms", [clipped])
    return [
        [(float(x), float(y)) for x, y in list(piece.exterior.coords)[:-1]]
        for piece in pieces
        if isinstance(piece, shapely.Polygon) and not piece.is_empty and piece.area > 0
    ]


def ring_area(ring: list[tuple[float, float]]) -> float:
    import shapely  # see clip_polygon

    return float(shapely.Polygon(ring).area) if len(ring) >= 3 else 0.0


def ring_bbox(ring: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """``(x, y, w, h)`` of a ring's bounding box."""
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)

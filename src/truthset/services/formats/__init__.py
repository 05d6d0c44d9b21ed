"""Export formats: one module per format, each exposing a module-level ``WRITER``.

(The EXPORTS branch owns this file and its registry; this copy only declares the interface the
training-format writers follow.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol


class Writer(Protocol):
    """Writes export rows (see :func:`truthset.services.export.export_rows`) in one format."""

    name: str
    media_type: str
    extension: str

    def write(self, project: dict[str, Any], rows: Iterator[dict[str, Any]], out: BinaryIO) -> int:
        """Write ``rows`` of ``project`` to ``out``; return the number of tasks written."""
        ...

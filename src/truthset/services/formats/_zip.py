"""Zip archives written as they stream (YOLO and Pascal VOC are folders of files).

``zipfile`` writes to an unseekable output with data descriptors, so an archive goes straight to
the export's file entry by entry. Images are stored as they are (already compressed); text entries
are deflated.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO


def open_zip(out: BinaryIO) -> zipfile.ZipFile:
    return zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)


def add_text(archive: zipfile.ZipFile, name: str, text: str | bytes) -> None:
    archive.writestr(name, text)


def add_file(archive: zipfile.ZipFile, name: str, path: Path) -> None:
    archive.write(path, name, compress_type=zipfile.ZIP_STORED)

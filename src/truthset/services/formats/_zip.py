"""Zip archives written as they stream (YOLO and Pascal VOC are folders of files).

``zipfile`` writes to an unseekable output with data descriptors, so an archive goes straight to
the export's file entry by entry. Images are stored as they are (already compressed); text entries
are deflated.

Memory stays flat however many entries: a zip ends with its central directory, one record per
entry, so ``ZipFile`` keeps a ``ZipInfo`` for every entry it wrote (about 500 bytes each: 1 GB
for the two million entries of a million-image YOLO export). Here ``filelist``, the list the
central directory is written from, is kept in a temporary file instead, and ``NameToInfo``, an
index used only to read an archive or warn about a repeated name (entries here are named by task
id, never twice), keeps nothing. ``ZipFile`` itself still writes every byte of the archive.
"""

from __future__ import annotations

import pickle
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


class _SpilledInfos:
    """A list of ``ZipInfo`` that holds only its count in memory: appended entries are pickled to a
    temporary file and read back, in order, when the central directory is written."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the archive, see open_zip)
        self._count = 0

    def append(self, info: zipfile.ZipInfo) -> None:
        pickle.dump(info, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[zipfile.ZipInfo]:
        self._file.seek(0)
        for _ in range(self._count):
            yield pickle.load(self._file)  # our own file, written just above

    def close(self) -> None:
        self._file.close()


class _NoIndex(dict[str, Any]):
    """``ZipFile.NameToInfo`` for writing only: remembers nothing."""

    def __setitem__(self, key: str, value: Any) -> None:
        pass


class StreamingZip(zipfile.ZipFile):
    def __init__(self, out: BinaryIO) -> None:
        super().__init__(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.filelist = _SpilledInfos()  # type: ignore[assignment]
        self.NameToInfo = _NoIndex()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if isinstance(self.filelist, _SpilledInfos):
                self.filelist.close()


def open_zip(out: BinaryIO) -> StreamingZip:
    return StreamingZip(out)


def add_text(archive: zipfile.ZipFile, name: str, text: str | bytes) -> None:
    archive.writestr(name, text)


def add_file(archive: zipfile.ZipFile, name: str, path: Path) -> None:
    archive.write(path, name, compress_type=zipfile.ZIP_STORED)

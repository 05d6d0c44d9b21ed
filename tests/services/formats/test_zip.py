"""The streaming zip: readable by zipfile, to an unseekable output, past zip64's entry count,
without a ZipInfo per entry in memory."""

from __future__ import annotations

import io
import zipfile

from truthset.services.formats._zip import add_text, open_zip


class Unseekable:
    """What an export writes to may not seek: a pipe, a hashing wrapper."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)

    def flush(self) -> None:
        pass


def test_more_entries_than_a_zip_without_zip64_holds() -> None:
    out = Unseekable()
    entries = 70_000  # past 65,535: the end record needs zip64
    with open_zip(out) as archive:  # type: ignore[arg-type]
        for i in range(entries):
            add_text(archive, f"labels/{i}.txt", f"{i}\n")
        assert not isinstance(archive.filelist, list) and len(archive.filelist) == entries
        assert dict(archive.NameToInfo) == {}
    read = zipfile.ZipFile(io.BytesIO(out.buffer.getvalue()))
    assert len(read.namelist()) == entries and read.testzip() is None
    assert read.read("labels/69999.txt") == b"69999\n"

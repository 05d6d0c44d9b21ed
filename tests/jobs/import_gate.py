"""Imported first by the worker-process import test: when ``TRUTHSET_TEST_IMPORT_GATE`` names a
folder, an import stops once its first block is stored (committed: at its first progress report
while storing), writes ``stored-1`` there, and waits for a ``go`` file that never comes (the test
kills the worker meanwhile)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from truthset.services.jobs import JobContext

_folder = os.environ.get("TRUTHSET_TEST_IMPORT_GATE")
if _folder:
    _progress = JobContext.progress

    def _gated_progress(self: JobContext, done: int, total: int | None = None) -> None:
        _progress(self, done, total)
        if total is None or self.job["kind"] != "import":
            return  # still checking the file: nothing is stored yet
        folder = Path(str(_folder))
        (folder / "stored-1").touch()
        idle = threading.Event()
        while not (folder / "go").exists():
            idle.wait(0.02)  # polling for a file the test never creates: it kills this process

    JobContext.progress = _gated_progress  # type: ignore[method-assign]

"""A job kind for the worker-process tests, registered on import (``truthset worker`` is started
with this module imported first).

``test.gate`` records each start in ``payload["folder"]`` (``started-<attempt>``, holding the
runner's id), reports progress, then waits until a file ``go`` appears there, checking for a cancel
or a stop between looks, and returns who ran it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from truthset.jobs import register
from truthset.services.jobs import JobContext
from truthset.storage import Database

KIND = "test.gate"


def gate(_db: Database, context: JobContext) -> dict[str, Any]:
    folder = Path(context.payload["folder"])
    (folder / f"started-{context.attempt}").write_text(context.runner_id)
    context.progress(1, 2)
    idle = threading.Event()
    while not (folder / "go").exists():
        context.check()  # the runner's keep-alive renews the lease meanwhile
        idle.wait(0.02)  # polling for a file the test creates, not timing anything
    context.progress(2, 2)
    return {"runner": context.runner_id, "attempt": context.attempt}


register(KIND, gate)

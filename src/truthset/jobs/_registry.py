"""Which function runs each kind of job.

A handler is ``handler(db, context) -> result``: ``db`` is the runner's
:class:`~truthset.storage.Database`, ``context`` a :class:`~truthset.services.jobs.JobContext` (the
job, its payload, ``progress(done, total)`` and ``heartbeat()``, which also stop a canceled job).
The result, a JSON value or None, is kept on the job.

Kinds come from two places, both loaded by a runner when it starts, never at import time (so a
module that enqueues jobs never imports the code that runs them, and no import cycle is possible):

- the ``truthset.jobs`` entry-point group: the entry point's name is the kind, its object the
  handler. truthset's own kinds (``quality.refit``, exports, webhook delivery) are listed there in
  ``pyproject.toml``, and a plugin package lists its own the same way;
- :func:`register`, for code that runs before the runner starts (tests, an embedding application).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from truthset.services.jobs import JobContext
from truthset.storage import Database

__all__ = ["ENTRY_POINT_GROUP", "Handler", "handler_for", "kinds", "register", "unregister"]

ENTRY_POINT_GROUP = "truthset.jobs"

Handler = Callable[[Database, JobContext], Any]

_handlers: dict[str, Handler] = {}
#: entry points found but not loaded yet: a kind's module is imported when a job of that kind runs
_pending: dict[str, EntryPoint] = {}
_lock = threading.Lock()
_loaded = False


def register(kind: str, handler: Handler) -> None:
    """Run jobs of ``kind`` with ``handler`` in this process's runners (replacing an earlier one)."""
    if not kind or len(kind) > 40:
        raise ValueError("a job kind has 1 to 40 characters")
    with _lock:
        _handlers[kind] = handler


def unregister(kind: str) -> None:
    with _lock:
        _handlers.pop(kind, None)
        if _loaded:
            _pending.pop(kind, None)  # as when every entry point was loaded at once: gone for good


def _load_entry_points() -> None:
    """Find the entry points (once); each is loaded when its kind is first asked for.

    Why not load them all here: a handler's module may import much (the Scale-compatible API's
    imports the whole REST API and scipy: 80 MiB and a second of CPU), which an export runner has
    no use for.
    """
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            _pending.setdefault(entry_point.name, entry_point)


def kinds() -> list[str]:
    """Every kind this process can run."""
    _load_entry_points()
    with _lock:
        return sorted({*_handlers, *_pending})


def handler_for(kind: str) -> Handler | None:
    _load_entry_points()
    with _lock:
        if kind in _handlers:
            return _handlers[kind]
        entry_point = _pending.get(kind)
    if entry_point is None:
        return None
    handler = entry_point.load()
    with _lock:
        _pending.pop(kind, None)
        return _handlers.setdefault(kind, handler)  # a run-time register() meanwhile wins

"""Giving memory back to the operating system after requests that needed a lot of it.

A bulk import or an export allocates and frees hundreds of MiB in many small objects. glibc's
malloc keeps freed memory in its heaps (one per thread that allocated) for reuse and returns a
heap's pages to the system only when the top of it is free, so after one large request the
server stayed far above its start-up size. Here, once such a request has finished,
``malloc_trim(0)`` (glibc) releases the free pages of every heap, in a worker thread so that the
event loop goes on. On other C libraries it does nothing. (Capping glibc's heaps with
``M_ARENA_MAX=2`` was measured too and changed nothing that the trim had not already returned.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import platform
import threading
from typing import Any

import anyio.to_thread

Scope = dict[str, Any]


@functools.cache
def _glibc() -> Any:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def trim() -> bool:
    """Return the free pages of every malloc heap to the system; True if some were returned.

    Collects garbage first: a finished request's generators and frames often sit in reference
    cycles, and their memory is free only once the cyclic collector has run.
    """
    libc = _glibc()
    if libc is None:
        return False
    gc.collect()
    return bool(libc.malloc_trim(0))


class GiveBackMemoryMiddleware:
    """After a request to a path ending in one of ``suffixes`` ends, trim the malloc heaps (once at a time)."""

    def __init__(self, app: Any, *, suffixes: tuple[str, ...]) -> None:
        self.app = app
        self.suffixes = suffixes
        self._trimming = threading.Lock()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(self.suffixes) or _glibc() is None:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if self._trimming.acquire(blocking=False):  # a trim under way covers this request too
                try:
                    await anyio.to_thread.run_sync(trim)
                finally:
                    self._trimming.release()

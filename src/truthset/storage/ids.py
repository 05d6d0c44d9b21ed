"""Identifier and clock helpers for storage."""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import UTC, datetime

_lock = threading.Lock()
_state = {"ms": 0, "count": int.from_bytes(os.urandom(3), "big")}


def _reserve(n: int) -> tuple[int, int]:
    """Reserve ``n`` consecutive counter values under the current millisecond."""
    with _lock:
        ms = max(int(time.time() * 1000), _state["ms"])
        start = _state["count"]
        if (start & 0xFFFFFF) + n > 0xFFFFFF:
            # the 24-bit counter would wrap inside this millisecond: move to the next one
            ms += 1
            start = 0
        _state["ms"] = ms
        _state["count"] = start + n
    return ms, start


def new_id() -> str:
    """24 hex chars: 12 of millisecond time, 6 of a per-process counter, 6 random.

    Like a MongoDB ObjectId (which Scale's ids are), ids sort by creation time, so keyset
    pagination on ``id`` is creation order; the random tail makes ids unguessable across tenants.
    """
    return new_ids(1)[0]


def new_ids(n: int) -> list[str]:
    """``n`` ids in increasing order, cheaply (bulk import)."""
    ms, start = _reserve(n)
    tail = secrets.token_hex(3 * n)
    prefix = f"{ms:012x}"
    return [f"{prefix}{(start + i) & 0xFFFFFF:06x}{tail[6 * i : 6 * i + 6]}" for i in range(n)]


def utcnow() -> datetime:
    """Naive UTC, as stored; the API layer adds the timezone."""
    return datetime.now(UTC).replace(tzinfo=None)

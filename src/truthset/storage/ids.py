"""Identifier and clock helpers for storage."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

_lock = threading.Lock()
_state = {"ms": 0, "count": int.from_bytes(os.urandom(3), "big")}

#: Random bytes for the ids' tails, drawn from the OS this many at a time. Why a pool: one
#: ``getrandom`` call per id cost 7 us on this project's VMs (a submit makes four ids: 5% of its
#: time); the bytes are the same CSPRNG's, only fetched ahead, and a forked child drops them.
_POOL_BYTES = 4096
_pool = {"bytes": b"", "at": 0}


def _forget_pool() -> None:
    """In a forked child: never hand out the parent's remaining bytes (both would make the same ids)."""
    _pool["bytes"], _pool["at"] = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def _random_hex(nbytes: int) -> str:
    """``nbytes`` random bytes from the OS's CSPRNG, as hex; call with ``_lock`` held."""
    at = _pool["at"]
    if at + nbytes > len(_pool["bytes"]):
        _pool["bytes"], at = os.urandom(max(_POOL_BYTES, nbytes)), 0
    _pool["at"] = at + nbytes
    return _pool["bytes"][at : at + nbytes].hex()


def _reserve(n: int) -> tuple[int, int, str]:
    """Reserve ``n`` consecutive counter values under the current millisecond, and ``n`` random
    3-byte tails (as hex)."""
    with _lock:
        ms = max(int(time.time() * 1000), _state["ms"])
        start = _state["count"]
        if (start & 0xFFFFFF) + n > 0xFFFFFF:
            # the 24-bit counter would wrap inside this millisecond: move to the next one
            ms += 1
            start = 0
        _state["ms"] = ms
        _state["count"] = start + n
        tail = _random_hex(3 * n)
    return ms, start, tail


def new_id() -> str:
    """24 hex chars: 12 of millisecond time, 6 of a per-process counter, 6 random.

    Like a MongoDB ObjectId (which Scale's ids are), ids sort by creation time, so keyset
    pagination on ``id`` is creation order; the random tail makes ids unguessable across tenants.
    """
    return new_ids(1)[0]


def new_ids(n: int) -> list[str]:
    """``n`` ids in increasing order, cheaply (bulk import)."""
    ms, start, tail = _reserve(n)
    prefix = f"{ms:012x}"
    return [f"{prefix}{(start + i) & 0xFFFFFF:06x}{tail[6 * i : 6 * i + 6]}" for i in range(n)]


def utcnow() -> datetime:
    """Naive UTC, as stored; the API layer adds the timezone."""
    return datetime.now(UTC).replace(tzinfo=None)

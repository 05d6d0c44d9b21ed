"""CPU seconds spent by a local PostgreSQL server (postmaster and every child process), from /proc.

The import and export benchmarks print it beside the benchmark's own processes: on PostgreSQL the
index maintenance of an import and the rendering of an export's lines are the database server's
work, which the client's CPU time does not show. Only for a server on this machine whose processes
this user may read (the throwaway cluster of ``--postgres auto``); None otherwise, and for SQLite.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int, *, reaped: bool = False) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) of a process; ``reaped``: plus its exited children's."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rfind(")") + 2 :].split()
    ticks = sum(int(f) for f in fields[11 : 15 if reaped else 13])
    return int(fields[1]), ticks / _TICKS


def postmaster_pid(url: str | None) -> int | None:
    """The postmaster of the PostgreSQL server at ``url`` if it runs here, else None."""
    if not url or not url.startswith("postgresql"):
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            backend = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            parent, _ = _stat(backend)
        return parent
    except (OSError, ValueError):
        return None
    finally:
        engine.dispose()


def cpu_seconds(postmaster: int | None) -> float | None:
    """CPU seconds of the postmaster, its running children and the children it has reaped (the
    backends of closed connections: the kernel adds them to the postmaster's ``cutime``)."""
    if postmaster is None:
        return None
    total = _stat(postmaster, reaped=True)[1]
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == postmaster:
            continue
        try:
            parent, seconds = _stat(int(entry))
        except (OSError, ValueError, IndexError):
            continue
        if parent == postmaster:
            total += seconds
    return total

"""SQLite's library, set up once per process for connections working in several threads.

Why: the SQLite that Python's driver links (Debian's, like most distributions') keeps memory
statistics (``SQLITE_DEFAULT_MEMSTATUS=1``) and has no lookaside allocator
(``SQLITE_OMIT_LOOKASIDE``): every one of SQLite's many small allocations takes one process-wide
mutex to count itself. Connections working in different threads (the writer, the request readers, an
export's readers) queue on that mutex: two threads rendering an export took more time than one, and
even one thread rendered an export's lines a fifth slower with them (2.35 s against 1.86 s per
200,000 tasks). SQLite's own advice is to build with the statistics off; nothing uses them here (no
soft heap limit), and Python's driver cannot turn them off (it has no ``sqlite3_config``), so this
does, through ctypes.

``sqlite3_config`` may only be called while the library is shut down, and shutting it down is safe
only when nothing of SQLite is alive in the process: so this acts only while
``sqlite3_memory_used()`` is 0 (no connection open, by us or anyone), which is the case when the
first :class:`~truthset.storage.Database` of a process is made, and otherwise changes nothing.
"""

from __future__ import annotations

import _sqlite3  # the driver's extension module: its symbols lead to the SQLite it actually uses
import ctypes
import logging
import threading

_SQLITE_OK = 0
_SQLITE_CONFIG_MEMSTATUS = 9
_lock = threading.Lock()
_configured = False

log = logging.getLogger(__name__)


def turn_off_memory_statistics() -> bool:
    """Turn SQLite's memory statistics off in this process if no SQLite connection is open yet;
    whether they are off (made so by this process's first call)."""
    global _configured
    with _lock:
        if _configured:
            return True
        library = ctypes.CDLL(_sqlite3.__file__)  # dlsym through the module finds its SQLite, linked or built in
        library.sqlite3_memory_used.restype = ctypes.c_int64
        if library.sqlite3_memory_used() != 0:
            log.info("SQLite is already in use in this process: its memory statistics stay on")
            return False
        if library.sqlite3_shutdown() != _SQLITE_OK:
            return False
        configured = library.sqlite3_config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == _SQLITE_OK
        library.sqlite3_initialize()
        _configured = configured
        return configured

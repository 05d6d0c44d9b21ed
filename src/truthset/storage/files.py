"""Files and directories that hold an organization's data: private to the server's user.

The data directory, the SQLite database (which holds password and key hashes) and the media store
are created owner-only (directories 0700, files 0600) whatever the process umask, which would
otherwise leave them world-readable. SQLite gives the database's ``-wal`` and ``-shm`` files the
mode of the database file. Existing files and directories keep the mode they have: an operator
may have opened them to a backup group on purpose.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: Held (shared) by every `truthset serve` and `truthset worker` process on a data directory, so a
#: restore can tell that one is running (``flock``: released by the kernel when the process ends).
IN_USE_FILE = ".in-use.lock"


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents as 0700; directories that exist are left alone."""
    missing: list[Path] = []
    current = path.absolute()
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(directory, PRIVATE_DIR)  # mkdir's mode is masked by the umask; this is not


def make_private_file(path: Path) -> None:
    """Create ``path`` empty as 0600 unless it exists (an empty file is an empty SQLite database)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def fsync_path(path: Path) -> None:
    """Flush ``path`` (a file, or a directory after a rename in it: the new name) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sqlite_file(url: str) -> Path | None:
    """The database file a SQLite URL names; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def open_to_others(paths: list[Path]) -> list[tuple[Path, int]]:
    """Those of ``paths`` that exist and that users other than the owner may read or enter, with their mode."""
    found = []
    for path in paths:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            found.append((path, mode))
    return found


def hold_data_dir(data_dir: Path) -> int:
    """Mark ``data_dir`` as in use by this process until it ends; returns the lock's descriptor (keep it).

    A shared ``flock``: any number of servers and workers hold it together; :func:`data_dir_in_use`
    asks for it exclusively, without waiting. The kernel drops it when the process exits, however.
    """
    make_private_dirs(data_dir)
    fd = os.open(data_dir / IN_USE_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def data_dir_in_use(data_dir: Path) -> bool:
    """Whether a `truthset serve` or `truthset worker` process holds ``data_dir`` (see :func:`hold_data_dir`)."""
    try:
        fd = os.open(data_dir / IN_USE_FILE, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the lock this check may have taken
    return False


@contextmanager
def locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold a ``flock`` on ``path`` (made 0600 if missing) for the block, waiting for it: shared
    holders run together, an exclusive one alone. Between threads too: each call opens the file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock

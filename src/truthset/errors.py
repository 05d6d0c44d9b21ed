"""The one error family. Services raise these; only ``api/errors.py`` turns them into HTTP."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class TruthsetError(Exception):
    """Base error: a stable machine-readable ``code``, a human ``message`` and optional ``details``."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class InvalidInput(TruthsetError):
    """The request names something wrong: a field, a value, a line of an import."""

    code = "invalid_input"


class NotFound(TruthsetError):
    """Missing, or owned by another organization (the two are indistinguishable on purpose)."""

    code = "not_found"


class Unauthenticated(TruthsetError):
    code = "unauthenticated"


class Forbidden(TruthsetError):
    code = "forbidden"


class Conflict(TruthsetError):
    """The request contradicts stored state (duplicate, already answered, wrong status)."""

    code = "conflict"


class TooLarge(TruthsetError):
    code = "too_large"


class Busy(TruthsetError):
    """The database could not take the write now (a deadlock, a lock held too long): try again."""

    code = "busy"


class StorageFull(TruthsetError):
    """The disk under the database or the media store is full: nothing was stored; retry once freed."""

    code = "storage_full"


class DatabaseUnusable(TruthsetError):
    """This version cannot serve the database: unreachable, not a database, or a newer schema."""

    code = "database_unusable"


@contextmanager
def full_disk_is_storage_full(where: str) -> Iterator[None]:
    """A full disk (or quota) under ``where`` is no bug: the request is refused as :class:`StorageFull`."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise StorageFull(f"the disk is full under {where} ({exc.strerror}): nothing was stored") from exc

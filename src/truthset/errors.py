"""The one error family. Services raise these; only ``api/errors.py`` turns them into HTTP."""

from __future__ import annotations

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

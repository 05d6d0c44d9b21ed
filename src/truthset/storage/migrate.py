"""Alembic migrations, run programmatically (``truthset db upgrade``, and on ``serve`` start)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from truthset.errors import DatabaseUnusable

MIGRATIONS = Path(__file__).parent / "migrations"
_SQLITE_NOTADB = 26


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creating it if needed).

    A database this version cannot serve (unreachable, not a database, a schema newer than these
    migrations) raises :class:`DatabaseUnusable` with one line that says why, before anything runs.
    """
    from truthset.storage.engine import Database

    config = alembic_config(url)
    with _unusable(url):
        db = Database(url)  # creates the SQLite directory and sets WAL before Alembic connects
        db.dispose()
        _check_known_revision(url, ScriptDirectory.from_config(config))
        command.upgrade(config, revision)


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this version's migrations (a backup from a newer truthset is not)."""
    return revision in _revisions(ScriptDirectory.from_config(alembic_config("sqlite://")))


def _revisions(script: ScriptDirectory) -> set[str]:
    return {rev.revision for rev in script.walk_revisions()}


def _check_known_revision(url: str, script: ScriptDirectory) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    known = _revisions(script)
    for rev in current:
        if rev not in known:
            raise DatabaseUnusable(
                f"the database's schema is at revision {rev}, which this version of truthset does not know "
                f"(its newest is {script.get_current_head()}): it was made by a newer truthset; run that version"
            )


def _where(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"the SQLite database {parsed.database}"
    return f"the database {parsed.render_as_string(hide_password=True)}"


@contextmanager
def _unusable(url: str) -> Iterator[None]:
    """Failures to open or migrate the database, as one line naming the database and the cause."""
    from truthset.storage.engine import translate

    try:
        yield
    except DBAPIError as exc:
        cause = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        if getattr(exc.orig, "sqlite_errorcode", None) == _SQLITE_NOTADB:
            raise DatabaseUnusable(f"{make_url(url).database} is not a SQLite database ({cause})") from None
        translated = translate(exc)
        if translated is not None and translated.code == "storage_full":
            raise DatabaseUnusable(f"cannot migrate {_where(url)}: its disk is full ({cause})") from None
        raise DatabaseUnusable(f"cannot use {_where(url)}: {cause}") from None
    except CommandError as exc:  # Alembic: e.g. a revision it cannot locate
        raise DatabaseUnusable(f"cannot migrate {_where(url)}: {exc}") from None
    except OSError as exc:  # e.g. the data directory cannot be created
        raise DatabaseUnusable(f"cannot open {_where(url)}: {exc}") from None

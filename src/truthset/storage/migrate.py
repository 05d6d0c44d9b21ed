"""Alembic migrations, run programmatically (``truthset db upgrade``, and on ``serve`` start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creating it if needed)."""
    from truthset.storage.engine import Database

    db = Database(url)  # creates the SQLite directory and sets WAL before Alembic connects
    db.dispose()
    command.upgrade(alembic_config(url), revision)

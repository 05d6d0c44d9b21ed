"""Migrations: upgrading an empty database yields exactly the schema of ``storage.tables``."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from truthset.storage import Database, upgrade
from truthset.storage.migrate import alembic_config
from truthset.storage.tables import metadata


def _differences(url: str) -> list:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def _current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_upgrade_yields_exactly_the_tables_schema(db_url: str) -> None:
    upgrade(db_url)
    assert _differences(db_url) == []
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert _current_revision(db_url) == head
    # a second upgrade is a no-op
    upgrade(db_url)
    assert _differences(db_url) == []


def test_the_migrations_form_one_line() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_a_fresh_sqlite_upgrade_is_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/truthset.db"
    upgrade(url)
    db = Database(url)
    try:
        with db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.dispose()

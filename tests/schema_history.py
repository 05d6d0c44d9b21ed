"""The database schemas earlier versions of truthset shipped, rebuilt with the migrations they ran.

Migrations 0001 and 0003 were edited after they had shipped (commits 3b9a511, c7e984a and b4e0cff
added indexes to them), so "at revision 0003" names several different schemas. Each entry of
:data:`SHIPPED` is one of them: the migration files a database created by that commit ran. Files
that later changed are kept as they were in ``fixtures/schema_history/`` (``name@commit.py``, copied
with ``git show <commit>:src/truthset/storage/migrations/versions/<name>``); the others are today's.

``fixtures/old_databases/<state>.sql`` are SQLite databases made this way, with data (see
``fixtures/old_databases/make.py``); :func:`build` also makes an empty one on any backend.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

from alembic import command

from truthset.storage.migrate import MIGRATIONS, alembic_config

FIXTURES = Path(__file__).parent / "fixtures"
HISTORY = FIXTURES / "schema_history"
OLD_DATABASES = FIXTURES / "old_databases"

#: state (the commit that shipped it) -> the migration files a database made by that commit ran
SHIPPED: dict[str, tuple[str, ...]] = {
    # 0001 as first released: ix_tasks_batch_status on (batch_id, status) only
    "bd3ee58": ("0001_initial_schema@bd3ee58.py",),
    # 0001 edited: ix_tasks_batch_status gains id, ix_tasks_project_status added
    "3b9a511": ("0001_initial_schema@3b9a511.py",),
    # 0002 (sessions) on top of that 0001
    "9584f5d": ("0001_initial_schema@3b9a511.py", "0002_sessions.py"),
    # 0001 edited again: ix_tasks_batch_id added
    "c7e984a": ("0001_initial_schema.py", "0002_sessions.py"),
    # 0003 as first released: projects.queue_epoch without ix_responses_task (added by b4e0cff)
    "e002d2c": ("0001_initial_schema.py", "0002_sessions.py", "0003_queue_epoch@e002d2c.py"),
}


def build(url: str, state: str) -> None:
    """Create the schema of ``state`` in the (empty) database at ``url`` with that state's migrations."""
    with tempfile.TemporaryDirectory() as tmp:
        scripts = Path(tmp)
        (scripts / "versions").mkdir()
        for name in ("env.py", "script.py.mako"):  # unchanged since the first release
            shutil.copy(MIGRATIONS / name, scripts / name)
        for name in SHIPPED[state]:
            source = HISTORY / name if "@" in name else MIGRATIONS / "versions" / name
            shutil.copy(source, scripts / "versions" / re.sub(r"@\w+", "", name))
        config = alembic_config(url)
        config.set_main_option("script_location", str(scripts))
        command.upgrade(config, "head")


def load(state: str, path: Path) -> str:
    """Write the committed SQLite fixture of ``state`` to ``path``; returns its URL."""
    sql = (OLD_DATABASES / f"{state}.sql").read_text(encoding="utf-8")
    conn = sqlite3.connect(path)
    try:
        conn.executescript(sql)
    finally:
        conn.close()
    return f"sqlite:///{path}"

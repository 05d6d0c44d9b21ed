"""task browser: sort indexes, the worker filter's index, full-text search on task data

Revision ID: 0007
Revises: 0006

Indexes that page a project's tasks by last update, confidence and priority (keyset on value, id),
the tasks a worker answered, and full-text search on the string values of a task's data: an FTS5
table kept in sync by triggers on SQLite (filled here from the stored tasks), a GIN index on
``to_tsvector('simple', data::jsonb)`` on PostgreSQL. See ``services/task_browse.py``.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_tasks_project_updated", "tasks", ["project_id", "updated_at", "id"]),
    ("ix_tasks_project_confidence", "tasks", ["project_id", "confidence", "id"]),
    ("ix_tasks_project_priority", "tasks", ["project_id", "priority", "id"]),
    ("ix_tasks_status_updated", "tasks", ["project_id", "status", "updated_at", "id"]),
    ("ix_tasks_status_confidence", "tasks", ["project_id", "status", "confidence", "id"]),
    ("ix_tasks_status_priority", "tasks", ["project_id", "status", "priority", "id"]),
    ("ix_responses_worker_task", "responses", ["worker_id", "task_id"]),
)

#: The statements as they were when this migration shipped (tables.py may change; this may not).
_WORDS = "(SELECT group_concat(value, ' ') FROM json_tree({row}.data) WHERE type = 'text')"
SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS tasks_fts "
    "USING fts5(words, content='', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS tasks_fts_insert AFTER INSERT ON tasks BEGIN "
    f"INSERT INTO tasks_fts(rowid, words) VALUES (new.rowid, {_WORDS.format(row='new')}); END",
    "CREATE TRIGGER IF NOT EXISTS tasks_fts_delete AFTER DELETE ON tasks BEGIN "
    "INSERT INTO tasks_fts(tasks_fts, rowid, words) "
    f"VALUES ('delete', old.rowid, {_WORDS.format(row='old')}); END",
    "CREATE TRIGGER IF NOT EXISTS tasks_fts_update AFTER UPDATE OF data ON tasks BEGIN "
    "INSERT INTO tasks_fts(tasks_fts, rowid, words) "
    f"VALUES ('delete', old.rowid, {_WORDS.format(row='old')}); "
    f"INSERT INTO tasks_fts(rowid, words) VALUES (new.rowid, {_WORDS.format(row='new')}); END",
)
POSTGRES_SEARCH_DDL = (
    "CREATE INDEX IF NOT EXISTS ix_tasks_fts ON tasks USING gin (to_tsvector('simple'::regconfig, data::jsonb))",
)
_SQLITE_FILL = (
    "INSERT INTO tasks_fts(rowid, words) SELECT rowid, "
    "(SELECT group_concat(value, ' ') FROM json_tree(tasks.data) WHERE type = 'text') FROM tasks"
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_SEARCH_DDL:
            op.execute(statement)
        op.execute(_SQLITE_FILL)
    elif dialect == "postgresql":
        for statement in POSTGRES_SEARCH_DDL:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("tasks_fts_insert", "tasks_fts_delete", "tasks_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS tasks_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_tasks_fts")
    for name, table, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)

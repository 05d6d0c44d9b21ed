"""repair databases made before 0001 and 0003 were edited: create the indexes they may lack

Revision ID: 0004
Revises: 0003

Indexes were added to migrations 0001 and 0003 after those had shipped, so a database that ran an
earlier version of them reached "0003" without these indexes (the code names them in SQLite
INDEXED BY hints, which fail without them) or, for ix_tasks_batch_status, with fewer columns.
Each index is inspected first: created when missing, recreated when its columns differ, left alone
when it is already right (a database made after the edits). Nothing else changed in those edits.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (table, index, columns) as the edited 0001 and 0003 create them
_INDEXES = (
    ("tasks", "ix_tasks_batch_status", ["batch_id", "status", "id"]),  # id added by 3b9a511
    ("tasks", "ix_tasks_project_status", ["project_id", "status", "id"]),  # added by 3b9a511
    ("tasks", "ix_tasks_batch_id", ["batch_id", "id"]),  # added by c7e984a
    ("responses", "ix_responses_task", ["task_id", "id"]),  # added by b4e0cff
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, name, columns in _INDEXES:
        existing = {index["name"]: index["column_names"] for index in inspector.get_indexes(table)}
        if existing.get(name) == columns:
            continue
        if name in existing:
            op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    # The indexes belong to 0001 and 0003 as they are now: at revision 0003 a database has them.
    pass

"""tasks.queue_rank: the place of a pending task within its priority (active learning)

- ``tasks.queue_rank``: the queue serves priority (highest first), then ``queue_rank`` (lowest
  first), then id. It is 0 for every task unless the project's policy says
  ``ordering: "uncertainty"``, whose re-rank step (services/active_learning.py) writes it; so under
  the default ordering the queue's order is exactly the one before this migration.
- ``ix_tasks_queue`` gains ``queue_rank`` between priority and id, replacing the index rather than
  adding one beside it: every index costs every task insert, and the lease needs only this one.

The column is nullable but never NULL (every insert takes the server default 0): a PostgreSQL bulk
import copies rows into a staging table made ``LIKE tasks``, which keeps NOT NULL but not defaults.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("queue_rank", sa.Integer(), nullable=True, server_default="0"))
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.create_index(
        "ix_tasks_queue", "tasks", ["project_id", "status", sa.literal_column("priority DESC"), "queue_rank", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.create_index("ix_tasks_queue", "tasks", ["project_id", "status", sa.literal_column("priority DESC"), "id"])
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("queue_rank")

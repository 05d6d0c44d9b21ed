"""projects.queue_epoch (events that can make a passed-over task eligible again); a task's responses by index

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("queue_epoch", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_responses_task", "responses", ["task_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_responses_task", table_name="responses")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("queue_epoch")

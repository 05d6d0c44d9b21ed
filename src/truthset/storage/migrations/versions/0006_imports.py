"""imports: idempotence by content, image sizes

Revision ID: 0006
Revises: 0005

``tasks.content_hash``: for a task imported without a ``unique_id``, a hash of its data and
metadata (canonical JSON), unique per project, so that importing the same file twice adds nothing.
Partial (only rows that have one), so tasks with a ``unique_id`` cost the index nothing.
``media.width`` and ``media.height``: an image's size in pixels, read when it is decoded on upload.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_HAS_HASH = "content_hash IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("content_hash", sa.String(32), nullable=True))
    op.create_index(
        "uq_tasks_project_content",
        "tasks",
        ["project_id", "content_hash"],
        unique=True,
        sqlite_where=sa.text(_HAS_HASH),
        postgresql_where=sa.text(_HAS_HASH),
    )
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("height", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("height")
        batch.drop_column("width")
    op.drop_index("uq_tasks_project_content", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("content_hash")

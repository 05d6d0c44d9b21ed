"""projects.scale and tasks.scale: what the Scale-compatible API (compat/scale) keeps beside the row

A project made through ``/scale/v1`` records its Scale task type and parameter history; a task made
there records its Scale type, parameters, tags, callback URL and whether its callback was delivered.
Both are null for everything made through truthset's own API.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("scale", sa.JSON(), nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("scale", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("scale")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("scale")

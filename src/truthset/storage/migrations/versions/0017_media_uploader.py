"""Who uploaded each image: ``media.created_by``

The member who first uploaded the file (its row is the organization's, shared by every later upload
of the same bytes), so that a manager may delete an image they uploaded themselves while owners and
admins delete any (services/media_pruning.py, ``delete_image``). Null for the images stored before.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("created_by", sa.String(24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("created_by")

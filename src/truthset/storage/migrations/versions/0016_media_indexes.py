"""Indexes for pruning the images no task names (services/media_pruning.py)

- ``ix_media_sha256`` on ``media.sha256``: a file on disk is shared by every organization that
  uploaded the same bytes, so before removing one the prune asks whether any row of any
  organization still names it; the unique index on (organization, sha256) cannot answer that
  without a scan of the whole table per chunk of images.
- ``ix_media_org_id`` on ``media (organization_id, id)``: the prune goes through an organization's
  images in id order, a chunk at a time.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_NAMED = {
    "ix_media_sha256": ["sha256"],
    "ix_media_org_id": ["organization_id", "id"],
}


def upgrade() -> None:
    for name, columns in _NAMED.items():
        op.create_index(name, "media", columns)


def downgrade() -> None:
    for name in _NAMED:
        op.drop_index(name, table_name="media")

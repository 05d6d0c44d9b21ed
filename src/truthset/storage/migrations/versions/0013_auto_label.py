"""project_workers: a model worker's auto-labeling counters (services/auto_label.py)

Per (project, model worker): tasks it auto-labeled, those sent back to people when it was paused,
and the audits people completed with how many agreed with it. Counters, not a count of task events
each time: the suspension rule reads them in the submit that completes an audit.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COLUMNS = ("auto_labeled", "auto_labels_reopened", "audits", "audits_agreed")


def upgrade() -> None:
    with op.batch_alter_table("project_workers") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("project_workers") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)

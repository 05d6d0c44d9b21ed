"""responses by project and time: the project dashboard's throughput, recent answers and workers

``ix_responses_project_created (project_id, created_at)``: the dashboard counts a project's
responses per hour or day over a window (a range of this index instead of every response of the
organization), samples its most recent answers (the index read backwards), and groups its
responses by worker (only the project's rows).

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_responses_project_created", "responses", ["project_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_project_created", table_name="responses")

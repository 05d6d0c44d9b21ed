"""project_models: the built-in text model's trained versions (services/model_training.py)

One row per trained version of a project's model for one question: where its file lives under the
data directory (relative path), the file's SHA-256 (a file is loaded only when its digest matches
this row: the trust rule of docs/models.md), and the evaluation's figures.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_models",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("organization_id", sa.String(24), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("project_id", sa.String(24), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("question", sa.String(64), nullable=False),
        sa.Column("version", sa.String(60), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.UniqueConstraint("project_id", "question", "version", name="uq_project_models_version"),
    )
    op.create_index("ix_project_models_project_id", "project_models", ["project_id", "id"])
    op.create_index("ix_project_models_org_id", "project_models", ["organization_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_project_models_org_id", table_name="project_models")
    op.drop_index("ix_project_models_project_id", table_name="project_models")
    op.drop_table("project_models")

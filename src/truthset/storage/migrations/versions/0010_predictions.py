"""Predictions: model workers' responses carry their scores; people's record what was pre-filled

- ``responses.scores``: per question, the score a model gave its prediction (null for a person's).
  A non-null value marks the response as a prediction (services/predictions.py).
- ``responses.prefill``: per question a person was shown a pre-filled prediction for, which one
  (its response and model worker) and whether they submitted it unchanged (``accepted``).
- ``uq_workers_model_name``: one model worker per ``name@version`` in an organization, so two
  uploads racing to create it make one.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("scores", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("prefill", sa.JSON(), nullable=True))
    op.create_index(
        "uq_workers_model_name",
        "workers",
        ["organization_id", "name"],
        unique=True,
        sqlite_where=sa.text("kind = 'model'"),
        postgresql_where=sa.text("kind = 'model'"),
    )


def downgrade() -> None:
    op.drop_index("uq_workers_model_name", table_name="workers")
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("prefill")
        batch.drop_column("scores")

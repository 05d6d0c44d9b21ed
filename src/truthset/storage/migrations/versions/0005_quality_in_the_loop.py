"""quality in the loop: jobs, fitted quality models, task events, gold, reviews, worker standing

Revision ID: 0005
Revises: 0004

New tables: ``jobs`` (the transactional outbox the job runner claims from), ``quality_models``
(versioned fitted worker models per project and question), ``task_events`` (a task's history:
completion, one more judgment asked, refit changes, reviews), ``reviews`` and ``project_workers``
(a worker's standing on a project: gold figures, paused or not). New task columns: ``fixed_overlap``
(a per-task overlap given at creation), ``gold`` (the known answer of a gold task) and
``review_status``.

Existing projects keep their behaviour: a policy ``{"overlap": n}`` becomes the fixed overlap
``min_overlap = max_overlap = n`` with no confidence target, and a task whose overlap was set at
creation (it differs from its project's) keeps it as ``fixed_overlap``.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(24)


def _fk(name: str, table: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, ID, sa.ForeignKey(f"{table}.id"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", ID, primary_key=True),
        _fk("organization_id", "organizations"),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="5"),
        sa.Column("run_after", sa.DateTime(), nullable=False),
        sa.Column("locked_by", sa.String(100), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _fk("created_by", "members", nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_jobs_claim", "jobs", ["status", "run_after"])
    op.create_index("ix_jobs_org_id", "jobs", ["organization_id", "id"])
    # at most one waiting job per dedupe key (e.g. one queued refit per project and question)
    op.create_index(
        "uq_jobs_waiting_key",
        "jobs",
        ["dedupe_key"],
        unique=True,
        sqlite_where=sa.text("status = 'queued' AND dedupe_key IS NOT NULL"),
        postgresql_where=sa.text("status = 'queued' AND dedupe_key IS NOT NULL"),
    )
    op.create_table(
        "quality_models",
        sa.Column("id", ID, primary_key=True),
        _fk("organization_id", "organizations"),
        _fk("project_id", "projects"),
        sa.Column("question", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(40), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("n_responses", sa.Integer(), nullable=False),
        sa.Column("n_tasks", sa.Integer(), nullable=False),
        sa.Column("n_workers", sa.Integer(), nullable=False),
        sa.Column("fit_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "question", "version", name="uq_quality_models_version"),
    )
    op.create_table(
        "task_events",
        sa.Column("id", ID, primary_key=True),
        _fk("organization_id", "organizations"),
        _fk("project_id", "projects"),
        _fk("task_id", "tasks"),
        sa.Column("kind", sa.String(30), nullable=False),
        _fk("worker_id", "workers", nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_task_events_task", "task_events", ["task_id", "id"])
    op.create_table(
        "reviews",
        sa.Column("id", ID, primary_key=True),
        _fk("organization_id", "organizations"),
        _fk("project_id", "projects"),
        _fk("task_id", "tasks"),
        _fk("reviewer_id", "workers"),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _fk("response_id", "responses", nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_reviews_task", "reviews", ["task_id", "id"])
    op.create_index("ix_reviews_org_id", "reviews", ["organization_id", "id"])
    op.create_table(
        "project_workers",
        sa.Column("id", ID, primary_key=True),
        _fk("organization_id", "organizations"),
        _fk("project_id", "projects"),
        _fk("worker_id", "workers"),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tasks_served", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("gold_served", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("gold_answers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("gold_correct", sa.Float(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "worker_id", name="uq_project_workers_project_worker"),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("fixed_overlap", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("gold", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("review_status", sa.String(12), nullable=True))
    op.create_index("ix_tasks_review", "tasks", ["project_id", "review_status", "id"])
    _explicit_fixed_overlap()


def _explicit_fixed_overlap() -> None:
    """Rewrite each project's ``{"overlap": n}`` as the fixed overlap min = max = n (same behaviour)."""
    bind = op.get_bind()
    projects = sa.table("projects", sa.column("id", ID), sa.column("quality", sa.JSON()))
    tasks = sa.table(
        "tasks",
        sa.column("project_id", ID),
        sa.column("overlap", sa.Integer()),
        sa.column("fixed_overlap", sa.Integer()),
    )
    for project_id, quality in bind.execute(sa.select(projects.c.id, projects.c.quality)).all():
        policy = dict(json.loads(quality) if isinstance(quality, str) else quality or {})
        overlap = int(policy.pop("overlap", 1))
        policy.setdefault("min_overlap", overlap)
        policy.setdefault("max_overlap", overlap)
        policy.setdefault("target_confidence", None)
        bind.execute(sa.update(projects).where(projects.c.id == project_id).values(quality=policy))
        bind.execute(
            sa.update(tasks)
            .where(tasks.c.project_id == project_id, tasks.c.overlap != overlap)
            .values(fixed_overlap=tasks.c.overlap)
        )


def downgrade() -> None:
    bind = op.get_bind()
    projects = sa.table("projects", sa.column("id", ID), sa.column("quality", sa.JSON()))
    for project_id, quality in bind.execute(sa.select(projects.c.id, projects.c.quality)).all():
        policy = dict(json.loads(quality) if isinstance(quality, str) else quality or {})
        bind.execute(
            sa.update(projects)
            .where(projects.c.id == project_id)
            .values(quality={"overlap": int(policy.get("min_overlap", 1))})
        )
    op.drop_index("ix_tasks_review", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("review_status")
        batch.drop_column("gold")
        batch.drop_column("fixed_overlap")
    for table in ("project_workers", "reviews", "task_events", "quality_models", "jobs"):
        op.drop_table(table)

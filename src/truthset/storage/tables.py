"""Table definitions (SQLAlchemy Core). Every tenant table carries ``organization_id``.

Ids are 24 hex characters that sort by creation time (see :func:`truthset.storage.ids.new_id`), so
keyset pagination on ``id`` follows creation order and ids reveal nothing about other tenants.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(24)


def _id() -> Column:
    return Column("id", ID, primary_key=True)


def _org() -> Column:
    return Column("organization_id", ID, ForeignKey("organizations.id"), nullable=False)


def _created() -> Column:
    return Column("created_at", DateTime, nullable=False)


organizations = Table(
    "organizations",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    _created(),
)

members = Table(
    "members",
    metadata,
    _id(),
    _org(),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=True),
    _created(),
    Column("disabled_at", DateTime, nullable=True),
    UniqueConstraint("organization_id", "email", name="uq_members_org_email"),
)

workers = Table(
    "workers",
    metadata,
    _id(),
    _org(),
    Column("kind", String(10), nullable=False),
    Column("name", String(200), nullable=False),
    Column("member_id", ID, ForeignKey("members.id"), nullable=True, unique=True),
    _created(),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    _org(),
    Column("member_id", ID, ForeignKey("members.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    _created(),
    Column("last_used_at", DateTime, nullable=True),
    Column("revoked_at", DateTime, nullable=True),
)

projects = Table(
    "projects",
    metadata,
    _id(),
    _org(),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("instructions", Text, nullable=False, default=""),
    Column("spec", JSON, nullable=False),
    Column("quality", JSON, nullable=False),
    Column("lease_seconds", Integer, nullable=False),
    _created(),
    Column("updated_at", DateTime, nullable=False),
    Column("archived_at", DateTime, nullable=True),
    # Bumped by every event that can make a task a worker passed over eligible for them again (a
    # lease given back or expired, new pending tasks): the queue's per-worker frontier is valid only
    # within one epoch (services/queue.py).
    Column("queue_epoch", Integer, nullable=False, server_default="0"),
    Index("ix_projects_org_id", "organization_id", "id"),
)

batches = Table(
    "batches",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(12), nullable=False),
    Column("metadata", JSON, nullable=False),
    _created(),
    Column("finalized_at", DateTime, nullable=True),
    Column("completed_at", DateTime, nullable=True),
    UniqueConstraint("project_id", "name", name="uq_batches_project_name"),
    Index("ix_batches_org_id", "organization_id", "id"),
)

tasks = Table(
    "tasks",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("batch_id", ID, ForeignKey("batches.id"), nullable=True),
    Column("unique_id", String(400), nullable=True),
    Column("data", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("status", String(12), nullable=False),
    Column("overlap", Integer, nullable=False),
    Column("response_count", Integer, nullable=False),
    Column("lease_count", Integer, nullable=False),
    Column("result", JSON, nullable=True),
    Column("confidence", Float, nullable=True),
    _created(),
    Column("updated_at", DateTime, nullable=False),
    Column("completed_at", DateTime, nullable=True),
    UniqueConstraint("organization_id", "unique_id", name="uq_tasks_org_unique_id"),
    Index("ix_tasks_org_id", "organization_id", "id"),
    Index("ix_tasks_project_id", "project_id", "id"),
    # listing by project or batch, optionally by status, in id order (keyset pages)
    Index("ix_tasks_project_status", "project_id", "status", "id"),
    Index("ix_tasks_batch_status", "batch_id", "status", "id"),
    Index("ix_tasks_batch_id", "batch_id", "id"),
)

assignments = Table(
    "assignments",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("task_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("worker_id", ID, ForeignKey("workers.id"), nullable=False),
    Column("status", String(12), nullable=False),
    _created(),
    Column("expires_at", DateTime, nullable=False),
    Column("ended_at", DateTime, nullable=True),
    Index("ix_assignments_task_worker", "task_id", "worker_id"),
    Index("ix_assignments_expiry", "project_id", "status", "expires_at"),
    Index("ix_assignments_worker", "worker_id", "status"),
)

responses = Table(
    "responses",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("task_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("worker_id", ID, ForeignKey("workers.id"), nullable=False),
    Column("assignment_id", ID, ForeignKey("assignments.id"), nullable=True),
    Column("answer", JSON, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("duration_ms", Integer, nullable=True),
    _created(),
    UniqueConstraint("task_id", "worker_id", name="uq_responses_task_worker"),
    UniqueConstraint("worker_id", "idempotency_key", name="uq_responses_worker_idempotency"),
    Index("ix_responses_org_id", "organization_id", "id"),
    Index("ix_responses_task", "task_id", "id"),  # a task's responses, in order (completing a task)
)

media = Table(
    "media",
    metadata,
    _id(),
    _org(),
    Column("sha256", String(64), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("filename", String(300), nullable=False),
    _created(),
    UniqueConstraint("organization_id", "sha256", name="uq_media_org_sha"),
)

# Browser sessions (the web UI). Only a SHA-256 hash of the cookie's token is stored, so a copy of
# the database opens no session; a session ends at ``expires_at`` (idle timeout, capped by an absolute one).
sessions = Table(
    "sessions",
    metadata,
    _id(),
    _org(),
    Column("member_id", ID, ForeignKey("members.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    _created(),
    Column("last_seen_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_sessions_expires_at", "expires_at"),
)

# Failed sign-ins, to slow down password guessing across every server process (rows expire).
login_failures = Table(
    "login_failures",
    metadata,
    _id(),
    Column("email_hash", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    _created(),
    Index("ix_login_failures_email", "email_hash", "created_at"),
    Index("ix_login_failures_address", "address", "created_at"),
)

# The queue: the highest priority, oldest pending task of a project (priority descending).
Index("ix_tasks_queue", tasks.c.project_id, tasks.c.status, tasks.c.priority.desc(), tasks.c.id)

TENANT_TABLES = (members, workers, api_keys, projects, batches, tasks, assignments, responses, media)

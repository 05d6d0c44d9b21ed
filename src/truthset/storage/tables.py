"""Table definitions (SQLAlchemy Core). Every tenant table carries ``organization_id``.

Ids are 24 hex characters that sort by creation time (see :func:`truthset.storage.ids.new_id`), so
keyset pagination on ``id`` follows creation order and ids reveal nothing about other tenants.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    text,
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
    # one model worker per "name@version" in an organization (0010; services/predictions.py)
    Index(
        "uq_workers_model_name",
        "organization_id",
        "name",
        unique=True,
        sqlite_where=text("kind = 'model'"),
        postgresql_where=text("kind = 'model'"),
    ),
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
    # A project made through the Scale-compatible API: its Scale type and params (compat/scale)
    Column("scale", JSON, nullable=True),
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
    # an overlap given for this task at creation: min = max = it, whatever the project's policy
    Column("fixed_overlap", Integer, nullable=True),
    Column("gold", JSON, nullable=True),  # the known answer of a gold task (status "gold")
    Column("review_status", String(12), nullable=True),  # pending | accepted | rejected | fixed
    # imported without a unique_id: a hash of data + metadata, so a re-import adds nothing (0006)
    Column("content_hash", String(32), nullable=True),
    # A task made through the Scale-compatible API: type, params, tags, callback (compat/scale)
    Column("scale", JSON, nullable=True),
    # Within a priority, the queue serves the lowest rank first (then the oldest). 0 unless the
    # policy orders by uncertainty ("uncertainty", "model_uncertainty"): then the re-rank step of
    # services/active_learning.py writes it, and only there, bumping queue_epoch (0014). Never NULL
    # in practice; nullable only because a PostgreSQL bulk import COPYs into a staging table (LIKE
    # tasks) without it, and LIKE keeps NOT NULL but not the default
    Column("queue_rank", Integer, nullable=True, server_default="0"),
    UniqueConstraint("organization_id", "unique_id", name="uq_tasks_org_unique_id"),
    Index("ix_tasks_org_id", "organization_id", "id"),
    Index("ix_tasks_project_id", "project_id", "id"),
    # listing by project or batch, optionally by status, in id order (keyset pages)
    Index("ix_tasks_project_status", "project_id", "status", "id"),
    Index("ix_tasks_batch_status", "batch_id", "status", "id"),
    Index("ix_tasks_batch_id", "batch_id", "id"),
    Index(
        "uq_tasks_project_content",
        "project_id",
        "content_hash",
        unique=True,
        sqlite_where=text("content_hash IS NOT NULL"),
        postgresql_where=text("content_hash IS NOT NULL"),
    ),
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
    # a model's prediction: its score per question (null for a person's response; 0010)
    Column("scores", JSON, nullable=True),
    # a person's response: per question pre-filled with a prediction, which one and whether kept (0010)
    Column("prefill", JSON, nullable=True),
    UniqueConstraint("task_id", "worker_id", name="uq_responses_task_worker"),
    UniqueConstraint("worker_id", "idempotency_key", name="uq_responses_worker_idempotency"),
    Index("ix_responses_org_id", "organization_id", "id"),
    Index("ix_responses_task", "task_id", "id"),  # a task's responses, in order (completing a task)
    # the responses naming a lease: the foreign key's check when leases are deleted (migration 0015)
    Index(
        "ix_responses_assignment",
        "assignment_id",
        sqlite_where=text("assignment_id IS NOT NULL"),
        postgresql_where=text("assignment_id IS NOT NULL"),
    ),
    Index("ix_responses_project_created", "project_id", "created_at"),  # the dashboard (0010)
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
    Column("width", Integer, nullable=True),  # pixels, read when the image was decoded (0006)
    Column("height", Integer, nullable=True),
    Column("created_by", String(24), nullable=True),  # the member who first uploaded it (0017; null before)
    UniqueConstraint("organization_id", "sha256", name="uq_media_org_sha"),
    Index("ix_media_sha256", "sha256"),  # is a file still named by any organization? (0016)
    Index("ix_media_org_id", "organization_id", "id"),  # an organization's images in id order (0016)
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

# The job runner's outbox: rows written in the same transaction as the change that causes them,
# claimed atomically by a runner (SKIP LOCKED on PostgreSQL), run at least once (see jobs/).
jobs = Table(
    "jobs",
    metadata,
    _id(),
    _org(),
    Column("kind", String(40), nullable=False),
    Column("dedupe_key", String(200), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("status", String(12), nullable=False),  # queued | running | succeeded | failed | canceled
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="5"),
    Column("run_after", DateTime, nullable=False),
    Column("locked_by", String(100), nullable=True),
    Column("locked_until", DateTime, nullable=True),
    Column("progress_done", Integer, nullable=False, server_default="0"),
    Column("progress_total", Integer, nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_by", ID, ForeignKey("members.id"), nullable=True),
    _created(),
    Column("updated_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    Index("ix_jobs_claim", "status", "run_after"),
    Index("ix_jobs_org_id", "organization_id", "id"),
    Index(
        "uq_jobs_waiting_key",
        "dedupe_key",
        unique=True,
        sqlite_where=text("status = 'queued' AND dedupe_key IS NOT NULL"),
        postgresql_where=text("status = 'queued' AND dedupe_key IS NOT NULL"),
    ),
)

# Fitted aggregation models (worker confusion matrices, priors, temperature) per project and
# question, versioned: a task's posterior on submit is computed from the newest version.
quality_models = Table(
    "quality_models",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("question", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("method", String(40), nullable=False),
    Column("state", LargeBinary, nullable=False),  # an .npz archive (numpy, no pickles)
    Column("n_responses", Integer, nullable=False),
    Column("n_tasks", Integer, nullable=False),
    Column("n_workers", Integer, nullable=False),
    Column("fit_seconds", Float, nullable=False),
    _created(),
    UniqueConstraint("project_id", "question", "version", name="uq_quality_models_version"),
)

# A task's history beyond its leases and responses (which have their own tables): completion, one
# more judgment asked, a refit that changed the answer, reviews, gold marks.
task_events = Table(
    "task_events",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("task_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("worker_id", ID, ForeignKey("workers.id"), nullable=True),
    Column("data", JSON, nullable=False),
    _created(),
    Index("ix_task_events_task", "task_id", "id"),
)

reviews = Table(
    "reviews",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("task_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("reviewer_id", ID, ForeignKey("workers.id"), nullable=False),
    Column("verdict", String(10), nullable=False),  # accept | reject | fix
    Column("reason", Text, nullable=True),
    Column("response_id", ID, ForeignKey("responses.id"), nullable=True),  # a fix's response
    _created(),
    Index("ix_reviews_task", "task_id", "id"),
    # the fixes naming a response: the foreign key's check when responses are deleted (migration 0015)
    Index(
        "ix_reviews_response",
        "response_id",
        sqlite_where=text("response_id IS NOT NULL"),
        postgresql_where=text("response_id IS NOT NULL"),
    ),
    Index("ix_reviews_org_id", "organization_id", "id"),
)

# A worker's standing on one project: what gold says of them, and whether they may take tasks.
project_workers = Table(
    "project_workers",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("worker_id", ID, ForeignKey("workers.id"), nullable=False),
    Column("status", String(12), nullable=False),  # active | qualifying | paused
    Column("reason", Text, nullable=True),
    Column("tasks_served", Integer, nullable=False, server_default="0"),
    Column("gold_served", Integer, nullable=False, server_default="0"),
    Column("gold_answers", Integer, nullable=False, server_default="0"),
    Column("gold_correct", Float, nullable=False, server_default="0"),
    Column("updated_at", DateTime, nullable=False),
    # a model worker's auto-labeling (services/auto_label.py, 0013): tasks it completed, those sent
    # back to people when it was paused, and the audits people completed (since it was reinstated)
    Column("auto_labeled", Integer, nullable=False, server_default="0"),
    Column("auto_labels_reopened", Integer, nullable=False, server_default="0"),
    Column("audits", Integer, nullable=False, server_default="0"),
    Column("audits_agreed", Integer, nullable=False, server_default="0"),
    UniqueConstraint("project_id", "worker_id", name="uq_project_workers_project_worker"),
)

# Webhooks (services/webhooks.py): subscriptions of an organization (or one of its projects) to
# events; one delivery per event and subscription, written in the transaction of the event (its
# ``webhook.deliver`` job too); one attempt row per POST. The secret is stored encrypted (AES-GCM).
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=True),  # null: every project
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),  # the event names it wants
    Column("description", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("secret", Text, nullable=False),  # "v1:" + base64(nonce + AES-GCM ciphertext)
    Column("created_by", ID, ForeignKey("members.id"), nullable=True),
    _created(),
    Column("updated_at", DateTime, nullable=False),
    Column("secret_rotated_at", DateTime, nullable=True),
    Index("ix_webhook_subscriptions_org_id", "organization_id", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),  # the X-Truthset-Delivery header: the same on every attempt and replay
    _org(),
    Column("subscription_id", ID, ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=True),
    Column("event", String(40), nullable=False),
    Column("payload", JSON, nullable=False),  # the body's "data"
    Column("status", String(12), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", DateTime, nullable=True),
    Column("window_started_at", DateTime, nullable=False),  # retried until this + the retry window
    Column("job_id", ID, nullable=True),  # the webhook.deliver job now in charge
    _created(),
    Column("updated_at", DateTime, nullable=False),
    Column("delivered_at", DateTime, nullable=True),
    Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
    Index("ix_webhook_deliveries_org_id", "organization_id", "id"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    _id(),
    _org(),
    Column("delivery_id", ID, ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),  # 1, 2... per delivery (replays continue the count)
    Column("status_code", Integer, nullable=True),  # null: no answer (refused, no connection, time limit)
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("job_id", ID, nullable=True),
    _created(),  # when the attempt started
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)

# The built-in text model's trained versions (services/model_training.py, migration 0012): a file
# under the data directory is loaded only when its SHA-256 matches the row (docs/models.md).
project_models = Table(
    "project_models",
    metadata,
    _id(),
    _org(),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("question", String(64), nullable=False),
    Column("version", String(60), nullable=False),
    Column("path", String(300), nullable=False),  # relative to the data directory
    Column("sha256", String(64), nullable=False),
    Column("metrics", JSON, nullable=False),
    _created(),
    Column("status", String(12), nullable=False),
    UniqueConstraint("project_id", "question", "version", name="uq_project_models_version"),
    Index("ix_project_models_project_id", "project_id", "id"),
    Index("ix_project_models_org_id", "organization_id", "id"),
)

# The queue: the highest priority, lowest queue_rank, oldest pending task of a project.
Index("ix_tasks_queue", tasks.c.project_id, tasks.c.status, tasks.c.priority.desc(), tasks.c.queue_rank, tasks.c.id)
Index("ix_tasks_review", tasks.c.project_id, tasks.c.review_status, tasks.c.id)
# The task browser's sorts, each paged on (value, id) within a project (services/task_browse.py)
Index("ix_tasks_project_updated", tasks.c.project_id, tasks.c.updated_at, tasks.c.id)
Index("ix_tasks_project_confidence", tasks.c.project_id, tasks.c.confidence, tasks.c.id)
Index("ix_tasks_project_priority", tasks.c.project_id, tasks.c.priority, tasks.c.id)
# the dashboard's judgments per task (services/dashboard.py, migration 0010)
Index("ix_tasks_project_judgments", tasks.c.project_id, tasks.c.response_count)
# the same within one status (a rare status would otherwise walk the whole project's sort index)
Index("ix_tasks_status_updated", tasks.c.project_id, tasks.c.status, tasks.c.updated_at, tasks.c.id)
Index("ix_tasks_status_confidence", tasks.c.project_id, tasks.c.status, tasks.c.confidence, tasks.c.id)
Index("ix_tasks_status_priority", tasks.c.project_id, tasks.c.status, tasks.c.priority, tasks.c.id)
# the tasks a worker answered (the browser's worker filter)
Index("ix_responses_worker_task", responses.c.worker_id, responses.c.task_id)

# Full-text search on task data (services/task_browse.py): created by migration 0007, and here for
# databases made straight from this metadata (tests). Not tables of this metadata: alembic's
# comparison skips them (see SEARCH_OBJECTS).
SEARCH_OBJECTS = ("tasks_fts", "ix_tasks_fts")
#: The words of a task: the string values of its data (not its keys), space-separated.
_SQLITE_WORDS = "(SELECT group_concat(value, ' ') FROM json_tree({row}.data) WHERE type = 'text')"
SQLITE_SEARCH_DDL = (
    # contentless: the index keeps no copy of the data; rowid is the task's rowid. Accents are kept
    # (not folded), as in PostgreSQL's "simple" configuration: a search means the same on both.
    "CREATE VIRTUAL TABLE IF NOT EXISTS tasks_fts "
    "USING fts5(words, content='', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS tasks_fts_insert AFTER INSERT ON tasks BEGIN "
    f"INSERT INTO tasks_fts(rowid, words) VALUES (new.rowid, {_SQLITE_WORDS.format(row='new')}); END",
    "CREATE TRIGGER IF NOT EXISTS tasks_fts_delete AFTER DELETE ON tasks BEGIN "
    "INSERT INTO tasks_fts(tasks_fts, rowid, words) "
    f"VALUES ('delete', old.rowid, {_SQLITE_WORDS.format(row='old')}); END",
    "CREATE TRIGGER IF NOT EXISTS tasks_fts_update AFTER UPDATE OF data ON tasks BEGIN "
    "INSERT INTO tasks_fts(tasks_fts, rowid, words) "
    f"VALUES ('delete', old.rowid, {_SQLITE_WORDS.format(row='old')}); "
    f"INSERT INTO tasks_fts(rowid, words) VALUES (new.rowid, {_SQLITE_WORDS.format(row='new')}); END",
)
POSTGRES_SEARCH_DDL = (
    "CREATE INDEX IF NOT EXISTS ix_tasks_fts ON tasks USING gin (to_tsvector('simple'::regconfig, data::jsonb))",
)
for _statement in SQLITE_SEARCH_DDL:
    event.listen(tasks, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
for _statement in POSTGRES_SEARCH_DDL:
    event.listen(tasks, "after_create", DDL(_statement).execute_if(dialect="postgresql"))

TENANT_TABLES = (
    members,
    workers,
    api_keys,
    projects,
    batches,
    tasks,
    assignments,
    responses,
    media,
    jobs,
    quality_models,
    task_events,
    reviews,
    project_workers,
    webhook_subscriptions,
    webhook_deliveries,
    webhook_attempts,
    project_models,
)

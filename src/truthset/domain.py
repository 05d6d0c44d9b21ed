"""Domain words from DESIGN.md as enums and small dataclasses shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    REVIEWER = "reviewer"
    ANNOTATOR = "annotator"


class WorkerKind(StrEnum):
    HUMAN = "human"
    MODEL = "model"


class BatchStatus(StrEnum):
    OPEN = "open"
    FINALIZED = "finalized"
    COMPLETED = "completed"
    PAUSED = "paused"
    CANCELED = "canceled"


class TaskStatus(StrEnum):
    STAGED = "staged"  # in an open batch: not served until the batch is finalized
    PENDING = "pending"  # in the queue
    COMPLETED = "completed"
    CANCELED = "canceled"
    GOLD = "gold"  # a known answer, served to measure workers (services/gold.py); never completes


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a runner (maybe until its run_after: a retry's backoff)
    RUNNING = "running"  # leased by a runner until locked_until
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # out of attempts, or a failure no retry can fix
    CANCELED = "canceled"


class WebhookEvent(StrEnum):
    """What a webhook subscription can ask to be told about (docs/webhooks.md lists the payloads)."""

    TASK_COMPLETED = "task.completed"
    BATCH_COMPLETED = "batch.completed"
    RESPONSE_CREATED = "response.created"
    REVIEW_DONE = "review.done"
    EXPORT_READY = "export.ready"
    MODEL_SUSPENDED = "model.suspended"  # audits paused a model's auto-labeling (services/auto_label.py)
    PROJECT_DELETED = "project.deleted"  # a project was deleted with its data (services/project_deletion.py)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # a webhook.deliver job will (re)try it
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # retried for the whole retry window (or the subscription is gone): replay it


class ReviewStatus(StrEnum):
    """Where a completed task stands with review (None on a task never sent to review)."""

    PENDING = "pending"  # waiting in the project's review queue
    REVIEWING = "reviewing"  # claimed by a reviewer until a deadline (see services/review.py)
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # back in the annotation queue for more judgments
    FIXED = "fixed"  # a reviewer's answer replaced the crowd's


class Verdict(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    FIX = "fix"


class AssignmentStatus(StrEnum):
    ACTIVE = "active"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a member of one organization, with a role, and the worker that labels for them."""

    organization_id: str
    member_id: str
    role: Role
    worker_id: str
    api_key_id: str | None = None


def readable_size(size: int) -> str:
    """A byte count as people read it (binary units, as ``ls -h``): 812 B, 43.3 KiB, 1.4 MiB, 2.0 GiB.
    Shared by the CLI's tables and the web pages."""
    if size < 1024:
        return f"{size} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")

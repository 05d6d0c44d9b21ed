"""truthset rows as the JSON objects the Scale v1 API returns (task, project, batch)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from truthset.compat.scale._store import REVIEW_STATUSES, STATUSES
from truthset.compat.scale._types import TYPES
from truthset.domain import BatchStatus

#: truthset batch statuses as Scale's (a paused batch is still in progress to a Scale client).
BATCH_STATUSES = {
    str(BatchStatus.OPEN): "staging",
    str(BatchStatus.FINALIZED): "in_progress",
    str(BatchStatus.PAUSED): "in_progress",
    str(BatchStatus.COMPLETED): "completed",
    str(BatchStatus.CANCELED): "canceled",
}
_TASK_STATUS = {ours: theirs for theirs, statuses in STATUSES.items() for ours in statuses}
_REVIEW_STATUS = {ours: theirs for theirs, statuses in REVIEW_STATUSES.items() for ours in statuses}


def timestamp(value: datetime | None) -> str | None:
    """Stored times are naive UTC: ISO 8601 with a Z, as Scale writes them."""
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


def task_status(status: str) -> str:
    return _TASK_STATUS.get(status, "pending")


def task_json(task: Mapping[str, Any], project_name: str | None, batch_name: str | None) -> dict[str, Any]:
    """A Scale task. ``response`` once completed, in the type's shape; ``truthset`` carries what
    Scale has no field for: the result's confidence (overall and per question) and truthset's ids."""
    scale = task["scale"] or {}
    status = task_status(task["status"])
    result = task["result"] or {}
    out: dict[str, Any] = {
        "task_id": task["id"],
        "type": scale.get("type"),
        "status": status,
        "created_at": timestamp(task["created_at"]),
        "updated_at": timestamp(task["updated_at"]),
        "instruction": scale.get("instruction", ""),
        "params": scale.get("params", {}),
        "metadata": task["metadata"],
        "unique_id": task["unique_id"],
        "tags": scale.get("tags", []),
        "project": project_name,
        "batch": batch_name,
        "priority": task["priority"],
        "callback_url": scale.get("callback_url"),
        "is_test": False,
        "truthset": {
            "project_id": task["project_id"],
            "batch_id": task["batch_id"],
            "status": task["status"],
            "confidence": task["confidence"],
            "confidence_by_question": result.get("confidence", {}),
            "low_confidence": result.get("low_confidence"),
            "response_count": task["response_count"],
        },
    }
    if "callback_succeeded" in scale:
        out["callback_succeeded"] = scale["callback_succeeded"]
    if task.get("review_status") is not None:  # a row just created has no review_status key
        out["customer_review_status"] = _REVIEW_STATUS.get(task["review_status"], task["review_status"])
    if status == "completed":
        out["completed_at"] = timestamp(task.get("completed_at"))
        kind = TYPES.get(scale.get("type", ""))
        if kind is not None:
            out["response"] = kind.response(result.get("answer") or {}, task["data"], task["id"])
    return out


def limited(task: Mapping[str, Any]) -> dict[str, Any]:
    """``limited_response=true``: only the id, status, metadata and project."""
    return {key: task[key] for key in ("task_id", "status", "metadata", "project") if key in task}


def project_json(project: Mapping[str, Any], *, with_secret: bool) -> dict[str, Any]:
    scale = project["scale"]
    out = {
        "name": project["name"],
        "type": scale["type"],
        "param_history": scale["param_history"],
        "created_at": timestamp(project["created_at"]),
        "truthset": {"project_id": project["id"], "spec_pending": scale.get("spec_pending", False)},
    }
    if with_secret:  # the value of each callback's scale-callback-auth header (managers only)
        out["callback_auth_key"] = scale["callback_auth_key"]
    return out


def batch_json(batch: Mapping[str, Any], project_name: str, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": batch["name"],
        "project": project_name,
        "status": BATCH_STATUSES.get(batch["status"], batch["status"]),
        "created_at": timestamp(batch["created_at"]),
        "completed_at": timestamp(batch["completed_at"]),
        "metadata": batch["metadata"],
        "callback": "",
        "truthset": {"batch_id": batch["id"], "project_id": batch["project_id"], "status": batch["status"]},
    }
    if counts is not None:
        out["truthset"]["counts"] = dict(counts)
    return out


def batch_status_json(batch: Mapping[str, Any], counts: Mapping[str, int]) -> dict[str, Any]:
    """``GET /batches/{name}/status``: the batch's status and its tasks per Scale status."""
    out: dict[str, Any] = {"status": BATCH_STATUSES.get(batch["status"], batch["status"])}
    for theirs, ours in STATUSES.items():
        out[theirs] = sum(counts.get(s, 0) for s in ours)
    return out

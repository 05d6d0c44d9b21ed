"""A task's history: every step in time order, from the tables that record them.

- ``created``: the task (its ``created_at``).
- ``leased`` / ``lease_skipped`` / ``lease_released`` / ``lease_expired``: assignments, at their
  start and end (an answer sent without a lease, or a reviewer's fix, has a closed assignment of its
  own; it is shown as its response only).
- ``response``: each response, with its answer (a reviewer's fix is marked ``review_fix``; a
  pre-filled one has ``prefill``); ``prediction``: a model's response, with its ``scores``.
- every ``task_events`` row under its own kind: ``completed``, ``overlap_raised``,
  ``refit_changed``, ``review_requested``, ``review_claimed``, ``review_skipped``, ``reviewed``,
  gold marks...
- ``completed``, from the task's ``completed_at``, for a task completed before completion events
  were recorded.

Steps at the same instant keep that order (a lease before the response that closes it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from truthset.domain import AssignmentStatus, Principal
from truthset.services.policy import Action, require
from truthset.services.projects import load_task
from truthset.services.review import worker_names
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

_RANK = {"created": 0, "leased": 1, "response": 2, "event": 3, "lease_end": 4}


def task_history(db: Database, principal: Principal, task_id: str) -> list[dict[str, Any]]:
    """Every step of a task, oldest first: ``{at, kind, worker_id, worker_name, data}``."""
    with db.read() as conn:
        task = load_task(conn, principal, task_id)
        require(principal, Action.READ_TASKS)
        steps = [_step(task["created_at"], "created", None, {"status_now": task["status"]}, "created", task["id"])]
        fixes = _fix_responses(conn, principal, task_id)
        steps += _lease_steps(conn, principal, task_id)
        steps += _response_steps(conn, principal, task_id, fixes)
        steps += _event_steps(conn, principal, task_id)
        if task["completed_at"] is not None and not any(s["kind"] == "completed" for s in steps):
            data = {"confidence": task["confidence"], "answer": (task["result"] or {}).get("answer")}
            steps.append(_step(task["completed_at"], "completed", None, data, "event", task["id"]))
        steps.sort(key=lambda s: (s["at"], _RANK[s["_rank"]], s["_id"]))
        names = worker_names(conn, principal, [s["worker_id"] for s in steps])
    return [
        {
            "at": s["at"],
            "kind": s["kind"],
            "worker_id": s["worker_id"],
            "worker_name": names.get(s["worker_id"]) if s["worker_id"] else None,
            "data": s["data"],
        }
        for s in steps
    ]


def _step(at: datetime, kind: str, worker_id: str | None, data: dict[str, Any], rank: str, row_id: str) -> dict:
    return {"at": at, "kind": kind, "worker_id": worker_id, "data": data, "_rank": rank, "_id": row_id}


def _iso(value: datetime) -> str:
    """A stored (naive UTC) time as the API writes times."""
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _rows(conn: Connection, principal: Principal, table: t.Table, task_id: str) -> list[dict[str, Any]]:
    query = repo.scoped(table, principal.organization_id).where(table.c.task_id == task_id).order_by(table.c.id)
    return [dict(r) for r in conn.execute(query).mappings()]


def _fix_responses(conn: Connection, principal: Principal, task_id: str) -> set[str]:
    return {r["response_id"] for r in _rows(conn, principal, t.reviews, task_id) if r["response_id"]}


def _lease_steps(conn: Connection, principal: Principal, task_id: str) -> list[dict[str, Any]]:
    steps = []
    for a in _rows(conn, principal, t.assignments, task_id):
        if a["expires_at"] <= a["created_at"]:
            continue  # no lease: the closed assignment of an answer sent without one
        data = {"assignment_id": a["id"], "expires_at": _iso(a["expires_at"]), "status": a["status"]}
        steps.append(_step(a["created_at"], "leased", a["worker_id"], data, "leased", a["id"]))
        ended = a["status"] in (AssignmentStatus.SKIPPED, AssignmentStatus.RELEASED, AssignmentStatus.EXPIRED)
        if ended and a["ended_at"] is not None:
            kind = f"lease_{a['status']}"
            steps.append(_step(a["ended_at"], kind, a["worker_id"], {"assignment_id": a["id"]}, "lease_end", a["id"]))
    return steps


def _response_steps(conn: Connection, principal: Principal, task_id: str, fixes: set[str]) -> list[dict[str, Any]]:
    return [
        _step(
            r["created_at"],
            "prediction" if r.get("scores") is not None else "response",
            r["worker_id"],
            _response_data(r, fixes),
            "response",
            r["id"],
        )
        for r in repo.responses_of_task(conn, principal.organization_id, task_id)
    ]


def _response_data(r: dict[str, Any], fixes: set[str]) -> dict[str, Any]:
    """A response step's data; a model's prediction with its scores, a pre-filled answer with what was kept."""
    data = {"response_id": r["id"], "answer": r["answer"], "duration_ms": r["duration_ms"]}
    data["review_fix"] = r["id"] in fixes
    if r.get("scores") is not None:
        data["scores"] = r["scores"]
    if r.get("prefill"):
        data["prefill"] = r["prefill"]
    return data


def _event_steps(conn: Connection, principal: Principal, task_id: str) -> list[dict[str, Any]]:
    return [
        _step(e["created_at"], e["kind"], e["worker_id"], dict(e["data"] or {}), "event", e["id"])
        for e in _rows(conn, principal, t.task_events, task_id)
    ]

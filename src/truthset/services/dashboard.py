"""A project's dashboard: every figure of the page in one read, from aggregate SQL.

What stays fast at millions of tasks, and how:

- progress (tasks by status): one ``GROUP BY status`` read from the project's status index alone;
- judgments per task: one ``GROUP BY response_count`` read from ``ix_tasks_project_judgments``; the confidence
  distribution: one count per bin, each a range of the project's confidence index;
- throughput: responses per hour (last 48 hours) or per day (last 30 days), bucketed by the database
  from a range of ``ix_responses_project_created`` (a project's responses by time);
- agreement per question and each worker's agreement with the results: the quality service's own
  figures, computed on a bounded sample, the :data:`SAMPLE_TASKS` most recently answered tasks;
- the per-worker table: one keyset page of workers (by worker id), their counts from one
  ``GROUP BY worker_id``, their gold standing and names from two scoped lookups of that page;
- cost: the project's judgments (its tasks' response counts) times the policy's
  ``price_per_judgment``.

Read-only, never cached: the page asks again every few seconds and sees the work move.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Select, func, literal_column, select

from truthset.domain import Principal, TaskStatus
from truthset.errors import InvalidInput
from truthset.services import gold, jobs, quality, results
from truthset.services.export_jobs import KIND as EXPORT_KIND
from truthset.services.policy import Action, allowed, require
from truthset.services.projects import compiled_spec, load_project
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

__all__ = ["CONFIDENCE_BINS", "INTERVALS", "JUDGMENT_BINS", "SAMPLE_TASKS", "project_dashboard", "project_exports"]

#: bucket length and how many buckets the throughput chart shows
INTERVALS: dict[str, tuple[timedelta, int]] = {"hour": (timedelta(hours=1), 48), "day": (timedelta(days=1), 30)}
#: the most recent tasks with answers that agreement figures are computed on
SAMPLE_TASKS = 2000
#: latest responses read to find them (a task has a few answers; more than this many is rare)
SAMPLE_DEPTH = 5
#: judgments per task: bins 0, 1, ..., JUDGMENT_BINS - 1 and "JUDGMENT_BINS or more"
JUDGMENT_BINS = 10
CONFIDENCE_BINS = 10
_CHUNK = 500  # bound parameters per IN (...) list
INDEX = "ix_responses_project_created"  # a project's responses by time (migration 0010)


def project_dashboard(
    db: Database,
    principal: Principal,
    project_id: str,
    *,
    interval: str = "hour",
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Every figure of the project's dashboard; ``cursor``/``limit`` page its per-worker table."""
    require(principal, Action.READ_QUALITY)
    if interval not in INTERVALS:
        raise InvalidInput(f"interval must be one of {', '.join(INTERVALS)}", details={"field": "interval"})
    now = utcnow()
    with db.read() as conn:
        project = load_project(conn, principal, project_id)
        org = principal.organization_id
        progress = _progress(conn, project_id)
        judgments, total_judgments = _judgments(conn, project_id)
        confidence, without = _confidence(conn, project_id)
        rows = _sample(conn, principal, project_id)
        spec = compiled_spec(project)
        agreement = [_question(quality.question_agreement(q, rows)) for q in spec.questions]
        sampled = {f["worker_id"]: f for f in quality.worker_figures(spec, rows)} if rows.task.size else {}
        current = results.current_models(conn, project, spec)
        measured = quality.measured_by_fit(current[0])
        fitted = quality.fitted_models(conn, project, current)
        workers, next_cursor = _workers(conn, principal, project_id, sampled, measured, cursor, limit)
        throughput = _throughput(conn, org, project_id, interval, now)
    price = (project["quality"] or {}).get("price_per_judgment")
    return {
        "project_id": project_id,
        "generated_at": now,
        "progress": progress,
        "throughput": throughput,
        "judgments": judgments,
        "confidence": confidence,
        "without_confidence": without,
        "sample_tasks": len(rows.task_ids),
        "agreement": agreement,
        "workers": {"items": workers, "next_cursor": next_cursor},
        "quality_models": fitted,
        "cost": {
            "judgments": total_judgments,
            "price_per_judgment": price,
            "total": round(total_judgments * price, 6) if price is not None else None,
        },
    }


# --- tasks -------------------------------------------------------------------------------------------


def _project_tasks(project_id: str, *columns: Any, index: str) -> Select:
    """A read of one project's tasks by one of its indexes, for an aggregate.

    Filtered on the project alone: the caller loaded the project through the organization-scoped
    helper first (``load_project``: another organization's project is a 404 before this runs), and a
    task always belongs to its project's organization. An ``organization_id = ?`` term here would
    cost a table read per task (no project index holds the organization), 6x slower at 1M tasks.
    """
    query = select(*columns).where(t.tasks.c.project_id == project_id)
    return repo.prefer_index(query, t.tasks, index)


def _progress(conn: Connection, project_id: str) -> dict[str, int]:
    tk = t.tasks
    query = _project_tasks(project_id, tk.c.status, func.count(), index="ix_tasks_project_status")
    counts = {str(s): 0 for s in TaskStatus}
    for status, n in conn.execute(query.group_by(tk.c.status)):
        counts[status] = int(n)
    return {**counts, "total": sum(counts.values())}


def _judgments(conn: Connection, project_id: str) -> tuple[list[dict[str, int]], int]:
    """Tasks per number of judgments (the last bin: JUDGMENT_BINS or more), and all judgments."""
    tk = t.tasks
    query = _project_tasks(project_id, tk.c.response_count, func.count(), index="ix_tasks_project_judgments")
    bins = [0] * (JUDGMENT_BINS + 1)
    total = 0
    for judged, n in conn.execute(query.group_by(tk.c.response_count)):
        bins[min(int(judged), JUDGMENT_BINS)] += int(n)
        total += int(judged) * int(n)
    return [{"judgments": k, "tasks": n} for k, n in enumerate(bins)], total


def _confidence(conn: Connection, project_id: str) -> tuple[list[dict[str, Any]], int]:
    """Tasks per confidence bin, and tasks without one: a count per range of the project's
    confidence index (the task browser's sort), each read from the index alone."""
    tk = t.tasks
    bins = []
    for i in range(CONFIDENCE_BINS):
        low, high = round(i / CONFIDENCE_BINS, 6), round((i + 1) / CONFIDENCE_BINS, 6)
        query = _project_tasks(project_id, func.count(), index="ix_tasks_project_confidence")
        query = query.where(tk.c.confidence >= low)
        if i < CONFIDENCE_BINS - 1:  # the last bin includes 1
            query = query.where(tk.c.confidence < high)
        bins.append({"low": low, "high": high, "tasks": int(conn.execute(query).scalar_one())})
    without = _project_tasks(project_id, func.count(), index="ix_tasks_project_confidence")
    return bins, int(conn.execute(without.where(tk.c.confidence.is_(None))).scalar_one())


# --- throughput --------------------------------------------------------------------------------------


def _throughput(conn: Connection, org: str, project_id: str, interval: str, now: datetime) -> dict[str, Any]:
    """Responses per bucket (hour or day, UTC), the empty buckets included, oldest first."""
    step, count = INTERVALS[interval]
    end = now.replace(minute=0, second=0, microsecond=0)
    if interval == "day":
        end = end.replace(hour=0)
    since = end - step * (count - 1)
    r = t.responses
    if conn.dialect.name == "postgresql":
        bucket = func.to_char(func.date_trunc(interval, r.c.created_at), "YYYY-MM-DD HH24")
    else:
        bucket = func.strftime("%Y-%m-%d %H" if interval == "hour" else "%Y-%m-%d 00", r.c.created_at)
    query = (
        repo.scoped(r, org, bucket.label("bucket"), func.count())
        .where(r.c.project_id == project_id, r.c.created_at >= since)
        .group_by(literal_column("bucket"))
    )
    found = {str(key): int(n) for key, n in conn.execute(repo.prefer_index(query, r, INDEX))}
    points = []
    for i in range(count):
        start = since + step * i
        points.append({"start": start, "responses": found.get(start.strftime("%Y-%m-%d %H"), 0)})
    return {"interval": interval, "since": since, "points": points}


# --- agreement, on a sample --------------------------------------------------------------------------


def _sample(conn: Connection, principal: Principal, project_id: str) -> Any:
    """The responses of the :data:`SAMPLE_TASKS` most recently answered tasks, as the quality
    service's rows (and their completed results), for its agreement figures.

    Found from the project's latest responses (``ix_responses_project_created`` read backwards), so
    the read is bounded however many tasks the project has and wherever its answered ones are.
    """
    tk, r = t.tasks, t.responses
    org = principal.organization_id
    latest = (
        repo.scoped(r, org, r.c.task_id)
        .where(r.c.project_id == project_id)
        .order_by(r.c.created_at.desc())
        .limit(SAMPLE_TASKS * SAMPLE_DEPTH)
    )
    found = conn.execute(repo.prefer_index(latest, r, INDEX)).scalars()
    ids = list(dict.fromkeys(found))[:SAMPLE_TASKS]
    tasks = []
    for start in range(0, len(ids), _CHUNK):
        query = repo.scoped(tk, org, tk.c.id, tk.c.status, tk.c.result).where(tk.c.id.in_(ids[start : start + _CHUNK]))
        tasks.extend(conn.execute(query).all())
    task_code: dict[str, int] = {}
    worker_code: dict[str, int] = {}
    codes, workers, answers, durations = [], [], [], []
    ids = [row.id for row in tasks]
    for start in range(0, len(ids), _CHUNK):
        query = repo.scoped(r, org, r.c.task_id, r.c.worker_id, r.c.answer, r.c.duration_ms).where(
            r.c.task_id.in_(ids[start : start + _CHUNK])
        )
        for task_id, worker_id, answer, duration_ms in conn.execute(query):
            codes.append(task_code.setdefault(task_id, len(task_code)))
            workers.append(worker_code.setdefault(worker_id, len(worker_code)))
            answers.append(answer or {})
            durations.append(np.nan if duration_ms is None else duration_ms)
    rows = quality.ResponseRows(
        task=np.asarray(codes, dtype=np.int64),
        worker=np.asarray(workers, dtype=np.int64),
        task_ids=list(task_code),
        worker_ids=list(worker_code),
        answers=answers,
        duration=np.asarray(durations, dtype=np.float64),
    )
    for row in tasks:
        if row.status == str(TaskStatus.COMPLETED) and row.id in task_code and isinstance(row.result, dict):
            rows.results[task_code[row.id]] = row.result.get("answer") or {}
    quality.mark_models(conn, org, rows)
    return rows


def _question(figures: dict[str, Any]) -> dict[str, Any]:
    reasons = figures.get("reasons") or {}
    return {
        "question": figures["question"],
        "type": figures["type"],
        "tasks": figures["tasks"],
        "percent_agreement": figures["percent_agreement"],
        "fleiss_kappa": figures["fleiss_kappa"],
        "krippendorff_alpha": figures["krippendorff_alpha"],
        "measures": figures.get("measures") or {},
        "reason": reasons.get("percent_agreement"),
    }


# --- workers -----------------------------------------------------------------------------------------


def _workers(
    conn: Connection,
    principal: Principal,
    project_id: str,
    sampled: dict[str, dict[str, Any]],
    measured: Callable[[str], dict[str, dict[str, float]]],
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """One keyset page of the workers who answered in the project, in worker id order."""
    r, org = t.responses, principal.organization_id
    query = repo.scoped(r, org, r.c.worker_id, func.count(), func.avg(r.c.duration_ms), func.max(r.c.created_at)).where(
        r.c.project_id == project_id
    )
    if cursor is not None:
        query = query.where(r.c.worker_id > cursor)
    query = query.group_by(r.c.worker_id).order_by(r.c.worker_id).limit(limit + 1)
    counted = conn.execute(repo.prefer_index(query, r, INDEX)).all()  # only the project's responses
    more, counted = len(counted) > limit, counted[:limit]
    ids = [row[0] for row in counted]
    standings = _standings(conn, org, project_id, ids)
    names = _names(conn, org, ids)
    items = []
    for worker_id, responses, mean_ms, last_at in counted:
        standing = gold.standing_figures(standings.get(worker_id))
        name, kind = names.get(worker_id, (worker_id, "human"))
        figures = sampled.get(worker_id) or {}
        items.append(
            {
                "worker_id": worker_id,
                "name": name,
                "kind": kind,
                "responses": int(responses),
                "mean_duration_ms": round(float(mean_ms), 3) if mean_ms is not None else None,
                "last_response_at": last_at,
                "agreement_with_results": figures.get("agreement_with_results"),
                "estimated_accuracy": figures.get("estimated_accuracy"),
                "accuracy_interval": figures.get("accuracy_interval"),
                "scored_answers": figures.get("scored_answers", 0),
                "measured": measured(worker_id),
                "gold_answers": standing["gold_answers"],
                "gold_accuracy": standing["gold_accuracy"],
                "gold_interval": standing["gold_interval"],
                "status": standing["status"],
                "status_reason": standing["status_reason"],
                **_auto_label(standings.get(worker_id) or {}),
            }
        )
    return items, ids[-1] if more else None


def _auto_label(standing: dict[str, Any]) -> dict[str, Any]:
    """A model worker's auto-labeling counters (services/auto_label.py), read from its standing row."""
    audits, agreed = int(standing.get("audits") or 0), int(standing.get("audits_agreed") or 0)
    return {
        "auto_labeled": int(standing.get("auto_labeled") or 0),
        "audits": audits,
        "audits_agreed": agreed,
        "audit_agreement": round(agreed / audits, 6) if audits else None,
    }


def _standings(conn: Connection, org: str, project_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    pw = t.project_workers
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        query = repo.scoped(pw, org).where(
            pw.c.project_id == project_id, pw.c.worker_id.in_(ids[start : start + _CHUNK])
        )
        found.update({row["worker_id"]: dict(row) for row in conn.execute(query).mappings()})
    return found


def _names(conn: Connection, org: str, ids: list[str]) -> dict[str, tuple[str, str]]:
    w = t.workers
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), _CHUNK):
        query = repo.scoped(w, org, w.c.id, w.c.name, w.c.kind).where(w.c.id.in_(ids[start : start + _CHUNK]))
        rows = conn.execute(query)
        found.update({worker_id: (name, kind) for worker_id, name, kind in rows})
    return found


# --- the exports page --------------------------------------------------------------------------------


def project_exports(
    db: Database, principal: Principal, project_id: str, *, cursor: str | None = None, limit: int = 20
) -> tuple[list[dict[str, Any]], str | None]:
    """A project's export jobs, newest first, a keyset page at a time (as ``GET /jobs`` shows jobs:
    managers and above see every one, other roles the ones they started)."""
    require(principal, Action.READ_TASKS)
    j = t.jobs
    with db.read() as conn:
        load_project(conn, principal, project_id)
        query = repo.scoped(j, principal.organization_id).where(
            j.c.kind == EXPORT_KIND, j.c.payload["project_id"].as_string() == project_id
        )
        if not allowed(principal, Action.READ_JOBS):
            query = query.where(j.c.created_by == principal.member_id)
        rows, next_cursor = repo.page(conn, query, j, cursor=cursor, limit=limit, descending=True)
    return [jobs.public(row) for row in rows], next_cursor

"""Jobs: background work as rows of the ``jobs`` table (a transactional outbox).

A change that causes background work (a refit, an export, a webhook delivery) calls :func:`enqueue`
with the connection of its own transaction: the job exists exactly when the change does, and a
rolled-back change leaves no job behind. Runners (``truthset.jobs.Runner``: the ``truthset worker``
command, or a thread of ``truthset serve``) take jobs with :func:`claim`, one atomic statement
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer under ``BEGIN IMMEDIATE``), and
hold them on a lease they renew (:func:`heartbeat`, :func:`progress`). A job whose lease ran out
(its runner crashed or was killed) is claimed again: every job runs at least once, so handlers are
written to be safe to repeat.

Why not a job library: dramatiq, celery, rq and huey keep their queue in a broker (or in their own
connection to it), so a job could exist without the change that caused it or the other way round;
procrastinate and pgqueuer enqueue in the caller's transaction but only on PostgreSQL. The
embedded SQLite set-up needs the same guarantee, so the outbox is ours (a table and five statements).

Times are naive UTC from this machine's clock (as everywhere in truthset): runners on several
machines need their clocks in sync (NTP) to within a small part of the lease.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from truthset.config import Settings
from truthset.domain import JobStatus, Principal, Role
from truthset.errors import Conflict, Forbidden, InvalidInput, NotFound, TruthsetError
from truthset.services.policy import Action, allowed
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

# A generator of its own: jitter must not move the global random state (tests seed and watch it).
_jitter = random.Random()

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "Backoff",
    "JobCanceled",
    "JobContext",
    "JobFailed",
    "JobInterrupted",
    "JobLost",
    "RetryLater",
    "cancel",
    "claim",
    "enqueue",
    "fail",
    "get_job",
    "heartbeat",
    "list_jobs",
    "progress",
    "release",
    "succeed",
]

DEFAULT_LEASE_SECONDS = 60
#: A handler's progress and heartbeat calls write at most this often (the rest only check for a cancel).
PROGRESS_WRITE_SECONDS = 0.5
FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
# word for word the WHERE of the partial index uq_jobs_waiting_key: SQLite matches ON CONFLICT's by text
_WAITING_KEY = text("status = 'queued' AND dedupe_key IS NOT NULL")
_KEY_SEPARATOR = ":"
_MAX_ERROR_CHARS = 4000


# --- what a handler sees ---------------------------------------------------------------------------


class JobCanceled(Exception):
    """Raised in a handler by :class:`JobContext` once the job was canceled: stop, the job stays canceled."""


class JobLost(JobCanceled):
    """The job's lease ran out and another runner took it over: stop, that runner finishes it."""


class JobInterrupted(Exception):
    """The runner is shutting down: stop, the job goes back to the queue for another runner at once."""


class JobFailed(Exception):
    """Raised by a handler for a failure that a retry cannot fix (bad payload): the job fails at once.

    ``result``: what the failed job keeps as its result (e.g. an import's report of its bad lines).
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class RetryLater(Exception):
    """Raised by a handler that keeps its own retry schedule (webhook deliveries): the job is queued
    again after ``delay_seconds`` instead of the runner's backoff, while it has attempts left."""

    def __init__(self, message: str, delay_seconds: float) -> None:
        super().__init__(message)
        self.delay_seconds = max(0.0, float(delay_seconds))


@dataclass
class JobContext:
    """What a handler gets beside the database: the job, and calls that keep it alive and report progress.

    A handler calls :meth:`progress` (or :meth:`heartbeat`) between steps. Each call renews the lease
    and raises :class:`JobCanceled` once the job was canceled, :class:`JobLost` if another runner took
    it over, and :class:`JobInterrupted` when the runner is stopping; :meth:`check` raises the same
    without touching the database. The runner also renews the lease in the background, so a long
    single step does not lose the job; but only these calls stop a canceled handler.

    Calls closer together than ``write_interval`` seconds only check: a handler may report progress
    per row without a database write per row. The last progress reported is written when the job
    ends (:meth:`last_progress`).
    """

    db: Database
    job: dict[str, Any]
    runner_id: str
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    stopping: threading.Event = field(default_factory=threading.Event)
    write_interval: float = PROGRESS_WRITE_SECONDS
    settings: Settings | None = None  # the runner's settings (None: handlers read the environment's)
    _canceled: type[JobCanceled] | None = None
    _written_at: float = -1e9
    _progress: tuple[int, int | None] | None = None

    @property
    def id(self) -> str:
        return str(self.job["id"])

    @property
    def payload(self) -> dict[str, Any]:
        return dict(self.job["payload"])

    @property
    def organization_id(self) -> str:
        return str(self.job["organization_id"])

    @property
    def attempt(self) -> int:
        """1 on the first run, 2 on the first retry or after a crashed runner, and so on."""
        return int(self.job["attempts"])

    def check(self) -> None:
        """Raise if the job was canceled or lost (as last seen) or the runner is stopping."""
        if self._canceled is not None:
            raise self._canceled(f"job {self.id} was {'canceled' if self._canceled is JobCanceled else 'lost'}")
        if self.stopping.is_set():
            raise JobInterrupted(f"the runner is stopping: job {self.id} goes back to the queue")

    def heartbeat(self) -> None:
        """Renew the lease; raise if the job was canceled or lost or the runner is stopping."""
        if self._due():
            self._renewed(heartbeat(self.db, self.id, self.runner_id, self.lease_seconds))
        self.check()

    def progress(self, done: int, total: int | None = None) -> None:
        """Record progress (visible through the API) and renew the lease; raise as :meth:`heartbeat` does."""
        self._progress = (done, total if total is not None else (self._progress or (0, None))[1])
        if self._due() or (total is not None and done >= total):
            lease = self.lease_seconds
            self._renewed(progress(self.db, self.id, self.runner_id, done, total, lease_seconds=lease))
        self.check()

    def last_progress(self) -> tuple[int, int | None] | None:
        """The last progress the handler reported (written with the job's outcome)."""
        return self._progress

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._written_at < self.write_interval:
            return False
        self._written_at = now
        return True

    def _renewed(self, status: JobStatus | None) -> None:
        if status is JobStatus.CANCELED:
            self._canceled = JobCanceled
        elif status is not JobStatus.RUNNING:
            self._canceled = JobLost


# --- enqueue (in the caller's transaction) ---------------------------------------------------------


def enqueue(
    conn: Connection,
    organization_id: str,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    run_after: datetime | None = None,
    created_by: str | None = None,
    max_attempts: int = 5,
) -> dict[str, Any]:
    """Add a job in the caller's transaction (commit or roll back with it); returns the job row.

    With ``dedupe_key``, and a job of the organization with that key still queued, that job is
    returned instead of a new one (e.g. one waiting refit per project, however many submits ask for
    it). The partial unique index ``uq_jobs_waiting_key`` settles two transactions racing to add
    the same key: ``ON CONFLICT DO NOTHING`` waits for the other, then this one finds its job.
    """
    if not 1 <= len(kind) <= 40:
        raise InvalidInput("a job kind has 1 to 40 characters", details={"field": "kind"})
    if not 1 <= max_attempts <= 100:
        raise InvalidInput("max_attempts must be between 1 and 100", details={"field": "max_attempts"})
    now = utcnow()
    stored_key = _stored_key(organization_id, dedupe_key)
    row = {
        "id": new_id(),
        "organization_id": organization_id,
        "kind": kind,
        "dedupe_key": stored_key,
        "payload": payload,
        "status": str(JobStatus.QUEUED),
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": run_after or now,
        "locked_by": None,
        "locked_until": None,
        "progress_done": 0,
        "progress_total": None,
        "error": None,
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
        "finished_at": None,
    }
    if stored_key is None:
        # prepared (storage/prepared.py): webhook deliveries are enqueued on the submit path, where
        # building and compiling an INSERT per call cost several times what SQLite takes to run it
        repo.add(conn, t.jobs, row)
        return {**row, "result": None}
    for _ in range(3):  # the queued job we clashed with may be claimed before we read it: insert again
        if conn.execute(_insert_unless_waiting(conn, row)).first() is not None:
            return {**row, "result": None}
        waiting = conn.execute(select(t.jobs).where(t.jobs.c.dedupe_key == stored_key, _WAITING_KEY)).mappings().first()
        if waiting is not None:
            return dict(waiting)
    raise Conflict(f"could not enqueue job {kind!r} with dedupe key {dedupe_key!r}: it kept changing; try again")


def reschedule_waiting(conn: Connection, job_id: str, payload: dict[str, Any], run_after: datetime) -> bool:
    """Give a job that still waits (queued) a new payload and due time, in the caller's transaction.

    False when a runner claimed it meanwhile (it runs with what it had; queue another). On
    PostgreSQL the update waits for a claim in flight and then sees the job no longer queued.
    """
    moved = conn.execute(
        update(t.jobs)
        .where(t.jobs.c.id == job_id, t.jobs.c.status == str(JobStatus.QUEUED))
        .values(payload=payload, run_after=run_after, updated_at=utcnow())
    )
    return moved.rowcount == 1


def _stored_key(organization_id: str, dedupe_key: str | None) -> str | None:
    """Keys are per organization: two tenants using the same key never share (or see) a job."""
    if dedupe_key is None:
        return None
    if not 1 <= len(dedupe_key) <= 170:
        raise InvalidInput("dedupe_key must have 1 to 170 characters", details={"field": "dedupe_key"})
    return f"{organization_id}{_KEY_SEPARATOR}{dedupe_key}"


def _insert_unless_waiting(conn: Connection, row: dict[str, Any]) -> Any:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return (
        insert(t.jobs)
        .values(row)
        .on_conflict_do_nothing(index_elements=[t.jobs.c.dedupe_key], index_where=_WAITING_KEY)
        .returning(t.jobs.c.id)
    )


# --- claiming and running (the runner's side) -------------------------------------------------------


def _claimable(kinds: Sequence[str], now: datetime) -> Any:
    """Queued and due, or running on a lease that ran out (its runner is gone: resume it)."""
    return and_(
        t.jobs.c.kind.in_(list(kinds)),
        or_(
            and_(t.jobs.c.status == str(JobStatus.QUEUED), t.jobs.c.run_after <= now),
            and_(t.jobs.c.status == str(JobStatus.RUNNING), t.jobs.c.locked_until < now),
        ),
    )


def claim(
    db: Database,
    runner_id: str,
    kinds: Sequence[str],
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    *,
    now: datetime | None = None,
    look_first: bool = True,
) -> dict[str, Any] | None:
    """Take the oldest due job of one of ``kinds`` for ``runner_id``, leased for ``lease_seconds``.

    One statement: PostgreSQL locks the chosen row with SKIP LOCKED, so concurrent runners take
    different jobs; SQLite's writers are serialised (BEGIN IMMEDIATE). A job taken again after its
    lease ran out counts one more attempt; past ``max_attempts`` it fails instead of running again
    (a job that kills its runner every time must not loop for ever). Returns the job, or None.

    ``look_first``: first look for a due job with a read, so that an idle runner's poll never
    takes SQLite's write lock (a runner that has just finished a job skips it: more are likely).
    """
    if not kinds:
        return None
    now = now or utcnow()
    if look_first:
        with db.read() as conn:
            if conn.execute(select(t.jobs.c.id).where(_claimable(kinds, now)).limit(1)).first() is None:
                return None
    # A claim lost to a power cut is harmless (the runner is gone too, the job is taken again)
    with db.write(durable=False) as conn:
        while True:
            chosen = (
                select(t.jobs.c.id)
                .where(_claimable(kinds, now))
                .order_by(t.jobs.c.run_after, t.jobs.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            statement = (
                update(t.jobs)
                .where(t.jobs.c.id == chosen)
                .values(
                    status=str(JobStatus.RUNNING),
                    attempts=t.jobs.c.attempts + 1,
                    locked_by=runner_id,
                    locked_until=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
                .returning(*t.jobs.c)
            )
            job = conn.execute(statement).mappings().first()
            if job is None:
                return None
            if job["attempts"] <= job["max_attempts"]:
                return dict(job)
            _finish(conn, job["id"], JobStatus.FAILED, now, error=_gave_up(job))


def _gave_up(job: Any) -> str:
    previous = f" (last error: {job['error']})" if job["error"] else ""
    return f"gave up after {job['max_attempts']} attempts: its runner was lost (lease ran out){previous}"


def _mine(job_id: str, runner_id: str) -> Any:
    return and_(t.jobs.c.id == job_id, t.jobs.c.locked_by == runner_id, t.jobs.c.status == str(JobStatus.RUNNING))


def _renew(db: Database, job_id: str, runner_id: str, lease_seconds: float, extra: dict[str, Any]) -> JobStatus | None:
    """Renew the runner's lease (with ``extra`` columns); the job's status now (None: it is gone)."""
    now = utcnow()
    values = {"locked_until": now + timedelta(seconds=lease_seconds), "updated_at": now, **extra}
    with db.write(durable=False) as conn:  # progress lost to a power cut is only shown again later
        if conn.execute(update(t.jobs).where(_mine(job_id, runner_id)).values(values)).rowcount:
            return JobStatus.RUNNING
        status = conn.execute(select(t.jobs.c.status).where(t.jobs.c.id == job_id)).scalar()
    # canceled: stop. Anything else (queued again, finished, running under another runner): lost.
    return JobStatus.CANCELED if status == str(JobStatus.CANCELED) else None


def heartbeat(
    db: Database, job_id: str, runner_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS
) -> JobStatus | None:
    """Extend the runner's lease on a job. Returns RUNNING, CANCELED (stop), or None (lost: stop)."""
    return _renew(db, job_id, runner_id, lease_seconds, {})


def progress(
    db: Database,
    job_id: str,
    runner_id: str,
    done: int,
    total: int | None = None,
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> JobStatus | None:
    """Record ``done`` of ``total`` units (and renew the lease); returns as :func:`heartbeat`."""
    extra: dict[str, Any] = {"progress_done": max(0, int(done))}
    if total is not None:
        extra["progress_total"] = max(0, int(total))
    return _renew(db, job_id, runner_id, lease_seconds, extra)


def succeed(
    db: Database,
    job_id: str,
    runner_id: str,
    result: Any = None,
    *,
    last_progress: tuple[int, int | None] | None = None,
) -> bool:
    """The job is done; ``result`` (JSON) is kept on it, with the handler's ``last_progress`` (done,
    total) if given. False if it was canceled or lost meanwhile (then nothing is kept)."""
    now = utcnow()
    with db.write() as conn:
        values: dict[str, Any] = {"status": str(JobStatus.SUCCEEDED), "result": result, "error": None}
        if last_progress is not None:
            values["progress_done"] = max(0, int(last_progress[0]))
            if last_progress[1] is not None:
                values["progress_total"] = max(0, int(last_progress[1]))
        return bool(conn.execute(update(t.jobs).where(_mine(job_id, runner_id)).values(_ended(values, now))).rowcount)


@dataclass(frozen=True)
class Backoff:
    """Delay before retry ``n`` (1 = the first): ``base * 2**(n-1)``, at most ``cap``, times a jitter
    in [0.5, 1] so that jobs that failed together do not all come back together."""

    base: float = 10.0
    cap: float = 3600.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * 2 ** max(0, attempt - 1)) * _jitter.uniform(0.5, 1.0)


def fail(
    db: Database,
    job_id: str,
    runner_id: str,
    error: str,
    *,
    retry: bool = True,
    backoff: Backoff | None = None,
    now: datetime | None = None,
    result: Any = None,
    delay: float | None = None,
) -> JobStatus | None:
    """A run failed. The job is queued again after a backoff (or after ``delay`` seconds, when the
    handler chose it) while it has attempts left (and ``retry``), else it fails for good. Returns
    the new status (None if it was canceled or lost).

    A job with a dedupe key is not queued again when another job with its key is already waiting:
    that one does the same work, so this one fails, saying so. ``result`` is kept on a job that
    fails for good (None keeps none).
    """
    now = now or utcnow()
    error = error[-_MAX_ERROR_CHARS:]
    with db.write() as conn:
        job = _lock_mine(conn, job_id, runner_id)
        if job is None:
            return None
        if retry and job["attempts"] < job["max_attempts"]:
            wait = (backoff or Backoff()).delay(job["attempts"]) if delay is None else delay
            run_after = now + timedelta(seconds=wait)
            values = {"status": str(JobStatus.QUEUED), "run_after": run_after, "error": error}
            if _requeue(conn, job, values, now):
                return JobStatus.QUEUED
            error += " (not retried: a job with the same dedupe key is already queued)"
        _finish(conn, job_id, JobStatus.FAILED, now, error=error, result=result)
        return JobStatus.FAILED


def release(db: Database, job_id: str, runner_id: str) -> bool:
    """Give a job back to the queue at once, not counting the attempt (its runner is stopping)."""
    now = utcnow()
    with db.write() as conn:
        job = _lock_mine(conn, job_id, runner_id)
        if job is None:
            return False
        values = {"status": str(JobStatus.QUEUED), "run_after": now, "attempts": job["attempts"] - 1}
        if _requeue(conn, job, values, now):
            return True
        _finish(conn, job_id, JobStatus.CANCELED, now, error="superseded: a job with the same dedupe key is queued")
        return True


def _lock_mine(conn: Connection, job_id: str, runner_id: str) -> dict[str, Any] | None:
    """The runner's running job, locked (PostgreSQL) so that a cancel cannot slip in before the update."""
    job = conn.execute(select(t.jobs).where(_mine(job_id, runner_id)).with_for_update()).mappings().first()
    return dict(job) if job is not None else None


def _requeue(conn: Connection, job: Any, values: dict[str, Any], now: datetime) -> bool:
    """Queue a running job again; False when a job with its dedupe key already waits."""
    values = {**values, "locked_by": None, "locked_until": None, "updated_at": now}
    try:
        with conn.begin_nested():  # a clash on PostgreSQL must not spoil the whole transaction
            conn.execute(update(t.jobs).where(t.jobs.c.id == job["id"]).values(values))
    except IntegrityError:
        return False
    return True


def _ended(values: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**values, "locked_by": None, "locked_until": None, "updated_at": now, "finished_at": now}


def _finish(
    conn: Connection, job_id: str, status: JobStatus, now: datetime, *, error: str | None = None, result: Any = None
) -> None:
    values = _ended({"status": str(status), "error": error}, now)
    if result is not None:
        values["result"] = result
    conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(values))


def acknowledge_cancel(db: Database, job_id: str, runner_id: str) -> None:
    """The runner has stopped a canceled job's handler: the job no longer names it."""
    with db.write() as conn:
        mine = and_(t.jobs.c.id == job_id, t.jobs.c.locked_by == runner_id)
        conn.execute(update(t.jobs).where(mine).values(locked_by=None, locked_until=None))


def error_text(exc: BaseException) -> str:
    """How a handler's exception is recorded on the job: its class and message."""
    if isinstance(exc, TruthsetError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


# --- reading and canceling (the API's side) -------------------------------------------------------


def _load(conn: Connection, principal: Principal, job_id: str, *, lock: bool = False) -> dict[str, Any]:
    job = repo.get(conn, t.jobs, principal.organization_id, job_id, lock=lock)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def _acts_on(principal: Principal, action: Action, job: dict[str, Any]) -> bool:
    """Managers and up act on every job of the organization; anyone on the jobs they started."""
    return allowed(principal, action) or job["created_by"] == principal.member_id


def _require_job(principal: Principal, action: Action, job: dict[str, Any]) -> None:
    if not _acts_on(principal, action, job):
        raise Forbidden(f"the {principal.role} role may not {action.replace('_', ' ')} started by others")


def may_cancel(principal: Principal, job: dict[str, Any]) -> bool:
    """Whether :func:`cancel` would stop ``job`` for ``principal`` (a page shows Cancel only then)."""
    return JobStatus(job["status"]) not in FINISHED and _acts_on(principal, Action.MANAGE_JOBS, job)


def started_by(db: Database, context: JobContext, action: Action, what: str) -> Principal:
    """Whoever started the job, as they are now (today's role, with their worker): a job runs with
    its starter's rights, so a member since disabled, or whose role no longer allows ``action``,
    gets nothing done; the job fails, saying so (``what`` names the job in the message)."""
    member_id = context.job.get("created_by")
    with db.read() as conn:
        member = repo.get(conn, t.members, context.organization_id, member_id) if member_id else None
        worker = repo.worker_for_member(conn, context.organization_id, member_id) if member else None
    if member is None or member["disabled_at"] is not None:
        raise JobFailed(f"the member who started this {what} is gone or disabled")
    principal = Principal(context.organization_id, member["id"], Role(member["role"]), worker["id"] if worker else "")
    if not allowed(principal, action):
        raise JobFailed(f"the member who started this {what} may no longer do it (their role is now {member['role']})")
    return principal


def public(job: dict[str, Any]) -> dict[str, Any]:
    """A job as the API shows it: the dedupe key as given (without its organization), progress together."""
    done = {"done": job["progress_done"], "total": job["progress_total"]}
    return {**job, "dedupe_key": stored_key(job), "progress": done}


def get_job(db: Database, principal: Principal, job_id: str) -> dict[str, Any]:
    with db.read() as conn:
        job = _load(conn, principal, job_id)
    _require_job(principal, Action.READ_JOBS, job)
    return public(job)


def list_jobs(
    db: Database,
    principal: Principal,
    *,
    kind: str | None = None,
    status: JobStatus | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """The organization's jobs, newest first (a member below manager sees the ones they started)."""
    query = repo.scoped(t.jobs, principal.organization_id)
    if not allowed(principal, Action.READ_JOBS):
        query = query.where(t.jobs.c.created_by == principal.member_id)
    if kind is not None:
        query = query.where(t.jobs.c.kind == kind)
    if status is not None:
        query = query.where(t.jobs.c.status == str(status))
    with db.read() as conn:
        rows, next_cursor = repo.page(conn, query, t.jobs, cursor=cursor, limit=limit, descending=True)
    return [public(job) for job in rows], next_cursor


def cancel(db: Database, principal: Principal, job_id: str) -> dict[str, Any]:
    """Cancel a job: a queued one never runs; a running one stops at its handler's next progress or
    heartbeat call. Canceling a canceled job changes nothing; a finished one is a conflict."""
    now = utcnow()
    with db.write() as conn:
        job = _load(conn, principal, job_id, lock=True)
        _require_job(principal, Action.MANAGE_JOBS, job)
        status = JobStatus(job["status"])
        if status is JobStatus.CANCELED:
            return public(job)
        if status in FINISHED:
            raise Conflict(f"job {job_id} has already {status}", details={"status": str(status)}, code="job_finished")
        # a running job keeps its runner's name until the runner has seen the cancel and stopped
        values = {"status": str(JobStatus.CANCELED), "updated_at": now, "finished_at": now}
        if status is JobStatus.QUEUED:
            values.update(locked_by=None, locked_until=None)
        conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(values))
        return public({**job, **values})


def stored_key(job: dict[str, Any]) -> str | None:
    """The dedupe key as the caller gave it (without the organization it is stored under)."""
    key = job.get("dedupe_key")
    return key.split(_KEY_SEPARATOR, 1)[1] if key else None

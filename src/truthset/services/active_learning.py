"""Active learning: the queue serves first the tasks where one more human judgment helps most.

With the policy's ``ordering: "uncertainty"`` or ``"model_uncertainty"`` each pending task gets a
``queue_rank`` and the queue serves priority (highest first), then rank (lowest first), then id
(docs/quality.md, "Queue order"). With the default ``ordering: "priority"`` every rank is 0 and the
queue is what it always was: priority, then oldest.

Ranks change only in a re-rank (:func:`rerank_project`), never per submit: the lease's per-worker
frontier (services/queue.py) assumes the order of tasks holds within a queue epoch, so every chunk
of new ranks bumps the project's ``queue_epoch`` in its own transaction. A re-rank runs as a job
(``queue.rerank``) after a refit, after predictions are stored, after the policy changes, and on
demand (``POST /projects/{id}/queue/rerank``).

The value of one more judgment (:func:`order`), in rank order:

1. Tasks people have started (a human response, still pending): most uncertain posterior first.
   They come before every untouched task, so started work gets finished: a half-judged task holds
   judgments already paid for, which count for nothing until it completes.
2. Tasks added since the last re-rank keep rank 0: untouched, no prediction seen, so maximally
   uncertain, after started tasks and before the ranked untouched ones.
3. Untouched tasks: under "model_uncertainty", by the uncertainty of their best model's prediction
   (1 - its score), a task without a prediction counting as maximally uncertain; under
   "uncertainty", oldest first (rank 0, as new tasks).

Within each run of equally uncertain tasks (a bucket of ``BUCKET`` in uncertainty) the tasks are
interleaved by predicted class, round-robin: the diversity guard, so the top of the queue is not one
region of the data (the classes one model confuses most), which would teach the next model little.

Why two orderings: ranking untouched tasks by a model that learns from the project's results skews
what it learns from (people label the tasks it is unsure of, which complete less confidently, so
fewer become training labels): in benchmarks/models it cost 0.5 to 1.5 points of accuracy and twice
the human judgments on every seed, while steps 1 and 2 alone were level with priority order.
"model_uncertainty" is for a model that does not learn from the project (predictions uploaded from
elsewhere): there, people go where it is unsure.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, or_, select, update

from truthset.domain import Principal, TaskStatus
from truthset.errors import InvalidInput, NotFound
from truthset.quality import WorkerModel
from truthset.questions import CompiledSpec
from truthset.services import gold, jobs
from truthset.services.completion import completion_rules
from truthset.services.pacing import Pacer
from truthset.services.policy import Action, require
from truthset.services.projects import compiled_spec, load_project
from truthset.services.results import build_result, current_models, reliability
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

#: The job kind that runs :func:`rerank_project` (jobs/handlers.py).
JOB_KIND = "queue.rerank"
#: Tasks whose rank is written per transaction: short (tens of milliseconds of the SQLite writer), so
#: the annotation loop takes turns with it.
WRITE_CHUNK = 1_000
#: Tasks whose uncertainties differ by less than this count as equally uncertain (diversity guard).
BUCKET = 0.05
#: How long an automatic re-rank (after predictions or a refit) waits before it runs: the asks of a
#: burst (the chunks of an upload, the refits of a busy hour) meet one waiting job and make one
#: re-rank. A re-rank asked for on demand, or by a policy change, runs at once.
AUTO_DELAY_SECONDS = 30.0
#: Started tasks whose posterior is computed from their responses per read (no stored confidence).
POSTERIOR_CHUNK = 500
_ID = re.compile(r"[0-9a-f]{24}")
#: The most task ids :func:`queue_order` returns (the benchmark takes "the first N" of a whole set).
MAX_ORDER_LIMIT = 1_000_000


# --- pure: the order ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    """What the order of one pending task is decided from.

    ``started``: it has a human response. ``uncertainty``: in [0, 1], 1 - the confidence of its
    posterior (started) or of its best model's prediction (untouched; 1 without one). ``label``: the
    predicted class (the posterior's or the model's answer to the first deciding question), for the
    diversity guard; None when nothing predicts one.
    """

    task_id: str
    started: bool
    uncertainty: float
    label: str | None = None


def uncertainty(confidence: float | None) -> float:
    """1 - confidence, within [0, 1]; an unknown confidence is maximal uncertainty."""
    if confidence is None or not math.isfinite(confidence):
        return 1.0
    return min(1.0, max(0.0, 1.0 - float(confidence)))


def _bucket(value: float) -> int:
    # rounded first, so 1 - 0.95 and 0.05 fall in the same bucket despite floating point
    return math.floor(round(value / BUCKET, 6))


def interleave(signals: Sequence[Signal]) -> list[Signal]:
    """Round-robin over predicted classes, each class in the given order: the diversity guard.

    Classes take turns in the order of their first task, so the most uncertain task still comes
    first; a class that runs out drops out of the turns.
    """
    by_label: dict[str | None, list[Signal]] = {}
    for signal in signals:
        by_label.setdefault(signal.label, []).append(signal)
    queues = list(by_label.values())
    out: list[Signal] = []
    for turn in range(max((len(q) for q in queues), default=0)):
        out.extend(q[turn] for q in queues if turn < len(q))
    return out


def order(signals: Iterable[Signal]) -> list[Signal]:
    """The pending tasks in the order the queue should serve them (see the module's docstring)."""
    ranked = sorted(signals, key=lambda s: (not s.started, -_bucket(s.uncertainty), -s.uncertainty, s.task_id))
    out: list[Signal] = []
    run: list[Signal] = []
    for signal in ranked:
        if run and (run[0].started, _bucket(run[0].uncertainty)) != (signal.started, _bucket(signal.uncertainty)):
            out.extend(interleave(run))
            run = []
        run.append(signal)
    out.extend(interleave(run))
    return out


def ranks(ordered: Sequence[Signal], *, rank_untouched: bool = True) -> dict[str, int]:
    """Each task's ``queue_rank``: started tasks -n..-1, untouched ones 1..m, in ``ordered``'s order.

    0 is left free for tasks added after the re-rank (see the module's docstring, rule 2), so they
    need no re-rank to take their place. Without ``rank_untouched`` ("uncertainty": untouched tasks
    oldest first) every untouched task gets 0, beside the new ones: the queue's last key, the id,
    is creation order, and a re-rank writes only the started tasks' ranks.
    """
    started = sum(1 for s in ordered if s.started)
    out = {}
    for position, signal in enumerate(ordered):
        if position < started:
            out[signal.task_id] = position - started
        else:
            out[signal.task_id] = position - started + 1 if rank_untouched else 0
    return out


# --- reading what the order is decided from --------------------------------------------------------


def _label_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _deciding(project: Mapping[str, Any], spec: CompiledSpec) -> list[str]:
    rules = completion_rules(project)
    return [q.name for q in spec.questions if rules.questions[q.name].deciding]


def _pending(conn: Connection, project: Mapping[str, Any]) -> list[dict[str, Any]]:
    tk = t.tasks
    query = repo.scoped(
        tk, project["organization_id"], tk.c.id, tk.c.response_count, tk.c.confidence, tk.c.queue_rank
    ).where(tk.c.project_id == project["id"], tk.c.status == str(TaskStatus.PENDING))
    return [dict(row) for row in conn.execute(query).mappings()]


def _model_preference(
    conn: Connection, project: Mapping[str, Any], models: Mapping[str, WorkerModel], question: str | None
) -> Callable[[str], tuple[float, int]]:
    """A sort key of model workers, best first: the most reliable (as earned under the fitted worker
    model of the first deciding question), then the newest (a later version of a model)."""
    model = models.get(question) if question else None
    order_of: dict[str, int] = {}

    def key(worker_id: str) -> tuple[float, int]:
        earned = reliability(model, worker_id)
        return (-1.0 if earned is None else -earned, -order_of.get(worker_id, 0))

    w = t.workers
    query = repo.scoped(w, project["organization_id"], w.c.id).where(w.c.kind == "model").order_by(w.c.created_at)
    for position, worker_id in enumerate(conn.execute(query).scalars()):
        order_of[worker_id] = position
    return key


def _model_signals(
    conn: Connection,
    project: Mapping[str, Any],
    deciding: Sequence[str],
    models: Mapping[str, WorkerModel],
    untouched: set[str],
) -> dict[str, tuple[float, str | None]]:
    """Per untouched task with a prediction: (uncertainty, predicted class) from its best model.

    The uncertainty of a prediction is that of its weakest deciding question (1 - its score), as a
    task's confidence is its weakest deciding question's. Models paused by gold are left out.
    """
    r = t.responses
    query = repo.scoped(r, project["organization_id"], r.c.task_id, r.c.worker_id, r.c.answer, r.c.scores).where(
        r.c.project_id == project["id"], r.c.scores.is_not(None)
    )
    paused = gold.paused_workers(conn, project)
    prefer = _model_preference(conn, project, models, deciding[0] if deciding else None)
    best: dict[str, tuple[tuple[float, int], float, str | None]] = {}
    for row in conn.execute(query):
        if row.task_id not in untouched or row.worker_id in paused:
            continue
        scores, answer = row.scores or {}, row.answer or {}
        asked = [name for name in deciding if name in scores] or list(scores)
        if not asked:
            continue
        value = max(uncertainty(_score(scores[name])) for name in asked)
        rank = prefer(row.worker_id)
        if row.task_id not in best or rank < best[row.task_id][0]:
            best[row.task_id] = (rank, value, _label_text(answer.get(asked[0])))
    return {task_id: (value, label) for task_id, (_rank, value, label) in best.items()}


def _score(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _started_signals(
    db: Database,
    project: dict[str, Any],
    spec: CompiledSpec,
    deciding: Sequence[str],
    started: Sequence[dict[str, Any]],
) -> dict[str, tuple[float, str | None]]:
    """Per started task: (uncertainty of its posterior, its current answer).

    A task asked for one more judgment stores its result and confidence; one still short of its
    overlap has none yet, so its posterior is computed here from its responses with the current
    worker models, exactly as its result will be.
    """
    out: dict[str, tuple[float, str | None]] = {}
    stored = [task["id"] for task in started if task["confidence"] is not None]
    to_score = [task["id"] for task in started if task["confidence"] is None]
    first = deciding[0] if deciding else None
    rules = completion_rules(project)
    for start in range(0, len(stored), POSTERIOR_CHUNK):
        ids = stored[start : start + POSTERIOR_CHUNK]
        with db.read() as conn:
            query = select(t.tasks.c.id, t.tasks.c.confidence, t.tasks.c.result).where(t.tasks.c.id.in_(ids))
            for row in conn.execute(query):
                answer = (row.result or {}).get("answer") or {}
                out[row.id] = (uncertainty(row.confidence), _label_text(answer.get(first)) if first else None)
    for start in range(0, len(to_score), POSTERIOR_CHUNK):
        ids = to_score[start : start + POSTERIOR_CHUNK]
        with db.read() as conn:
            models, versions = current_models(conn, project, spec)
            responses = repo.responses_of_tasks(conn, project["organization_id"], ids)
        for task_id in ids:
            result, confidence = build_result(spec, rules, responses.get(task_id, []), models, versions)
            out[task_id] = (uncertainty(confidence), _label_text(result["answer"].get(first)) if first else None)
    return out


def signals(db: Database, project: dict[str, Any]) -> tuple[list[Signal], dict[str, int]]:
    """The signals of a project's pending tasks, and each one's current rank."""
    spec = compiled_spec(project)
    deciding = _deciding(project, spec)
    predicted: dict[str, tuple[float, str | None]] = {}  # "uncertainty": untouched tasks, oldest first
    with db.read() as conn:
        pending = _pending(conn, project)
        if ordering(project) == "model_uncertainty":
            models, _versions = current_models(conn, project, spec)
            untouched = {task["id"] for task in pending if not task["response_count"]}
            predicted = _model_signals(conn, project, deciding, models, untouched)
    started = _started_signals(db, project, spec, deciding, [task for task in pending if task["response_count"]])
    out = []
    for task in pending:
        value, label = (started if task["response_count"] else predicted).get(task["id"], (1.0, None))
        out.append(Signal(task["id"], bool(task["response_count"]), value, label))
    return out, {task["id"]: task["queue_rank"] or 0 for task in pending}


# --- writing ranks ---------------------------------------------------------------------------------


_SET_RANK = (
    update(t.tasks)
    .where(t.tasks.c.id == bindparam("b_id"), t.tasks.c.status == bindparam("b_status"))
    .values(queue_rank=bindparam("b_rank"))
)
_RESET_RANK = update(t.tasks).where(t.tasks.c.id == bindparam("b_id")).values(queue_rank=0)


def _write_ranks(db: Database, project_id: str, changes: list[tuple[str, int]], pending_only: bool) -> None:
    """One short transaction: new ranks for a chunk of tasks, and a new queue epoch.

    Only tasks still pending are ranked (one completed since the read keeps its rank: it is out of
    the queue). The epoch moves on in the same transaction: a worker's frontier from before may now
    lie past a task moved ahead of it (services/queue.py). Rows in id order: the lock order. Without
    an fsync of its own, like a lease: ranks lost to a power cut go with their epoch bump, leaving
    the queue in its previous order (a later durable commit, or the next re-rank, covers them).
    """
    changes = sorted(changes)
    with db.write(durable=False) as conn:
        if pending_only:
            conn.execute(_SET_RANK, [{"b_id": i, "b_rank": r, "b_status": str(TaskStatus.PENDING)} for i, r in changes])
        else:
            conn.execute(_RESET_RANK, [{"b_id": i} for i, _rank in changes])
        repo.bump_queue_epoch(conn, project_id)  # last: on PostgreSQL it holds the project row until the commit


def _write_all(db: Database, project_id: str, changes: list[tuple[str, int]], *, pending_only: bool) -> None:
    """Chunks of :func:`_write_ranks`, each run by the writer behind the annotation loop's calls
    (``hot=False``); the pacer pauses between them while annotators work."""
    pacer = Pacer(db)
    for start in range(0, len(changes), WRITE_CHUNK):
        chunk = changes[start : start + WRITE_CHUNK]
        with pacer.step(time.perf_counter):
            db.submit(_write_ranks, db, project_id, chunk, pending_only, hot=False).result()


def _ranked_tasks(db: Database, project: Mapping[str, Any]) -> list[str]:
    """Tasks of the project whose rank is not 0 (any status): what going back to "priority" resets."""
    tk = t.tasks
    query = repo.scoped(tk, project["organization_id"], tk.c.id).where(
        tk.c.project_id == project["id"], tk.c.queue_rank != 0
    )
    with db.read() as conn:
        return list(conn.execute(query).scalars())


#: The orderings that rank tasks (every other, i.e. "priority", keeps every rank at 0).
RANKED_ORDERINGS = frozenset({"uncertainty", "model_uncertainty"})


def ordering(project: Mapping[str, Any]) -> str:
    """The project's queue ordering: "priority" (the default), "uncertainty" or "model_uncertainty"."""
    return completion_rules(project).policy.ordering


def ranks_tasks(project: Mapping[str, Any]) -> bool:
    """Whether the project's ordering ranks its pending tasks (a re-rank has work to do)."""
    return ordering(project) in RANKED_ORDERINGS


def rerank_project(db: Database, organization_id: str, project_id: str) -> dict[str, Any]:
    """Re-rank a project's pending tasks (the ``queue.rerank`` job's work); returns counts.

    Under "uncertainty" and "model_uncertainty": read every pending task's signal, order them
    (:func:`order`) and write the ranks that changed. Under "priority": set every rank back to 0, so
    the queue is oldest first again. Reads outside the writer, writes in short transactions.
    """
    started = time.perf_counter()
    with db.read() as conn:
        project = repo.get(conn, t.projects, organization_id, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    mode = ordering(project)
    if mode in RANKED_ORDERINGS:
        found, current = signals(db, project)
        new = ranks(order(found), rank_untouched=mode == "model_uncertainty")
        changes = [(task_id, rank) for task_id, rank in new.items() if current.get(task_id) != rank]
        _write_all(db, project_id, changes, pending_only=True)
        ranked = len(new)
    else:
        changes = [(task_id, 0) for task_id in _ranked_tasks(db, project)]
        _write_all(db, project_id, changes, pending_only=False)
        ranked = 0
    return {
        "project_id": project_id,
        "ordering": mode,
        "ranked": ranked,
        "changed": len(changes),
        "seconds": round(time.perf_counter() - started, 3),
    }


# --- hooks and the service entries -------------------------------------------------------------------


def _enqueue(
    conn: Connection, project: Mapping[str, Any], created_by: str | None = None, *, automatic: bool = False
) -> dict[str, Any]:
    """The re-rank job: an automatic one waits ``AUTO_DELAY_SECONDS`` (one waiting job absorbs the
    asks meanwhile); one asked for runs at once, under a key of its own so a waiting automatic job
    never delays it (two re-ranks of a project at once are harmless: the same ranks, each chunk
    with its epoch bump)."""
    if automatic:
        key, run_after = f"rerank:{project['id']}", utcnow() + timedelta(seconds=AUTO_DELAY_SECONDS)
    else:
        key, run_after = f"rerank-now:{project['id']}", None
    return jobs.enqueue(
        conn,
        project["organization_id"],
        JOB_KIND,
        {"project_id": project["id"]},
        dedupe_key=key,
        run_after=run_after,
        created_by=created_by,
    )


def note_change(conn: Connection, project: Mapping[str, Any]) -> None:
    """In a transaction that changed what ranks are made of (predictions, worker models): ask for a
    re-rank when the project orders by uncertainty. One waiting job absorbs repeated asks."""
    if ranks_tasks(project):
        _enqueue(conn, project, automatic=True)


def note_refit(db: Database, organization_id: str, project_id: str) -> None:
    """After a refit stored new worker models (posteriors and model reliabilities moved). A project
    ordered by priority costs a read, never a write transaction."""
    with db.read() as conn:
        project = repo.get(conn, t.projects, organization_id, project_id)
    if project is None or not ranks_tasks(project):
        return
    with db.write() as conn:
        note_change(conn, project)


def note_policy(db: Database, principal: Principal, project: Mapping[str, Any]) -> dict[str, Any] | None:
    """After a policy change: re-rank under an ordering that ranks; under "priority" only if some
    task still has a rank (coming back from one), so a project that never ordered by uncertainty
    gets no job. Returns the job, if any."""
    with db.write() as conn:
        if ranks_tasks(project) or _has_ranks(conn, project):
            return jobs.public(_enqueue(conn, project, created_by=principal.member_id))
    return None


def _has_ranks(conn: Connection, project: Mapping[str, Any]) -> bool:
    tk = t.tasks
    query = (
        repo.scoped(tk, project["organization_id"], tk.c.id)
        .where(tk.c.project_id == project["id"], tk.c.queue_rank != 0)
        .limit(1)
    )
    return conn.execute(query).first() is not None


def request_rerank(db: Database, principal: Principal, project_id: str) -> dict[str, Any]:
    """Ask for a re-rank now, as a job (managers and above); the waiting one if there is one."""
    with db.write() as conn:
        project = load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_PROJECTS)
        job = _enqueue(conn, project, created_by=principal.member_id)
    return jobs.public(job)


def rerank(db: Database, principal: Principal, project_id: str) -> dict[str, Any]:
    """Re-rank now, in the caller's thread (managers and above): for the CLI, tests and benchmarks."""
    with db.read() as conn:
        load_project(conn, principal, project_id)
        require(principal, Action.MANAGE_PROJECTS)
    return rerank_project(db, principal.organization_id, project_id)


def _waiting(organization_id: str, project_id: str, *columns: Any) -> Any:
    """The tasks still short of workers (pending, responses + live leases < overlap), in queue order."""
    tk = t.tasks
    return (
        repo.scoped(tk, organization_id, *columns)
        .where(
            tk.c.project_id == project_id,
            tk.c.status == str(TaskStatus.PENDING),
            tk.c.response_count + tk.c.lease_count < tk.c.overlap,
        )
        .order_by(*repo.QUEUE_ORDER)
    )


def queue_order(db: Database, principal: Principal, project_id: str, limit: int = 100) -> list[str]:
    """The ids of the first ``limit`` tasks in the order the lease serves them, whichever worker asks.

    The tasks still short of workers, by priority, rank and id: what a new worker would be leased,
    in turn, if nobody else worked (a given worker also passes over the tasks they already had). For
    the replay benchmark ("the first N tasks in queue order"). Readers and above.
    """
    if not 1 <= limit <= MAX_ORDER_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_ORDER_LIMIT}", details={"field": "limit"})
    with db.read() as conn:
        load_project(conn, principal, project_id)
        require(principal, Action.READ_TASKS)
        return list(conn.execute(_waiting(principal.organization_id, project_id, t.tasks.c.id).limit(limit)).scalars())


_QUEUE_COLUMNS = ("id", "unique_id", "priority", "queue_rank", "response_count", "lease_count", "overlap", "confidence")


def queue_page(
    db: Database, principal: Principal, project_id: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """One keyset page of the queue (see :func:`queue_order`): its tasks' place and progress, and the
    cursor of the next page (the last task's priority, rank and id). Readers and above."""
    tk = t.tasks
    query = _waiting(principal.organization_id, project_id, *(tk.c[name] for name in _QUEUE_COLUMNS))
    if cursor is not None:
        priority, rank, last_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                tk.c.priority < priority,
                and_(tk.c.priority == priority, tk.c.queue_rank > rank),
                and_(tk.c.priority == priority, tk.c.queue_rank == rank, tk.c.id > last_id),
            )
        )
    with db.read() as conn:
        load_project(conn, principal, project_id)
        require(principal, Action.READ_TASKS)
        rows = [dict(row) for row in conn.execute(query.limit(limit + 1)).mappings()]
    items = [{**row, "queue_rank": row["queue_rank"] or 0} for row in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return items, _encode_cursor(last) if last else None


def _encode_cursor(row: Mapping[str, Any]) -> str:
    raw = orjson.dumps([row["priority"], row["queue_rank"], row["id"]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int, str]:
    try:
        priority, rank, last_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        # within the columns' range and an id's shape: a forged cursor is a 422, never a database error
        if not all(isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31 for v in (priority, rank)):
            raise ValueError(cursor)
        if not isinstance(last_id, str) or not _ID.fullmatch(last_id):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not a next_cursor of the queue", details={"field": "query.cursor"}) from exc
    return priority, rank, last_id

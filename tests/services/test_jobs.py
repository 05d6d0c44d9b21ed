"""The job outbox and its runner, on SQLite and PostgreSQL.

Enqueue is part of the caller's transaction; dedupe keys keep one waiting job per key (and per
organization); claims are exclusive however many threads and runners ask; failures are retried
with a growing backoff until ``max_attempts``; cancel stops queued and running jobs; a job whose
runner stopped renewing its lease is resumed by another. Times are given explicitly (``now=``) or
waited for with a deadline, never slept.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text, update

from truthset.domain import JobStatus, Role
from truthset.errors import Conflict, Forbidden, NotFound
from truthset.jobs import Runner, register, unregister
from truthset.schemas import MemberUpdate
from truthset.services import accounts, jobs
from truthset.services.jobs import Backoff, JobContext, JobFailed
from truthset.services.policy import Action
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.ids import utcnow

if TYPE_CHECKING:
    from conftest import Org

DEADLINE_S = 30.0
_kind_numbers = itertools.count()


@pytest.fixture
def kind() -> Iterator[Callable[[Callable[[Database, JobContext], Any]], str]]:
    """``kind(handler)`` registers a handler under a fresh kind name for this test; returns the name."""
    names: list[str] = []

    def make(handler: Callable[[Database, JobContext], Any]) -> str:
        name = f"test.kind{next(_kind_numbers)}"
        register(name, handler)
        names.append(name)
        return name

    yield make
    for name in names:
        unregister(name)


def add_job(org: Org, kind: str, payload: dict | None = None, **options: Any) -> dict[str, Any]:
    with org.db.write() as conn:
        return jobs.enqueue(conn, org.id, kind, payload or {}, created_by=org.owner.id, **options)


def stored(db: Database, job_id: str) -> dict[str, Any]:
    with db.read() as conn:
        return dict(conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().one())


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    """Poll ``condition`` until it is truthy, failing after a deadline (not a timing assertion)."""
    deadline = time.monotonic() + DEADLINE_S
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return value


# --- enqueue ---------------------------------------------------------------------------------------


def test_a_job_enqueued_in_a_rolled_back_transaction_does_not_exist(db: Database, org: Org) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.write() as conn:
        job = jobs.enqueue(conn, org.id, "test.rollback", {"n": 1})
        raise Boom
    with pytest.raises(NotFound):
        jobs.get_job(db, org.owner.principal, job["id"])
    assert jobs.list_jobs(db, org.owner.principal) == ([], None)
    assert jobs.claim(db, "r", ["test.rollback"]) is None


def test_a_dedupe_key_keeps_one_waiting_job_per_organization(db: Database, org: Org, other_org: Org) -> None:
    first = add_job(org, "test.dedupe", {"n": 1}, dedupe_key="refit:p1")
    again = add_job(org, "test.dedupe", {"n": 2}, dedupe_key="refit:p1")
    assert again["id"] == first["id"] and again["payload"] == {"n": 1}
    theirs = add_job(other_org, "test.dedupe", {"n": 3}, dedupe_key="refit:p1")
    assert theirs["id"] != first["id"] and theirs["organization_id"] == other_org.id
    other_key = add_job(org, "test.dedupe", dedupe_key="refit:p2")
    assert other_key["id"] != first["id"]
    # once claimed, the job no longer waits: the same key makes a new job
    claimed = jobs.claim(db, "r", ["test.dedupe"])
    assert claimed is not None and claimed["id"] == first["id"]
    after = add_job(org, "test.dedupe", {"n": 4}, dedupe_key="refit:p1")
    assert after["id"] not in {first["id"], theirs["id"], other_key["id"]}
    assert jobs.get_job(db, org.owner.principal, after["id"])["dedupe_key"] == "refit:p1"


def test_two_transactions_racing_on_one_dedupe_key_share_one_job(db: Database, org: Org) -> None:
    """The second waits for the first (PostgreSQL: on the unique index; SQLite: the write lock)."""
    added: dict[str, str] = {}
    first_inserted, commit = threading.Event(), threading.Event()

    def first() -> None:
        with db.write() as conn:
            added["first"] = jobs.enqueue(conn, org.id, "test.race", {}, dedupe_key="k")["id"]
            first_inserted.set()
            assert commit.wait(DEADLINE_S)

    def second() -> None:
        with db.write() as conn:
            added["second"] = jobs.enqueue(conn, org.id, "test.race", {}, dedupe_key="k")["id"]

    one = threading.Thread(target=first)
    one.start()
    assert first_inserted.wait(DEADLINE_S)
    two = threading.Thread(target=second)
    two.start()
    commit.set()  # whether the second has reached its insert yet or not, both orders must agree
    one.join(DEADLINE_S)
    two.join(DEADLINE_S)
    assert added["first"] == added["second"]
    listed, _ = jobs.list_jobs(db, org.owner.principal)
    assert [job["id"] for job in listed] == [added["first"]]


# --- claiming --------------------------------------------------------------------------------------


def test_claims_are_exclusive_across_threads(db: Database, org: Org) -> None:
    ids = {add_job(org, "test.claim", {"i": i})["id"] for i in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer(n: int) -> None:
        start.wait(DEADLINE_S)
        while (job := jobs.claim(db, f"runner-{n}", ["test.claim"])) is not None:
            with lock:
                claimed.append(job["id"])

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def test_several_runners_share_the_work_and_run_each_job_once(db: Database, org: Org, kind: Any) -> None:
    ran: list[tuple[str, str]] = []
    lock = threading.Lock()
    together = threading.Barrier(4)  # the first four jobs only end once all four slots hold one

    def handler(_db: Database, context: JobContext) -> dict[str, int]:
        if context.payload["i"] < 4:
            together.wait(DEADLINE_S)
        with lock:
            ran.append((context.id, context.runner_id))
        return {"i": context.payload["i"]}

    name = kind(handler)
    ids = [add_job(org, name, {"i": i})["id"] for i in range(20)]
    runners = [Runner(db, concurrency=2, kinds=[name], poll_seconds=0.05) for _ in range(2)]
    for runner in runners:
        runner.start()
    try:
        wait_for(lambda: len(ran) == 20, "20 jobs to run")
        wait_for(lambda: all(stored(db, i)["status"] == "succeeded" for i in ids), "every job to succeed")
    finally:
        assert all(runner.stop() for runner in runners)
    assert sorted(job_id for job_id, _ in ran) == sorted(ids)
    assert {runner_id.rsplit(":", 1)[0] for _, runner_id in ran} == {runner.name for runner in runners}
    assert [stored(db, i)["result"] for i in ids] == [{"i": i} for i in range(20)]


def test_a_job_whose_lease_ran_out_is_resumed_by_another_runner(db: Database, org: Org) -> None:
    job = add_job(org, "test.lease")
    now = utcnow()
    assert jobs.claim(db, "crashed", ["test.lease"], 10, now=now)["attempts"] == 1
    assert jobs.claim(db, "other", ["test.lease"], 10, now=now + timedelta(seconds=9)) is None  # still leased
    resumed = jobs.claim(db, "other", ["test.lease"], 10, now=now + timedelta(seconds=11))
    assert resumed is not None and resumed["id"] == job["id"] and resumed["attempts"] == 2
    assert resumed["locked_by"] == "other"
    # the first runner, if it was only slow, finds out and stops: its result is not kept
    assert jobs.heartbeat(db, job["id"], "crashed") is None
    assert jobs.succeed(db, job["id"], "crashed", {"by": "crashed"}) is False
    assert jobs.succeed(db, job["id"], "other", {"by": "other"}) is True
    assert stored(db, job["id"])["result"] == {"by": "other"}


def test_a_job_that_keeps_losing_its_runner_fails_after_max_attempts(db: Database, org: Org) -> None:
    job = add_job(org, "test.crashy", max_attempts=2)
    now = utcnow()
    for attempt in (1, 2):
        claimed = jobs.claim(db, f"r{attempt}", ["test.crashy"], 10, now=now + timedelta(seconds=20 * attempt))
        assert claimed is not None and claimed["attempts"] == attempt
    assert jobs.claim(db, "r3", ["test.crashy"], 10, now=now + timedelta(seconds=60)) is None
    failed = stored(db, job["id"])
    assert failed["status"] == "failed" and "gave up after 2 attempts" in failed["error"]
    assert failed["finished_at"] is not None and failed["locked_by"] is None


# --- failures and retries ----------------------------------------------------------------------------


def test_failures_are_retried_with_a_growing_backoff_then_fail(db: Database, org: Org) -> None:
    job = add_job(org, "test.flaky", max_attempts=3)
    backoff = Backoff(base=10, cap=15)
    now = utcnow()
    for attempt, (low, high) in enumerate([(5, 10), (7.5, 15)], start=1):  # 10 * 2**(n-1), capped at 15, x[0.5,1]
        claimed = jobs.claim(db, "r", ["test.flaky"], now=now)
        assert claimed is not None and claimed["attempts"] == attempt
        assert jobs.fail(db, job["id"], "r", f"boom {attempt}", backoff=backoff, now=now) is JobStatus.QUEUED
        queued = stored(db, job["id"])
        assert queued["error"] == f"boom {attempt}" and queued["locked_by"] is None
        delay = (queued["run_after"] - now).total_seconds()
        assert low <= delay <= high, delay
        assert jobs.claim(db, "r", ["test.flaky"], now=queued["run_after"] - timedelta(seconds=1)) is None
        now = queued["run_after"]
    assert jobs.claim(db, "r", ["test.flaky"], now=now)["attempts"] == 3
    assert jobs.fail(db, job["id"], "r", "boom 3", backoff=backoff, now=now) is JobStatus.FAILED
    failed = stored(db, job["id"])
    assert failed["status"] == "failed" and failed["error"] == "boom 3" and failed["finished_at"] is not None
    assert jobs.claim(db, "r", ["test.flaky"], now=now + timedelta(days=1)) is None


def test_the_runner_retries_a_failing_handler_until_max_attempts(db: Database, org: Org, kind: Any) -> None:
    attempts: list[int] = []

    def handler(_db: Database, context: JobContext) -> None:
        attempts.append(context.attempt)
        raise ValueError(f"attempt {context.attempt} failed")

    name = kind(handler)
    job = add_job(org, name, max_attempts=3)
    runner = Runner(db, kinds=[name], backoff=Backoff(base=0, cap=0))  # retries due at once
    assert runner.run_until_idle() == 3
    assert attempts == [1, 2, 3]
    failed = stored(db, job["id"])
    assert failed["status"] == "failed" and failed["error"] == "ValueError: attempt 3 failed"


def test_a_permanent_failure_or_a_result_that_is_not_json_is_not_retried(db: Database, org: Org, kind: Any) -> None:
    def bad_payload(_db: Database, _context: JobContext) -> None:
        raise JobFailed("the payload names no project")

    failing, odd = kind(bad_payload), kind(lambda _db, _context: {"when": object()})
    first, second = add_job(org, failing), add_job(org, odd)
    assert Runner(db, kinds=[failing, odd], backoff=Backoff(base=0, cap=0)).run_until_idle() == 2
    assert stored(db, first["id"])["error"] == "JobFailed: the payload names no project"
    assert "not JSON" in stored(db, second["id"])["error"]
    assert [stored(db, j["id"])["attempts"] for j in (first, second)] == [1, 1]
    assert {stored(db, j["id"])["status"] for j in (first, second)} == {"failed"}


def test_a_job_runs_with_its_starters_rights_as_they_are_when_it_runs(db: Database, org: Org, kind: Any) -> None:
    def as_starter(db_: Database, context: JobContext) -> dict[str, Any]:
        principal = jobs.started_by(db_, context, Action.MANAGE_TASKS, "test job")
        return {"member": principal.member_id, "role": str(principal.role), "worker": principal.worker_id}

    name = kind(as_starter)
    manager, demoted, disabled = (org.add_member(Role.MANAGER) for _ in range(3))
    started = {}
    for actor in (manager, demoted, disabled):
        with org.db.write() as conn:
            started[actor.id] = jobs.enqueue(conn, org.id, name, {}, created_by=actor.id)
    accounts.update_member(db, org.owner.principal, demoted.id, MemberUpdate(role=Role.ANNOTATOR))
    accounts.update_member(db, org.owner.principal, disabled.id, MemberUpdate(disabled=True))
    with org.db.write() as conn:
        unknown = jobs.enqueue(conn, org.id, name, {})  # no member started it
    assert Runner(db, kinds=[name], backoff=Backoff(base=0, cap=0)).run_until_idle() == 4

    ran = stored(db, started[manager.id]["id"])
    assert ran["status"] == "succeeded" and ran["result"] == {
        "member": manager.id,
        "role": "manager",
        "worker": manager.worker_id,
    }
    assert stored(db, started[demoted.id]["id"])["error"] == (
        "JobFailed: the member who started this test job may no longer do it (their role is now annotator)"
    )
    for job_id in (started[disabled.id]["id"], unknown["id"]):
        failed = stored(db, job_id)
        assert failed["status"] == "failed" and failed["attempts"] == 1  # never retried: it cannot succeed
        assert failed["error"] == "JobFailed: the member who started this test job is gone or disabled"


def test_a_failed_job_is_not_requeued_beside_a_waiting_job_with_its_key(db: Database, org: Org) -> None:
    running = add_job(org, "test.keyed", dedupe_key="k")
    assert jobs.claim(db, "r", ["test.keyed"])["id"] == running["id"]
    waiting = add_job(org, "test.keyed", dedupe_key="k")
    assert jobs.fail(db, running["id"], "r", "boom") is JobStatus.FAILED
    assert "already queued" in stored(db, running["id"])["error"]
    assert stored(db, waiting["id"])["status"] == "queued"


# --- cancel ------------------------------------------------------------------------------------------


def test_a_cancel_committed_while_a_failure_is_recorded_stays(db: Database, org: Org, backend: str) -> None:
    """PostgreSQL: ``fail`` must not read the job as running, wait on the cancel's row lock, then
    queue it again over the cancel. (SQLite runs one write transaction at a time: no such race.)"""
    if backend != "postgres":
        pytest.skip("SQLite serialises write transactions: the two cannot interleave")
    job = add_job(org, "test.cancel-race")
    assert jobs.claim(db, "r", ["test.cancel-race"]) is not None
    outcome: dict[str, Any] = {}
    failing = threading.Thread(target=lambda: outcome.update(status=jobs.fail(db, job["id"], "r", "boom")))
    with db.write() as conn:  # the cancel's transaction: the row is locked and changed, not yet committed
        conn.execute(update(t.jobs).where(t.jobs.c.id == job["id"]).values(status="canceled"))
        failing.start()
        wait_for(lambda: _waiting_on_locks(db) >= 1, "fail() to wait on the row lock")
    failing.join(DEADLINE_S)
    assert outcome == {"status": None}  # it found the job no longer running: nothing recorded
    assert stored(db, job["id"])["status"] == "canceled"


def _waiting_on_locks(db: Database) -> int:
    """Sessions waiting for a lock now (each call in a new transaction: pg_stat_activity is a snapshot)."""
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).scalar())


def test_a_canceled_queued_job_never_runs(db: Database, org: Org, kind: Any) -> None:
    ran: list[str] = []
    name = kind(lambda _db, context: ran.append(context.id))
    job = add_job(org, name)
    canceled = jobs.cancel(db, org.owner.principal, job["id"])
    assert canceled["status"] == "canceled" and canceled["finished_at"] is not None
    assert jobs.cancel(db, org.owner.principal, job["id"])["status"] == "canceled"  # again: no change
    assert Runner(db, kinds=[name]).run_until_idle() == 0 and ran == []


def test_a_canceled_running_job_stops_at_its_next_progress_call(db: Database, org: Org, kind: Any) -> None:
    steps: list[int] = []
    outcome: list[BaseException] = []
    pace = threading.Event()  # never set: a short pause per step, so the loop does not spin the CPU

    def handler(_db: Database, context: JobContext) -> str:
        deadline = time.monotonic() + DEADLINE_S
        try:
            for step in itertools.count():
                context.progress(step, 10**9)
                steps.append(step)
                if time.monotonic() > deadline:
                    return "never canceled"
                pace.wait(0.002)
        except BaseException as exc:
            outcome.append(exc)
            raise
        raise AssertionError("unreachable")

    name = kind(handler)
    job = add_job(org, name)
    runner = Runner(db, kinds=[name], poll_seconds=0.05)
    runner.start()
    try:
        wait_for(lambda: stored(db, job["id"])["progress_done"] >= 1, "progress")
        jobs.cancel(db, org.owner.principal, job["id"])
        wait_for(lambda: stored(db, job["id"])["locked_by"] is None, "the runner to stop the handler")
    finally:
        assert runner.stop()
    final = stored(db, job["id"])
    assert final["status"] == "canceled" and final["result"] is None
    assert [type(exc).__name__ for exc in outcome] == ["JobCanceled"]
    assert final["progress_done"] <= steps[-1]


def test_progress_is_written_at_most_every_write_interval(db: Database, org: Org) -> None:
    job = add_job(org, "test.often")
    claimed = jobs.claim(db, "r", ["test.often"])
    context = JobContext(db, claimed, "r", write_interval=3600)
    for done in range(1, 100):
        context.progress(done, 100)  # one write (the first), then only checks
    assert stored(db, job["id"])["progress_done"] == 1
    context.progress(100, 100)  # the last one is always written
    assert stored(db, job["id"])["progress_done"] == 100
    jobs.cancel(db, org.owner.principal, job["id"])
    context.check()  # not seen yet: no write since
    context.write_interval = 0
    with pytest.raises(jobs.JobCanceled):
        context.heartbeat()


def test_the_last_progress_reported_is_kept_with_the_result(db: Database, org: Org, kind: Any) -> None:
    def handler(_db: Database, context: JobContext) -> None:
        for done in range(1, 501):  # far quicker than the write interval: only the first is written
            context.progress(done)

    name = kind(handler)
    job = add_job(org, name)
    assert Runner(db, kinds=[name]).run_until_idle() == 1
    final = stored(db, job["id"])
    assert final["status"] == "succeeded" and final["progress_done"] == 500 and final["progress_total"] is None


def test_a_finished_job_cannot_be_canceled(db: Database, org: Org, kind: Any) -> None:
    name = kind(lambda _db, _context: None)
    job = add_job(org, name)
    Runner(db, kinds=[name]).run_until_idle()
    with pytest.raises(Conflict, match="already succeeded"):
        jobs.cancel(db, org.owner.principal, job["id"])


def test_a_stopping_runner_gives_its_job_back_to_the_queue(db: Database, org: Org, kind: Any) -> None:
    started = threading.Event()

    def handler(_db: Database, context: JobContext) -> None:
        started.set()
        while True:  # a long job that checks in between steps
            context.heartbeat()

    name = kind(handler)
    job = add_job(org, name)
    runner = Runner(db, kinds=[name], poll_seconds=0.05)
    runner.start()
    assert started.wait(DEADLINE_S)
    assert runner.stop()
    back = stored(db, job["id"])
    assert back["status"] == "queued" and back["attempts"] == 0 and back["locked_by"] is None


# --- reading: scoped to the organization, managers see all -------------------------------------------


def test_jobs_are_read_and_canceled_within_the_organization_by_role(db: Database, org: Org, other_org: Org) -> None:
    job = add_job(org, "test.read")
    other = add_job(org, "test.other")
    with pytest.raises(NotFound):
        jobs.get_job(db, other_org.owner.principal, job["id"])
    with pytest.raises(NotFound):
        jobs.cancel(db, other_org.owner.principal, job["id"])
    manager = org.principal_for("manager")
    assert jobs.get_job(db, manager, job["id"])["id"] == job["id"]
    assert [j["id"] for j in jobs.list_jobs(db, manager)[0]] == [other["id"], job["id"]]  # newest first
    assert [j["id"] for j in jobs.list_jobs(db, manager, kind="test.read")[0]] == [job["id"]]
    assert jobs.list_jobs(db, manager, status=JobStatus.RUNNING)[0] == []
    page, cursor = jobs.list_jobs(db, manager, limit=1)
    assert [j["id"] for j in page] == [other["id"]] and cursor == other["id"]
    assert [j["id"] for j in jobs.list_jobs(db, manager, cursor=cursor)[0]] == [job["id"]]
    annotator = org.actor("annotator")
    with pytest.raises(Forbidden, match="annotator"):
        jobs.get_job(db, annotator.principal, job["id"])
    with pytest.raises(Forbidden, match="annotator"):
        jobs.cancel(db, annotator.principal, job["id"])
    assert jobs.list_jobs(db, annotator.principal) == ([], None)
    with db.write() as conn:  # a job the annotator started is theirs to read and cancel
        own = jobs.enqueue(conn, org.id, "test.own", {}, created_by=annotator.id)
    assert [j["id"] for j in jobs.list_jobs(db, annotator.principal)[0]] == [own["id"]]
    assert jobs.cancel(db, annotator.principal, own["id"])["status"] == "canceled"

"""The runner: threads that claim jobs, run their handlers, and record how each run ended.

Each thread runs one job at a time: claim (atomic, see :func:`truthset.services.jobs.claim`), run
the kind's handler, then succeed, fail (retried with exponential backoff and jitter until the
job's ``max_attempts``), or stop for a cancel. When nothing is due a thread waits ``poll_seconds``
(an event wait: :meth:`Runner.stop` and :meth:`Runner.wake` end it at once). A keep-alive thread
renews the lease of every running job a third of the way through it, so only a runner that is gone
(killed, crashed, cut off from the database) loses its jobs, which another runner then resumes.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import orjson

from truthset.config import Settings
from truthset.errors import Forbidden, InvalidInput, NotFound
from truthset.jobs._registry import handler_for, kinds
from truthset.services import jobs as service
from truthset.services.jobs import Backoff, JobCanceled, JobContext, JobFailed, JobInterrupted, JobLost, RetryLater
from truthset.storage import Database

# A generator of its own: jitter must not move the global random state (tests seed and watch it).
_jitter = random.Random()

__all__ = ["Runner", "runner_for"]

log = logging.getLogger("truthset.jobs")

#: Failures a retry cannot fix: the job's payload names something wrong or gone.
PERMANENT = (JobFailed, InvalidInput, NotFound, Forbidden)


class Runner:
    """Runs jobs from the database with ``concurrency`` threads (one job at a time per thread).

    ``kinds``: the kinds to run (default: every registered kind, see :mod:`truthset.jobs._registry`).
    Jobs of other kinds stay queued for a runner that has their handler.
    """

    def __init__(
        self,
        db: Database,
        *,
        concurrency: int = 1,
        kinds: Sequence[str] | None = None,
        lease_seconds: float = service.DEFAULT_LEASE_SECONDS,
        poll_seconds: float = 1.0,
        backoff: Backoff | None = None,
        name: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db = db
        self.concurrency = concurrency
        self._kinds = list(kinds) if kinds is not None else None
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.backoff = backoff or Backoff()
        self.settings = settings  # handed to handlers in their JobContext (data directory, limits)
        # unique per runner, readable in `truthset jobs show`: which machine and process holds a job
        self.name = name or f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._stopping = threading.Event()  # handlers see it at their next check: give the job back
        self._wakeup = threading.Event()
        self._threads: list[threading.Thread] = []
        self._active: dict[str, JobContext] = {}
        self._active_lock = threading.Lock()

    # -- lifecycle --

    @property
    def kinds(self) -> list[str]:
        return self._kinds if self._kinds is not None else kinds()

    def start(self) -> None:
        """Start the threads and return (the in-process runner of ``truthset serve``)."""
        if self._threads:
            raise RuntimeError("this runner is already started")
        self._stopping.clear()
        self._wakeup.clear()
        for slot in range(self.concurrency):
            self._threads.append(self._thread(self._loop, f"truthset-job-{slot}", slot))
        self._threads.append(self._thread(self._keep_alive, "truthset-job-lease", None))

    def _thread(self, target: Any, name: str, slot: int | None) -> threading.Thread:
        thread = threading.Thread(target=target, args=() if slot is None else (slot,), name=name, daemon=True)
        thread.start()
        return thread

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop taking jobs; running handlers stop at their next check and their jobs go back to
        the queue. Returns whether every thread ended within ``timeout`` seconds."""
        self._stopping.set()
        self._wakeup.set()
        for thread in self._threads:
            thread.join(timeout)
        ended = not any(thread.is_alive() for thread in self._threads)
        if ended:
            self._threads.clear()
        return ended

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wake(self) -> None:
        """Look for jobs now instead of at the end of the current poll wait."""
        self._wakeup.set()

    def run_until_idle(self) -> int:
        """Run due jobs in the calling thread until none is left (or :meth:`stop`); returns how many ran.

        The thread that renews the leases starts with the first job claimed: a call that finds
        nothing to do (most calls, when a caller asks between other work) is one read."""
        ran = 0
        with ExitStack() as running:
            while not self.stopping:
                job = self._claim(0, busy=ran > 0)
                if job is None:
                    break
                if not ran:
                    running.enter_context(self._keep_alive_thread())
                self._run_claimed(0, job)
                ran += 1
        return ran

    @contextmanager
    def _keep_alive_thread(self) -> Iterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=self._keep_alive, args=(stop,), name="truthset-job-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # -- the loops --

    def _loop(self, slot: int) -> None:
        ran = False
        while not self.stopping:
            try:
                ran = self.run_once(slot, busy=ran)
            except Exception:  # the database went away, say: log it and poll again, never die
                log.exception("job runner %s: could not take or record a job", self.name)
                ran = False
            if not ran:
                self._wakeup.wait(self.poll_seconds * _jitter.uniform(0.8, 1.0))  # bounded, ended by wake/stop
                if not self.stopping:  # a stop's wake-up stays set for every thread to see
                    self._wakeup.clear()

    def _keep_alive(self, stop: threading.Event | None = None) -> None:
        """Renew the lease of every running job of this runner, a third of a lease apart."""
        stop = stop or self._stopping
        while not stop.wait(self.lease_seconds / 3):
            with self._active_lock:
                contexts = list(self._active.values())
            for context in contexts:
                try:
                    context._renewed(service.heartbeat(self.db, context.id, context.runner_id, self.lease_seconds))
                except Exception:  # the next round tries again; the lease is three rounds long
                    log.warning("job runner %s: could not renew the lease of job %s", self.name, context.id)

    def run_once(self, slot: int = 0, *, busy: bool = False) -> bool:
        """Claim one due job and run it in the calling thread. False when none was due.

        ``busy``: the last call ran a job, so skip the read that keeps idle polls off the write lock.
        """
        job = self._claim(slot, busy=busy)
        if job is None:
            return False
        self._run_claimed(slot, job)
        return True

    def _claim(self, slot: int, *, busy: bool) -> dict[str, Any] | None:
        return service.claim(self.db, f"{self.name}:{slot}", self.kinds, self.lease_seconds, look_first=not busy)

    def _run_claimed(self, slot: int, job: dict[str, Any]) -> None:
        runner_id = f"{self.name}:{slot}"
        context = JobContext(
            self.db, job, runner_id, self.lease_seconds, stopping=self._stopping, settings=self.settings
        )
        with self._active_lock:
            self._active[runner_id] = context
        try:
            self._run(context)
        finally:
            with self._active_lock:
                self._active.pop(runner_id, None)

    def _run(self, context: JobContext) -> None:
        job, runner_id = context.job, context.runner_id
        handler = handler_for(job["kind"])
        if handler is None:  # unregistered since the claim: leave it to a runner that has it
            service.release(self.db, context.id, runner_id)
            return
        log.info("job %s (%s) attempt %s started by %s", context.id, job["kind"], context.attempt, runner_id)
        try:
            context.check()
            result = handler(self.db, context)
        except JobInterrupted:
            service.release(self.db, context.id, runner_id)
            log.info("job %s given back to the queue: the runner is stopping", context.id)
        except JobLost:
            log.warning("job %s was taken over by another runner (this one's lease ran out)", context.id)
        except JobCanceled:
            service.acknowledge_cancel(self.db, context.id, runner_id)
            log.info("job %s canceled", context.id)
        except RetryLater as exc:  # the handler's own schedule (e.g. webhook deliveries)
            status = service.fail(self.db, context.id, runner_id, service.error_text(exc), delay=exc.delay_seconds)
            log.info("job %s failed (attempt %s, now %s): %s", context.id, context.attempt, status, exc)
        except PERMANENT as exc:
            result = getattr(exc, "result", None)  # a JobFailed may carry a report (an import's bad lines)
            service.fail(self.db, context.id, runner_id, service.error_text(exc), retry=False, result=result)
            log.warning("job %s failed for good: %s", context.id, service.error_text(exc))
        except Exception as exc:
            status = service.fail(self.db, context.id, runner_id, service.error_text(exc), backoff=self.backoff)
            log.warning("job %s failed (attempt %s, now %s)", context.id, context.attempt, status, exc_info=True)
        else:
            self._record(context, result)

    def _record(self, context: JobContext, result: Any) -> None:
        try:
            orjson.dumps(result)
        except TypeError as exc:  # a bug in the handler: running it again gives the same result
            error = f"the handler's result is not JSON: {exc}"
            service.fail(self.db, context.id, context.runner_id, error, retry=False)
            return
        if not service.succeed(self.db, context.id, context.runner_id, result, last_progress=context.last_progress()):
            # canceled (or taken over) while the handler finished: its result is not kept
            service.acknowledge_cancel(self.db, context.id, context.runner_id)
        else:
            log.info("job %s succeeded", context.id)


def runner_for(db: Database, settings: Settings, **overrides: Any) -> Runner:
    """A runner configured by the ``TRUTHSET_JOBS_*`` settings (``overrides`` win)."""
    options: dict[str, Any] = {
        "concurrency": settings.jobs_concurrency,
        "lease_seconds": settings.jobs_lease_seconds,
        "poll_seconds": settings.jobs_poll_seconds,
        "backoff": Backoff(base=settings.jobs_retry_base_seconds, cap=settings.jobs_retry_max_seconds),
        "settings": settings,
    }
    return Runner(db, **{**options, **overrides})

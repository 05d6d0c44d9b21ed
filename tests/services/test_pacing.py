"""Background work pauses after a step only when the annotation loop competed with it."""

from __future__ import annotations

import threading

import pytest

from truthset.services import pacing
from truthset.storage import Database


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    paused: list[float] = []
    monkeypatch.setattr(pacing.time, "sleep", paused.append)
    return paused


def test_a_step_the_loop_submitted_a_call_during_is_followed_by_a_pause_as_long(
    db: Database, pauses: list[float]
) -> None:
    ticks = iter([10.0, 10.25])  # the step's own clock: 0.25 s of work
    with pacing.Pacer(db).step(lambda: next(ticks)):
        db.submit(lambda: None).result(timeout=60)  # an annotator's call, while the step runs
    assert pauses == [0.25]


def test_a_call_in_flight_across_the_step_counts_too(db: Database, pauses: list[float]) -> None:
    """A step that holds the GIL keeps the loop from submitting new calls: the ones waiting count."""
    release = threading.Event()
    waiting = db.submit(release.wait, 60)  # submitted before the step, still waiting when it ends
    ticks = iter([10.0, 10.001])
    with pacing.Pacer(db).step(lambda: next(ticks)):
        pass
    release.set()
    assert waiting.result(timeout=60) is True
    assert pauses == [pytest.approx(0.001)]


def test_a_step_nobody_competed_with_runs_on_without_a_pause(db: Database, pauses: list[float]) -> None:
    db.submit(lambda: None).result(timeout=60)  # the loop's last call ended before the step began...
    threading.Event().wait(0.01)  # (its completion is stamped just after the caller wakes up)
    with pacing.Pacer(db).step():
        db.submit(lambda: None, hot=False).result(timeout=60)  # ...and the step's own writes are not the loop
    assert pauses == []

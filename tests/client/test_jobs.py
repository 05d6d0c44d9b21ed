"""The SDK's ``client.jobs`` and `truthset jobs` against a live server, with a runner on its database."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import truthset
from truthset import cli
from truthset.cli import app, main
from truthset.client import ConflictError, NotFoundError
from truthset.config import Settings
from truthset.jobs import Runner, register, unregister
from truthset.services import jobs
from truthset.services.jobs import JobContext
from truthset.storage import Database

KIND = "test.sdk-gated"
DEADLINE_S = 30.0


@pytest.fixture
def database(live: Any) -> Iterator[Database]:
    """The live server's database, opened a second time (as a `truthset worker` would)."""
    db = Database(Settings(data_dir=live.data_dir).resolved_database_url)
    yield db
    db.dispose()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """``test.sdk-gated`` reports 1 of 4, waits for the event, then reports 4 of 4 and returns."""
    release = threading.Event()

    def handler(_db: Database, context: JobContext) -> dict[str, str]:
        context.progress(1, 4)
        assert release.wait(DEADLINE_S)
        context.progress(4, 4)
        return {"file": "export.jsonl"}

    register(KIND, handler)
    yield release
    release.set()
    unregister(KIND)


def enqueue(database: Database, client: truthset.Client, kind: str = KIND) -> str:
    organization_id = client.me().organization_id  # before the write: the server writes on this call too
    with database.write() as conn:
        return str(jobs.enqueue(conn, organization_id, kind, {"project": "p"})["id"])


def test_list_get_wait_and_cancel(client: truthset.Client, database: Database, gate: threading.Event) -> None:
    job_id = enqueue(database, client)
    idle = enqueue(database, client, "test.nobody-runs-this")
    runner = Runner(database, kinds=[KIND], poll_seconds=0.05)
    runner.start()
    seen: list[tuple[str, int]] = []

    def follow(job: Any) -> None:
        seen.append((str(job.status), job.progress.done))
        if job.progress.done == 1:
            gate.set()  # the progress was seen through the API: let the job finish

    try:
        done = client.jobs.wait(job_id, timeout=DEADLINE_S, poll=0.01, progress=follow)
    finally:
        assert runner.stop()
    assert done.status == "succeeded" and done.result == {"file": "export.jsonl"}
    assert ("running", 1) in seen and seen[-1] == ("succeeded", 4)
    assert [j.id for j in client.jobs.list(kind=KIND)] == [job_id]
    assert idle in [j.id for j in client.jobs.list(status="queued")]
    with pytest.raises(TimeoutError, match="still queued"):
        client.jobs.wait(idle, timeout=0)
    assert client.jobs.cancel(idle).status == "canceled"
    assert client.jobs.cancel(idle).status == "canceled"
    with pytest.raises(ConflictError) as conflict:
        client.jobs.cancel(job_id)
    assert conflict.value.code == "job_finished"
    with pytest.raises(NotFoundError):
        client.jobs.get("0" * 24)


def _cli(live: Any, *args: str) -> tuple[int, str]:
    # the CLI's console measured the terminal when truthset.cli was first imported, so COLUMNS in
    # the runner's environment comes too late: give the table a wide console for this call
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "console", Console(width=200))
        result = CliRunner().invoke(app, [*args, "--url", live.url, "--api-key", live.api_key])
    return result.exit_code, " ".join(result.output.split())


def test_jobs_commands(live: Any, client: truthset.Client, database: Database, gate: threading.Event) -> None:
    job_id = enqueue(database, client)
    gate.set()
    Runner(database, kinds=[KIND]).run_until_idle()
    idle = enqueue(database, client, "test.nobody-runs-this")
    code, output = _cli(live, "jobs", "list", "--kind", KIND)
    assert code == 0, output
    assert job_id in output and "succeeded" in output and "4/4" in output
    code, output = _cli(live, "jobs", "show", job_id, "--wait")
    assert code == 0, output
    assert '"status": "succeeded"' in output and '"file": "export.jsonl"' in output
    code, output = _cli(live, "jobs", "cancel", idle)
    assert code == 0 and f"job {idle} is canceled" in output, output
    code, output = _cli(live, "jobs", "show", idle, "--wait")
    assert code == 1 and '"status": "canceled"' in output, output


def test_an_api_error_ends_a_command_with_one_line(
    live: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["truthset", "jobs", "show", "0" * 24, "--url", live.url, "--api-key", live.api_key]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 404 not_found: job") and "Traceback" not in err

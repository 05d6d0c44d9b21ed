"""Export jobs through the SDK and the CLI, against a live server whose in-process runner runs them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truthset.cli import app
from truthset.client import InvalidInputError, NotFoundError

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["pos", "neg"]}],
}


@pytest.fixture(scope="module")
def labeled(live: Any) -> dict[str, Any]:
    """A project of 3 tasks, 2 of them answered (completed)."""
    with live.client() as client:
        project = client.projects.create("export jobs", spec=SPEC)
        client.tasks.import_tasks(project.id, [{"unique_id": f"e{i}", "data": {"text": f"t{i}"}} for i in range(3)])
        for _ in range(2):
            assignment = client.queue.next_task(project.id)
            client.queue.submit(assignment.task.id, {"sentiment": "pos"}, assignment_id=assignment.id)
    return {"project_id": project.id}


def test_start_wait_and_download(
    live: Any, labeled: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a download without a path lands in the current directory
    with live.client() as client:
        job = client.start_export(labeled["project_id"], format="parquet", all_statuses=True)
        assert job.kind == "export" and job.status == "queued"
        done = client.jobs.wait(job.id, timeout=60, poll=0.05)
        assert done.status == "succeeded" and done.progress.done == done.progress.total == 3
        path = client.download_export(job.id, tmp_path / "tasks.parquet")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == done.result["sha256"]
        assert pq.read_table(path).num_rows == 3 and not (tmp_path / "tasks.parquet.part").exists()
        named = client.download_export(job.id)  # the server's name, in the current directory
        try:
            assert named.name == done.result["download_name"] and named.read_bytes() == path.read_bytes()
        finally:
            named.unlink()
        finished = client.export_to(labeled["project_id"], tmp_path / "done.jsonl", timeout=60)
        rows = [json.loads(line) for line in (tmp_path / "done.jsonl").read_text().splitlines()]
        assert len(rows) == finished.result["tasks"] == 2 and all(row["responses"] for row in rows)
        delta = client.export_to(
            labeled["project_id"], tmp_path / "delta.jsonl", updated_since=finished.result["cursor"], timeout=60
        )
        assert delta.result["filters"]["updated_since"] == finished.result["cursor"]
        with pytest.raises(InvalidInputError) as refused:
            client.start_export(labeled["project_id"], format="xlsx")
        assert refused.value.details["field"] == "format"
        with pytest.raises(NotFoundError):
            client.download_export("0" * 24, tmp_path / "nothing")
        assert not (tmp_path / "nothing").exists()


def _cli(live: Any, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--url", live.url, "--api-key", live.api_key])


def test_cli_exports_a_file_or_standard_output(live: Any, labeled: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    result = _cli(live, "export", labeled["project_id"], "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 2 tasks" in result.output and "--since 20" in result.output
    lines = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [line["answer.sentiment"] for line in lines] == ["pos", "pos"]
    printed = _cli(live, "export", "--project", labeled["project_id"], "--all")
    assert printed.exit_code == 0, printed.output
    assert sum(1 for line in printed.stdout.splitlines() if line.startswith("{")) == 3
    queued = _cli(live, "export", labeled["project_id"], "--no-wait")
    assert queued.exit_code == 0 and "truthset jobs show" in queued.output
    bad = _cli(live, "export", labeled["project_id"], "--format", "xlsx")
    # (`truthset` prints an API error as one line, see main(); the runner shows the exception itself)
    assert isinstance(bad.exception, InvalidInputError) and "the formats are: jsonl, csv, parquet" in str(bad.exception)


def test_the_sdk_and_cli_export_the_questions_named(live: Any, tmp_path: Path) -> None:
    spec = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [
            {"name": "sentiment", "type": "label", "options": ["pos", "neg"]},
            {"name": "topic", "type": "label", "options": ["sport", "news"]},
        ],
    }
    with live.client() as client:
        project = client.projects.create("some questions", spec=spec)
        client.tasks.import_tasks(project.id, [{"data": {"text": "a match report"}}])
        assignment = client.queue.next_task(project.id)
        client.queue.submit(assignment.task.id, {"sentiment": "pos", "topic": "sport"}, assignment_id=assignment.id)
        done = client.export_to(project.id, tmp_path / "topic.csv", format="csv", questions=["topic"], timeout=60)
        assert done.payload["questions"] == ["topic"]
        with pytest.raises(InvalidInputError) as refused:
            client.start_export(project.id, format="csv", questions=["mood"])
        assert refused.value.details["questions"] == ["sentiment", "topic"]
    (row,) = csv.DictReader(io.StringIO((tmp_path / "topic.csv").read_text()))
    assert row["answer.topic"] == "sport" and "answer.sentiment" not in row

    out = tmp_path / "both.csv"
    picked = ("--question", "topic", "--question", "sentiment")
    result = _cli(live, "export", project.id, "--format", "csv", *picked, "--out", str(out))
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO(out.read_text()))
    assert (row["answer.sentiment"], row["answer.topic"]) == ("pos", "sport")

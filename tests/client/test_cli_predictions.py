"""`truthset predictions import` and `client.upload_predictions` against a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from truthset import cli
from truthset.cli import app
from truthset.client import InvalidInputError

runner = CliRunner()
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["pos", "neg"]},
        {"name": "stars", "type": "rating", "min": 1, "max": 5, "required": False},
    ],
}


def _cli(live: Any, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--url", live.url, "--api-key", live.api_key])
    return result.exit_code, " ".join(result.output.split())


def _project(live: Any, name: str, n: int) -> str:
    with live.client() as client:
        project = client.projects.create(name, spec=SPEC)
        for i in range(n):
            client.tasks.create(project.id, {"text": f"t{i}"}, unique_id=f"{name}-{i}")
    return project.id


def test_import_jsonl_and_csv_with_a_report_and_no_traceback(live: Any, tmp_path: Path) -> None:
    project_id = _project(live, "cli-pred", 3)
    lines = [
        {"unique_id": "cli-pred-0", "question": "sentiment", "answer": "pos", "score": 0.9},
        {"unique_id": "cli-pred-0", "question": "stars", "answer": 4, "score": 0.5},
        {"unique_id": "cli-pred-1", "question": "sentiment", "answer": "maybe", "score": 0.9},
    ]
    jsonl = tmp_path / "predictions.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{not json\n")
    args = ("predictions", "import", str(jsonl), "--project", project_id, "--model", "clf", "--version", "1")
    code, output = _cli(live, *args)
    assert code == 2 and "Traceback" not in output, output
    assert "line 4: invalid JSON" in output and "nothing was stored" in output
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, output = _cli(live, *args)
    assert code == 2 and "line 3:" in output and "maybe" in output, output
    code, output = _cli(live, *args, "--on-error", "skip")
    assert code == 0, output
    assert "clf@1: 2 predictions stored (1 tasks), 0 unchanged, 1 refused" in output and "line 3:" in output
    code, output = _cli(live, *args, "--on-error", "skip")
    assert "0 predictions stored (0 tasks), 2 unchanged, 1 refused" in output

    table = tmp_path / "predictions.csv"
    table.write_text("unique_id,question,answer,score\ncli-pred-2,sentiment,neg,0.8\ncli-pred-2,stars,2,0.3\n")
    code, output = _cli(
        live, "predictions", "import", str(table), "--project", project_id, "--model", "clf", "--version", "2"
    )
    assert code == 0 and "2 predictions stored (1 tasks)" in output, output
    with live.client() as client:
        (task,) = client.tasks.list(project_id=project_id, unique_id="cli-pred-2")
        (prediction,) = client.tasks.predictions(task.id)
    assert prediction.model == "clf@2" and prediction.answer == {"sentiment": "neg", "stars": 2}
    code, output = _cli(live, "quality", "workers", project_id)
    assert code == 0 and "clf@1 │ model" in output, output  # the table is squeezed to the runner's width


def test_the_sdk_sends_a_tasks_predictions_together_and_numbers_errors_from_the_start(live: Any) -> None:
    project_id = _project(live, "sdk-pred", 4)
    items = [
        {"unique_id": f"sdk-pred-{i}", "question": q, "answer": a, "score": 0.5}
        for i in range(4)
        for q, a in (("sentiment", "pos"), ("stars", 3))
    ]
    with live.client() as client:
        report = client.upload_predictions(project_id, items, model="m", version="1", chunk_size=3)
        assert (report.received, report.stored, report.responses_created) == (8, 8, 4)
        bad = [*items[:6], {**items[6], "answer": "nope"}]
        with pytest.raises(InvalidInputError) as refused:
            client.upload_predictions(project_id, bad, model="m", version="2", chunk_size=3)
        assert refused.value.details["errors"][0]["index"] == 6


def test_quality_workers_shows_what_a_model_auto_labeled(live: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(cli.console, "width", 250)  # the tables whole, whatever COLUMNS the run has
    policy = {"overlap": 1, "target_confidence": 0.85, "auto_label": {"min_accuracy": 0.8, "min_verified": 20}}
    with live.client() as client:
        project = client.projects.create("cli-auto", spec=SPEC, quality=policy)
        for i in range(24):
            client.tasks.create(project.id, {"text": f"t{i}"}, unique_id=f"cli-auto-{i}")
        gold = "unique_id,sentiment\n" + "".join(f"cli-auto-{i},pos\n" for i in range(20))
        client.projects.import_gold(project.id, gold.encode())
    table = tmp_path / "predictions.csv"
    lines = "".join(f"cli-auto-{i},sentiment,pos,0.99\n" for i in range(24))
    table.write_text("unique_id,question,answer,score\n" + lines)
    args = ("predictions", "import", str(table), "--project", project.id, "--model", "clf", "--version", "1")
    code, output = _cli(live, *args)
    assert code == 0, output
    code, output = _cli(live, "quality", "workers", project.id)
    assert code == 0, output
    # the second table: 20 of 20 right on gold (the interval's lower end, 0.88, reaches the target
    # 0.85), so the four other tasks are auto-labeled but for audits (the default rate 0.1)
    with live.client() as client:
        (model,) = [w for w in client.projects.workers(project.id) if w.name == "clf@1"]
    assert model.auto_labeled >= 1 and model.verified_tasks == 20
    assert "verified (95%)" in output and "may auto-label" in output, output
    row = output.split("audits agreed", 1)[1]
    assert "clf@1" in row and "yes" in row and f"│ {model.auto_labeled} │ 0 │ - │" in row, row

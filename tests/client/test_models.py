"""`client.models` and `truthset models train/list` against a live server whose runner runs
``model.train`` jobs, as `truthset serve` does."""

from __future__ import annotations

import re
from typing import Any

from typer.testing import CliRunner

from learners.synthetic import tickets
from truthset.cli import app
from truthset.client import InvalidInputError

runner = CliRunner()
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "topic", "type": "label", "options": ["billing", "shipping", "bug"]}],
}


def _cli(live: Any, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--url", live.url, "--api-key", live.api_key])
    return result.exit_code, " ".join(result.output.split())


def _project(live: Any, name: str, labeled: int, waiting: int) -> str:
    examples, labels = tickets(labeled + waiting, seed=11, noise=0.0)
    with live.client() as client:
        project = client.projects.create(name, spec=SPEC, quality={"overlap": 1})
        client.tasks.import_tasks(
            project.id, [{"data": dict(t.data), "unique_id": f"{name}-{t.key}"} for t in examples]
        )
        ids = {task.unique_id: task.id for task in client.tasks.list(project_id=project.id)}
        for task, label in zip(examples[:labeled], labels[:labeled], strict=True):
            client.queue.submit(ids[f"{name}-{task.key}"], {"topic": label})
    return project.id


def test_the_sdk_trains_and_lists_versions(live: Any) -> None:
    project_id = _project(live, "sdk-model", 45, 3)
    with live.client() as client:
        job = client.models.train(project_id, "topic")
        assert job.kind == "model.train"
        done = client.jobs.wait(job.id, timeout=120, poll=0.05)
        assert done.status == "succeeded", done
        assert done.result["status"] == "trained" and done.result["predictions"]["stored"] == 3
        (model,) = list(client.models.list(project_id))
    assert model.version == done.result["version"] and model.metrics["n_examples"] == 45


def test_the_cli_trains_waits_and_lists(live: Any) -> None:
    project_id = _project(live, "cli-model", 45, 2)
    with live.client() as client:  # two of the labeled tasks are gold: graded out of fold
        done = [task for task in client.tasks.list(project_id=project_id) if task.status == "completed"]
        for task in done[:2]:
            client.tasks.mark_gold(task.id, task.result["answer"])
    code, output = _cli(live, "models", "train", "--project", project_id, "--question", "topic", "--wait")
    assert code == 0 and "trained: truthset-text@truthset-text-" in output and "(45 labeled tasks)" in output, output
    assert "accuracy" in output and "predictions: 2 stored, 0 unchanged, 0 refused" in output
    assert "on the 2 gold and reviewed labels alone" in output
    assert "gold tasks graded out of fold: 2 stored, 0 unchanged" in output, output
    args = ["models", "list", "--project", project_id, "--url", live.url, "--api-key", live.api_key]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "│ topic │ 45 │" in " ".join(result.output.split()), result.output
    # the version, folded to the terminal's width, is whole: read down its column
    folded = [line.split("│")[1].strip() for line in result.output.splitlines() if line.startswith("│")]
    with live.client() as client:
        (model,) = list(client.models.list(project_id))
    assert "".join(folded) == model.version
    # the accuracy on the 2 gold labels, read down its column too
    verified = [line.split("│")[5].strip() for line in result.output.splitlines() if line.startswith("│")]
    assert re.fullmatch(r"\d\.\d{3} ?\(2\)", "".join(verified)), result.output


def test_the_cli_says_when_there_is_not_enough_data(live: Any) -> None:
    project_id = _project(live, "cli-little", 4, 1)
    code, output = _cli(live, "models", "train", "--project", project_id, "--question", "topic", "--wait")
    assert code == 1 and "not enough data for 'topic'" in output and "have 4 tasks" in output, output
    # refused before anything is queued (the console script prints it as one line: see cli.main)
    args = ["models", "train", "--project", project_id, "--question", "nope", "--url", live.url]
    refused = runner.invoke(app, [*args, "--api-key", live.api_key])
    assert isinstance(refused.exception, InvalidInputError) and "question: 'nope'" in str(refused.exception)

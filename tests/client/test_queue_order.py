"""`client.queue.list` / `client.queue.rerank` and `truthset queue list/rerank` against a live server
whose runner runs ``queue.rerank`` jobs, as `truthset serve` does."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from truthset.cli import app
from truthset.client import NotFoundError

runner = CliRunner()
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog", "bird"]}],
}
SCORES = [0.99, 0.4, 0.7, 0.55, 0.9]
LEAST_CERTAIN_FIRST = [1, 3, 2, 4, 0]  # indexes into SCORES


def _project(live: Any, name: str) -> tuple[str, list[str]]:
    """A project ordered by model uncertainty, five tasks (in id order) and a model's scored predictions."""
    with live.client() as client:
        project = client.projects.create(name, spec=SPEC, quality={"overlap": 1, "ordering": "model_uncertainty"})
        client.tasks.import_tasks(
            project.id, [{"data": {"text": f"t{i}"}, "unique_id": f"{name}-{i}"} for i in range(5)]
        )
        ids = {task.unique_id: task.id for task in client.tasks.list(project_id=project.id)}
        tasks = [ids[f"{name}-{i}"] for i in range(5)]
        items = [
            {"task_id": task_id, "question": "animal", "answer": "cat", "score": score}
            for task_id, score in zip(tasks, SCORES, strict=True)
        ]
        client.upload_predictions(project.id, items, model="clf", version="1")
    return project.id, tasks


def test_the_sdk_reranks_and_lists_the_queue_in_serving_order(live: Any) -> None:
    project_id, tasks = _project(live, "sdk-queue")
    with live.client() as client:
        before = [task.id for task in client.queue.list(project_id)]
        assert before == tasks  # not re-ranked yet (the automatic re-rank waits 30 s): oldest first
        job = client.queue.rerank(project_id)
        assert job.kind == "queue.rerank"  # asked for: runs at once, not after the automatic one's delay
        done = client.jobs.wait(job.id, timeout=60, poll=0.05)
        assert done.status == "succeeded", done
        assert done.result["ranked"] == 5 and done.result["ordering"] == "model_uncertainty"
        served = list(client.queue.list(project_id, page_size=2))  # followed across pages
        assert [task.id for task in served] == [tasks[i] for i in LEAST_CERTAIN_FIRST]
        assert [task.queue_rank for task in served] == sorted(task.queue_rank for task in served)
        with pytest.raises(NotFoundError):
            client.queue.rerank("no-such-project")


def test_the_cli_lists_and_reranks(live: Any) -> None:
    project_id, tasks = _project(live, "cli-queue")
    auth = ["--url", live.url, "--api-key", live.api_key]
    done = runner.invoke(app, ["queue", "rerank", "--project", project_id, "--wait", *auth])
    assert done.exit_code == 0, done.output
    assert "ordering model_uncertainty: 5 tasks ranked, 5 ranks changed" in " ".join(done.output.split())
    listed = runner.invoke(app, ["queue", "list", "--project", project_id, "--limit", "3", *auth])
    assert listed.exit_code == 0, listed.output
    assert rows_of(listed.output) == [tasks[i] for i in LEAST_CERTAIN_FIRST[:3]]  # --limit: the first three


def rows_of(output: str) -> list[str]:
    """The task ids of `queue list`'s table, each folded down its column over one or more lines."""
    ids: list[str] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        place, task_id = (cell.strip() for cell in line.split("│")[1:3])
        if place:
            ids.append(task_id)
        else:
            ids[-1] += task_id
    return ids

"""`truthset import` and `truthset export` against a live server, as a user scripts them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from truthset import cli
from truthset.cli import app
from truthset.client import ConflictError, InvalidInputError, NotFoundError

runner = CliRunner()
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["pos", "neg"]}],
}


def _cli(live: Any, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--url", live.url, "--api-key", live.api_key])
    return result.exit_code, " ".join(result.output.split())


def test_projects_are_created_from_a_spec_file_listed_and_shown(
    live: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without these a CLI user could not learn a project's id for `truthset import --project`."""
    monkeypatch.setattr(cli.console, "width", 250)  # every column whole, whatever COLUMNS the run has
    spec, policy, notes = tmp_path / "spec.json", tmp_path / "policy.json", tmp_path / "instructions.md"
    spec.write_text(json.dumps(SPEC))
    policy.write_text(json.dumps({"min_overlap": 1, "max_overlap": 3, "target_confidence": 0.9}))
    notes.write_text("Read the *whole* review.")
    code, output = _cli(live, "projects", "create", "cli spec file", "--spec", str(spec), "--quality", str(policy),
                        "--instructions", str(notes))  # fmt: skip
    assert code == 0, output
    project_id = re.search(r"created project cli spec file: (\w{24})", output).group(1)  # type: ignore[union-attr]
    with live.client() as client:
        made = client.projects.get(project_id)
    assert made.spec["questions"][0]["name"] == "sentiment" and made.instructions == "Read the *whole* review."
    assert (made.quality["min_overlap"], made.quality["max_overlap"]) == (1, 3)
    code, output = _cli(live, "projects", "list")
    assert code == 0 and project_id in output and "sentiment (label)" in output and "1-3 to 0.9" in output, output
    code, output = _cli(live, "projects", "show", project_id)
    assert code == 0 and '"target_confidence": 0.9' in output, output
    # a change of some of it: the rest stays
    changed_policy = {"min_overlap": 1, "max_overlap": 5, "target_confidence": 0.95, "ordering": "uncertainty"}
    policy.write_text(json.dumps(changed_policy))
    notes.write_text("Read the review twice.")
    wider = {**SPEC, "questions": [{**SPEC["questions"][0], "options": ["pos", "neg", "mixed"]}]}
    spec.write_text(json.dumps(wider))
    code, output = _cli(live, "projects", "update", project_id, "--quality", str(policy), "--instructions", str(notes),
                        "--spec", str(spec))  # fmt: skip
    assert code == 0 and "updated project cli spec file (spec, quality, instructions); overlap 1-5 to 0.95" in output
    with live.client() as client:
        changed = client.projects.get(project_id)
    assert changed.quality["ordering"] == "uncertainty" and changed.instructions == "Read the review twice."
    assert changed.spec["questions"][0]["options"][-1]["value"] == "mixed" and changed.name == "cli spec file"
    code, output = _cli(live, "projects", "update", project_id)
    assert code == 2 and "nothing to change" in output, output
    code, output = _cli(live, "projects", "archive", project_id)
    assert code == 0 and "project cli spec file is archived" in output, output
    code, output = _cli(live, "projects", "list")
    assert project_id not in output  # archived projects only with --archived
    code, output = _cli(live, "projects", "archive", project_id, "--undo")
    assert code == 0 and "is active" in output, output
    code, output = _cli(live, "projects", "delete", project_id)
    assert code == 0 and f"deleted project {project_id}" in output, output
    with live.client() as client:
        assert project_id not in {p.id for p in client.projects.list(include_archived=True)}

    code, output = _cli(live, "projects", "check", "--spec", str(spec), "--quality", str(policy))
    assert code == 0 and "valid; questions: sentiment (label); overlap 1-5 to 0.95" in output, output
    bad_policy = tmp_path / "bad-policy.json"
    bad_policy.write_text(json.dumps({"min_overlap": 3, "max_overlap": 1}))
    result = runner.invoke(app, ["projects", "check", "--spec", str(spec), "--quality", str(bad_policy),
                                 "--url", live.url, "--api-key", live.api_key])  # fmt: skip
    assert isinstance(result.exception, InvalidInputError) and "max_overlap" in str(result.exception), result.output

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, output = _cli(live, "projects", "create", "never", "--spec", str(broken))
    assert code == 2 and f"--spec: {broken} is not a readable JSON file" in output and "Traceback" not in output
    spec.write_text(json.dumps({"fields": [], "questions": []}))
    result = runner.invoke(app, ["projects", "create", "never", "--spec", str(spec), "--url", live.url,
                                 "--api-key", live.api_key])  # fmt: skip
    # the server's 422 naming the field, which main() prints as one line (the runner calls app, not main)
    assert isinstance(result.exception, InvalidInputError) and "spec" in str(result.exception), result.output


def test_a_batch_is_created_imported_into_finalized_paused_resumed_and_canceled(
    live: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI user's batch from start to end: its tasks wait until it is finalized."""
    monkeypatch.setattr(cli.console, "width", 250)  # the table whole, whatever COLUMNS the run has
    with live.client() as client:
        project = client.projects.create("cli batches", SPEC)
    code, output = _cli(live, "batches", "create", project.id, "week 1")
    assert code == 0, output
    batch_id = re.search(r"created batch week 1: (\w{24})", output).group(1)  # type: ignore[union-attr]
    lines = tmp_path / "week1.jsonl"
    lines.write_text("".join(json.dumps({"data": {"text": f"review {i}"}}) + "\n" for i in range(3)))
    code, output = _cli(live, "import", str(lines), "--project", project.id, "--batch", batch_id)
    assert code == 0 and "created 3" in output, output
    code, output = _cli(live, "batches", "list", project.id)
    assert code == 0 and batch_id in output and "open" in output and "3 staged" in output, output
    code, output = _cli(live, "batches", "finalize", batch_id)
    assert code == 0 and "batch week 1 is finalized: 3 pending" in output, output
    code, output = _cli(live, "batches", "pause", batch_id)
    assert code == 0 and "is paused: 3 staged" in output, output
    code, output = _cli(live, "batches", "resume", batch_id)
    assert code == 0 and "is finalized: 3 pending" in output, output
    code, output = _cli(live, "batches", "show", batch_id)
    assert code == 0 and '"status": "finalized"' in output, output
    code, output = _cli(live, "batches", "cancel", batch_id)
    assert code == 0 and "is canceled: 3 canceled" in output, output
    result = runner.invoke(app, ["batches", "resume", batch_id, "--url", live.url, "--api-key", live.api_key])
    assert result.exit_code != 0 and "409" in str(result.exception), result.output  # main() prints it as one line


def test_import_jsonl_and_csv_then_export(live: Any, tmp_path: Path) -> None:
    with live.client() as client:
        project = client.projects.create("cli import", spec=SPEC)
    jsonl = tmp_path / "tasks.jsonl"
    jsonl.write_text("".join(json.dumps({"unique_id": f"j{i}", "data": {"text": f"t{i}"}}) + "\n" for i in range(50)))
    code, output = _cli(live, "import", str(jsonl), "--project", project.id)
    assert code == 0, output
    assert "created 50" in output

    table = tmp_path / "tasks.csv"
    table.write_text("unique_id,text,metadata.source\nc1,first,shop\nc2,second,shop\nj1,again,shop\n")
    code, output = _cli(live, "import", str(table), "--project", project.id)
    assert code == 0, output
    assert "created 2, existing 1" in output

    with live.client() as client:
        (task,) = client.tasks.list(project_id=project.id, unique_id="c1")
        assert task.metadata == {"source": "shop"}
        assignment = client.queue.next_task(project.id)
        client.queue.submit(assignment.task.id, {"sentiment": "pos"}, assignment_id=assignment.id)

    out = tmp_path / "results.jsonl"
    code, output = _cli(live, "export", "--project", project.id, "--out", str(out))
    assert code == 0, output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["answer"] == {"sentiment": "pos"} and row["status"] == "completed"

    code, output = _cli(live, "export", "--project", project.id, "--all", "--out", str(out))
    assert len(out.read_text().splitlines()) == 52
    code, output = _cli(live, "export", "--project", project.id, "--all", "--min-confidence", "0", "--out", str(out))
    assert code == 0 and len(out.read_text().splitlines()) == 1  # only the task with a result
    code, output = _cli(live, "export", "--project", project.id, "--min-confidence", "2")
    assert code == 2 and "min-confidence" in output


def test_importing_one_file_into_a_second_project_names_the_ids_the_first_has(live: Any, tmp_path: Path) -> None:
    """It reported "created 0, existing 2" and left the second project empty."""
    with live.client() as client:
        pilot = client.projects.create("cli pilot", spec=SPEC)
        production = client.projects.create("cli production", spec=SPEC)
    table = tmp_path / "items.csv"
    table.write_text("unique_id,text\nitem-1,first\nitem-2,second\n")
    assert _cli(live, "import", str(table), "--project", pilot.id)[0] == 0
    code, output = _cli(live, "import", str(table), "--project", production.id)
    assert code == 2, output
    assert f"line 2: unique_id 'item-1' is already used by a task of another project ({pilot.id})" in output
    assert "created 0, existing 0, invalid 2" in output and "/None" not in output  # the bar: "2/? rows"


def test_import_reports_bad_lines_and_stores_nothing(live: Any, tmp_path: Path) -> None:
    with live.client() as client:
        project = client.projects.create("cli bad import", spec=SPEC)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"data": {"text": "ok"}}\n{"data": {"txt": "typo"}}\nnot json\n')
    code, output = _cli(live, "import", str(bad), "--project", project.id)
    assert code == 2
    assert "line 2: unknown field(s) in data: txt" in output
    assert "line 3:" in output
    assert "nothing was stored" in output
    with live.client() as client:
        assert list(client.tasks.list(project_id=project.id)) == []


def test_a_csv_with_a_bad_priority_names_the_line_and_skip_keeps_the_rest(live: Any, tmp_path: Path) -> None:
    """A priority that is not a whole number used to stop the CLI with a traceback, storing nothing
    even with --on-error skip."""
    with live.client() as client:
        project = client.projects.create("cli bad priority", spec=SPEC)
    table = tmp_path / "tasks.csv"
    table.write_text("text,priority\nhello,1\nworld,abc\nok,2\n")
    code, output = _cli(live, "import", str(table), "--project", project.id)
    assert code == 2 and "Traceback" not in output, output
    # CSV lines are the file's (the header is line 1)
    assert "line 3:" in output and "priority" in output and "nothing was stored" in output
    code, output = _cli(live, "import", str(table), "--project", project.id, "--on-error", "skip")
    # exit status 2 says a line was bad (as for any import), the good ones are stored
    assert code == 2 and "Traceback" not in output and "created 2" in output and "invalid 1" in output, output
    with live.client() as client:
        stored = sorted((t.data["text"], t.priority) for t in client.tasks.list(project_id=project.id))
    assert stored == [("hello", 1), ("ok", 2)]


def test_quality_agreement_and_workers(live: Any) -> None:
    with live.client() as client:
        project = client.projects.create("cli quality", spec=SPEC)
        client.tasks.import_tasks(project.id, [{"data": {"text": "t"}}])
        lease = client.queue.next_task(project.id)
        client.queue.submit(lease.task.id, {"sentiment": "pos"}, assignment_id=lease.id, duration_ms=1500)
    code, output = _cli(live, "quality", "agreement", project.id)
    assert code == 0, output
    assert "sentiment" in output and "fleiss_kappa is not defined: no task has two or more answers" in output
    code, output = _cli(live, "quality", "workers", project.id)
    assert code == 0, output
    assert "1.5" in output and "1.000" in output  # median seconds; agrees with the result it made
    # piped, as into a file: every column whole, where rich would cut the table to 80 columns
    command = [sys.executable, "-c", "from truthset.cli import app; app()", "quality", "workers", project.id]
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    env |= {"TRUTHSET_URL": live.url, "TRUTHSET_API_KEY": live.api_key}
    piped = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert "est. accuracy (95%)" in piped.stdout and "…" not in piped.stdout, piped.stdout


def test_quality_refit_waits_for_the_job_and_says_what_changed(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with live.client() as client:
        project = client.projects.create("cli refit", spec=SPEC, quality={"overlap": 1})
        client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(25)])
        for assignment in client.queue.iter_tasks(project.id):
            client.queue.submit(assignment.task.id, {"sentiment": "pos"}, assignment_id=assignment.id)
    with live.client() as client:
        empty = client.projects.create("cli refit, no answers", spec=SPEC)
    code, output = _cli(live, "quality", "models", empty.id)
    assert code == 0 and "no worker model yet" in output, output
    code, output = _cli(live, "quality", "refit", project.id, "--wait")
    assert code == 0, output
    assert "quality.refit job" in output and "sentiment: version" in output and "25 responses" in output
    assert "answers changed: 0" in output  # one worker, always "pos": the fit confirms every answer
    monkeypatch.setattr(cli.console, "width", 250)  # room for every column (the runner's default is 80)
    code, output = _cli(live, "quality", "models", project.id)
    assert code == 0, output
    # the automatic refit after 20 answers may have come first: any version
    row = r"sentiment │ dawid_skene │ \d+ │ [\d-]+ [\d:]+ │ 25 │ 1 │ temperature [\d.]+, from the answers alone"
    assert re.search(row, output), output
    code, output = _cli(live, "quality", "workers", project.id)
    assert code == 0, output
    assert "measured by the fit" in output
    assert re.search(r"sentiment 0\.\d{3}", output), output  # what the fit measured of the worker


def test_review_commands_and_task_history(live: Any) -> None:
    with live.client() as client:
        project = client.projects.create("cli review", spec=SPEC, quality={"overlap": 1, "review": {"sample_rate": 1}})
        client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(2)])
        member = client.members.add("reviewed-annotator@acme.example", role="annotator")
        key = client.keys.create("annotator", member_id=member.id)
        with live.client(key.key) as annotator:
            for assignment in annotator.queue.iter_tasks(project.id):
                annotator.queue.submit(assignment.task.id, {"sentiment": "pos"}, assignment_id=assignment.id)
    code, output = _cli(live, "review", "next", project.id)
    assert code == 0 and '{"sentiment": "pos"}' in output, output
    first = output.split("task ", 1)[1].split()[0]
    code, output = _cli(live, "review", "fix", first, "--answer", '{"sentiment": "neg"}')
    assert code == 0 and f"fix: task {first} is completed, review fixed" in output, output
    code, output = _cli(live, "review", "fix", first, "--answer", "neg")
    assert code == 2 and "JSON" in output
    code, output = _cli(live, "review", "next", project.id)
    second = output.split("task ", 1)[1].split()[0]
    code, output = _cli(live, "review", "reject", second, "--reason", "not [b]pos[/b]")
    assert code == 0 and "is pending, review rejected" in output, output
    code, output = _cli(live, "review", "list", second)
    assert code == 0 and "reject" in output and "not [b]pos[/b]" in output, output
    code, output = _cli(live, "review", "next", project.id)
    assert code == 0 and "nothing is waiting" in output
    code, output = _cli(live, "tasks", "history", first)
    assert code == 0, output
    steps = [kind for kind in ("created", "leased", "response", "review_claimed", "reviewed") if kind in output]
    assert steps == ["created", "leased", "response", "review_claimed", "reviewed"]


def test_gold_import_marks_tasks_or_names_the_bad_line(
    live: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.console, "width", 250)  # gold list's table whole, whatever COLUMNS the run has
    with live.client() as client:
        project = client.projects.create("cli gold", spec=SPEC)
        task = client.tasks.create(project.id, {"text": "meh"}, unique_id="g1")
    table = tmp_path / "gold.csv"
    table.write_text("unique_id,sentiment\ng1,neg\ng2,pos\n")
    code, output = _cli(live, "gold", "import", project.id, str(table))
    assert code == 2 and "nothing was marked: line 3: no task has unique_id 'g2'" in output, output
    table.write_text(f"task_id,sentiment\n{task.id},neg\n")
    # the project named as `truthset import` and `predictions import` name it, after the file
    code, output = _cli(live, "gold", "import", str(table), "--project", project.id)
    assert code == 0 and "1 lines: 1 tasks marked gold" in output, output
    with live.client() as client:
        assert client.tasks.get(task.id).status == "gold"
        assert [(t.id, t.gold) for t in client.projects.gold(project.id)] == [(task.id, {"sentiment": "neg"})]
    code, output = _cli(live, "gold", "list", f"--project={project.id}")
    assert code == 0 and task.id in output and '{"sentiment": "neg"}' in output and "g1" in output, output
    code, output = _cli(live, "gold", "unmark", task.id)
    assert code == 0 and f"task {task.id} is no longer gold: pending" in output, output
    code, output = _cli(live, "gold", "list", project.id)
    assert code == 0 and "no gold task" in output, output
    with live.client() as client:
        assert client.tasks.get(task.id).status == "pending"


def test_tasks_list_filters_and_bulk_priority(live: Any) -> None:
    with live.client() as client:
        project = client.projects.create("cli browse", spec=SPEC)
        client.tasks.import_tasks(
            project.id,
            [{"data": {"text": f"word{i} common"}, "metadata": {"lang": "fr" if i % 2 else "en"}} for i in range(6)],
        )
        found = list(client.tasks.list(project.id, search="word3", sort="-priority"))
        assert [t.data["text"] for t in found] == ["word3 common"]
        assert client.tasks.bulk(project.id, "cancel", filter={"metadata": {"lang": "fr"}}, dry_run=True).matched == 3
    code, output = _cli(live, "tasks", "list", project.id, "--meta", "lang=en", "--sort", "-created")
    assert code == 0 and output.count("pending") == 3, output
    assert output.index("word4") < output.index("word2") < output.index("word0")  # newest first
    code, output = _cli(live, "tasks", "list", project.id, "--meta", "lang")
    assert code == 2 and "key=value" in output
    code, output = _cli(
        live, "tasks", "bulk", project.id, "set_priority", "--search", "common", "--priority", "4", "--yes"
    )
    assert code == 0 and "6 tasks matched: 6 changed, 0 skipped" in output, output
    with live.client() as client:
        assert {t.priority for t in client.tasks.list(project.id)} == {4}


def test_the_project_option_moves_to_the_front_of_a_commands_arguments() -> None:
    assert cli._project_to_front(["gold.csv", "--project", "P", "--url", "u"]) == ["P", "gold.csv", "--url", "u"]
    assert cli._project_to_front(["--project=P", "gold.csv"]) == ["P", "gold.csv"]
    assert cli._project_to_front(["P", "gold.csv"]) == ["P", "gold.csv"]  # given first: as it was
    assert cli._project_to_front(["gold.csv", "--project"]) == ["gold.csv", "--project"]  # no value: Click says so
    assert cli._project_to_front(["--", "--project", "P"]) == ["--", "--project", "P"]  # positional by request


def test_a_project_with_tasks_is_deleted_with_its_data(live: Any) -> None:
    """``projects delete --with-data --confirm NAME --wait``: the job runs in the server, the project is gone."""
    with live.client() as client:
        project = client.projects.create("cli doomed", SPEC)
        client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(3)])
    code, output = _cli(live, "projects", "delete", project.id)
    assert code == 1  # the server's 409 project_has_tasks (main() prints it as one line)
    code, output = _cli(live, "projects", "delete", project.id, "--with-data")
    assert code == 2 and "repeat the project's name with --confirm" in output, output
    code, output = _cli(live, "projects", "delete", project.id, "--with-data", "--confirm", "cli doomed", "--wait")
    assert code == 0, output
    assert "project.delete job" in output and f"deleted project {project.id} with 3 tasks and 0 files" in output
    with live.client() as client:
        assert project.id not in {p.id for p in client.projects.list(include_archived=True)}


IMAGE_SPEC = {
    "fields": [{"name": "image", "type": "image"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}


def _png(color: tuple[int, int, int], size: tuple[int, int] = (5, 4)) -> bytes:
    """A real PNG of one colour (the server decodes every upload)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def test_media_list_shows_the_uploads_by_name_newest_first(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``media list``: the SDK's ``list_media`` through the CLI, filtered by file name."""
    monkeypatch.setattr(cli.console, "width", 250)  # every column whole, whatever COLUMNS the run has
    with live.client() as client:
        older = client.upload_media(_png((1, 2, 3), (6, 7)), filename="Listed-Zebra.png")
        newer = client.upload_media(_png((1, 2, 3), (7, 8)), filename="listed-zebra-2.png")
        client.upload_media(_png((1, 2, 3), (8, 9)), filename="other.png")
        assert [m.id for m in client.list_media(filename="LISTED-ZEBRA", page_size=1)] == [newer.id, older.id]
    code, output = _cli(live, "media", "list", "--filename", "listed-zebra")
    assert code == 0, output
    assert newer.reference in output and older.reference in output and "other.png" not in output
    assert output.index(newer.reference) < output.index(older.reference)  # newest first
    assert "7x8" in output and "6x7" in output and "image/png" in output and " B" in output
    code, output = _cli(live, "media", "list", "--filename", "listed-zebra", "--limit", "1")
    assert code == 0 and newer.reference in output and older.reference not in output, output


def test_media_delete_removes_an_image_no_task_names(live: Any) -> None:
    """``media delete``: the SDK's ``delete_media``; one a task names is refused in one line."""
    with live.client() as client:
        spare, named = client.upload_media(_png((1, 9, 1))), client.upload_media(_png((9, 1, 9)))
        project = client.projects.create("cli image delete", IMAGE_SPEC)
        task = client.tasks.create(project.id, {"image": named.reference})
    code, output = _cli(live, "media", "delete", spare.reference)
    assert code == 0 and f"deleted image {spare.reference}" in output, output
    result = runner.invoke(app, ["media", "delete", named.id, "--url", live.url, "--api-key", live.api_key])
    # the server's 409 (main() prints it as one line)
    assert isinstance(result.exception, ConflictError) and f"is named by task {task.id}" in str(result.exception)
    with live.client() as client, pytest.raises(NotFoundError):
        client._request("GET", f"/media/{spare.id}")


def test_media_prune_removes_the_images_no_task_names(live: Any) -> None:
    """``media prune --older-than-hours 0 --wait``: the job runs in the server; an image no task names
    is gone, one a task names stays."""
    with live.client() as client:
        unnamed, named = client.upload_media(_png((9, 8, 7))), client.upload_media(_png((7, 8, 9)))
        project = client.projects.create("cli images", IMAGE_SPEC)
        client.tasks.create(project.id, {"image": named.reference})
    code, output = _cli(live, "media", "prune", "--older-than-hours", "-1")
    assert code == 2 and "--older-than-hours" in output, output  # refused before the server is asked
    code, output = _cli(live, "media", "prune", "--older-than-hours", "0", "--wait")
    assert code == 0, output
    said = r"media\.prune job \w+: queued .*removed [1-9]\d* of [1-9]\d* images \(\d+ files, "
    assert re.search(said, output), output
    with live.client() as client, pytest.raises(NotFoundError):
        client._request("GET", f"/media/{unnamed.id}")
    with live.client() as client:
        assert client._request("GET", f"/media/{named.id}").status_code == 200

"""Round trips through the import formats, for every question type: a labelled project exported as
Label Studio JSON and imported back (docs/formats.md, "Label Studio" under both importing and
exporting).

What the docs promise, and what each test holds them to:

- the export's ``meta.truthset`` keeps what Label Studio has no place for, "so a round trip through
  Label Studio loses nothing": the task's id, ``unique_id``, batch, status, metadata, completion
  time, reviews, the whole result, and every response as the provenance (JSONL) export gives it;
- the import makes ``data`` the task's data and keeps everything else of a Label Studio task
  (``id``, ``meta``, ``annotations``, ``predictions``) whole in ``metadata.label_studio``, "so
  nothing is lost and an export can give it back"; the annotations are not turned into responses,
  so the imported tasks wait to be labelled and their ``unique_id`` stays unset (it travels in
  ``metadata.label_studio.meta.truthset``);
- importing the same file again adds nothing (the content hash of ``data`` and ``metadata``).

For each question type of the export sweep (tests/services/formats/test_format_matrix.py, whose
projects and helpers this reuses): t1 and t2 answered by two agreeing people (t1 then accepted by
a reviewer), and the open task predicted by a model, so a model's response with its scores is an
annotation of each type. The file is imported as an import job (the path every file format takes)
into a fresh project with the same spec in the same organization, and into one of another
organization, where an uploaded image is not the importer's: a shape project's lines are refused,
naming the image.

Not covered: a truthset JSONL export is not an import format (docs/formats.md documents no such
round trip; its lines carry ``task_id``, ``status``, ``result``... which a task object refuses by
name), and Label Studio itself is not run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from truthset.config import Settings
from truthset.jobs import Runner
from truthset.schemas import PredictionUpload, ResponseCreate
from truthset.services import export, imports, jobs, predictions, queue, review, tasks

from .test_format_matrix import BY_NAME, CASES, LABELLED, OPEN, Made, box, export_file, make, span

if TYPE_CHECKING:
    from conftest import Org

NAMES = [case.name for case in CASES]
UIDS = [*LABELLED, OPEN]
#: The model's answer to the open task where the labelled tasks' answers do not fit its data (its
#: text and its 50 x 50 image); any other case predicts t2's answer.
NOBODY = "Nobody answered this one."
PREDICTED: dict[str, dict[str, Any]] = {
    "spans": {"entities": [span(NOBODY, "Nobody", "PER")]},
    "boxes": {"objects": [box("person", 5, 5, 20, 30)]},
    "polygons": {"outline": [{"label": "curb", "points": [[0, 0], [40, 0], [40, 40]]}]},
}
SCORE = 0.75
#: The keys of a JSONL line that Label Studio holds outside ``meta.truthset``: ``data`` is the
#: task's ``data``, and ``answer`` is ``result.answer`` (kept whole in ``meta.truthset.result``).
OUTSIDE_META = {"data", "answer"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@dataclass
class Source:
    """A labelled project and its exports: the Label Studio file, its tasks and the JSONL lines
    (the provenance export), each by the task's ``unique_id``."""

    made: Made
    file: bytes
    items: dict[str, dict[str, Any]]
    lines: dict[str, dict[str, Any]]


def exported(org: Org, made: Made, media_dir: Path) -> Source:
    file = export_file(org, made, "label_studio", media_dir)
    items = {item["meta"]["truthset"]["unique_id"]: item for item in json.loads(file)}
    provenance = export_file(org, made, "jsonl", media_dir).decode().splitlines()
    lines = {line["unique_id"]: line for line in map(json.loads, provenance)}
    assert sorted(items) == sorted(lines) == sorted(made.ids)
    return Source(made, file, items, lines)


def labelled_source(org: Org, labelled: Callable, upload: Callable, media_dir: Path, name: str) -> Source:
    """The sweep's project of ``name``, t1 accepted by a reviewer and the open task predicted."""
    case = BY_NAME[name]
    made = make(org, labelled, upload, case)
    review.submit_review(org.db, org.principal_for("reviewer"), made.ids["t1"], "accept")
    answer = PREDICTED.get(name, case.answers[1])
    guesses = [{"unique_id": OPEN, "question": q, "answer": a, "score": SCORE} for q, a in answer.items()]
    body = PredictionUpload(model="tagger", version="v1", predictions=guesses)
    assert predictions.upload_predictions(org.db, org.owner.principal, made.project["id"], body)["stored"]
    return exported(org, made, media_dir)


def import_file(org: Org, settings: Settings, project_id: str, body: bytes) -> dict[str, Any]:
    """Import ``body`` as Label Studio JSON the way every file is imported (an import job); the job
    at its end."""
    job = imports.start_import(
        org.db,
        org.owner.principal,
        project_id,
        [body],
        settings=settings,
        filename="project.json",
        format="label-studio",
    )
    Runner(org.db, kinds=[imports.JOB_KIND], poll_seconds=0.02, settings=settings, name="round-trip").run_until_idle()
    return jobs.get_job(org.db, org.owner.principal, job["id"])


def imported_rows(org: Org, project_id: str) -> dict[str, dict[str, Any]]:
    """The project's tasks as the provenance export gives them, by the unique_id they came with."""
    rows = export.export_rows(org.db, org.owner.principal, project_id, status=None)
    return {row["metadata"]["label_studio"]["meta"]["truthset"]["unique_id"]: row for row in rows}


def check_provenance(source: Source) -> None:
    """The Label Studio file's ``meta.truthset`` holds everything of the JSONL line (the full
    provenance) that Label Studio has no place for: the same values, every response whole."""
    for uid, line in source.lines.items():
        item = source.items[uid]
        meta = item["meta"]["truthset"]
        assert item["data"] == line["data"]
        for key in set(line) - OUTSIDE_META:
            assert key in meta, f"{uid}: meta.truthset has no {key!r}"
            assert meta[key] == line[key], f"{uid}.{key}: {meta[key]!r} != {line[key]!r}"
        assert line["answer"] == (line["result"] or {}).get("answer")
        assert len(item["annotations"]) == len(line["responses"])


def check_imported(source: Source, org: Org, project_id: str) -> None:
    """The imported project holds each task of the file: its data as it was, everything else of the
    Label Studio task kept whole in ``metadata.label_studio`` (so the unique_id, metadata, answers
    with their workers, result, confidences and reviews are all there, equal to the source's), and
    nothing labelled yet (annotations are not responses)."""
    rows = imported_rows(org, project_id)
    assert sorted(rows) == sorted(UIDS)
    for uid, item in source.items.items():
        row, line = rows[uid], source.lines[uid]
        assert row["data"] == item["data"] == line["data"]
        assert row["metadata"] == {"label_studio": {key: value for key, value in item.items() if key != "data"}}
        assert row["unique_id"] is None  # not restored: an import reads only Label Studio's data
        assert row["responses"] == [] and row["result"] is None and row["reviews"] == []
        kept = row["metadata"]["label_studio"]["meta"]["truthset"]
        assert (kept["unique_id"], kept["metadata"], kept["task_id"]) == (uid, line["metadata"], line["task_id"])
        assert (kept["result"], kept["confidence"], kept["reviews"]) == (
            line["result"],
            line["confidence"],
            line["reviews"],
        )
        assert kept["responses"] == line["responses"]


def check_exported_again(source: Source, org: Org, made: Made, media_dir: Path) -> None:
    """The imported project exported as Label Studio again: the same data, and the first file's task
    given back in ``meta.truthset.metadata.label_studio``; no annotation or prediction of its own."""
    listed = json.loads(export_file(org, made, "label_studio", media_dir))
    assert len(listed) == len(UIDS)
    for task in listed:
        kept = task["meta"]["truthset"]["metadata"]["label_studio"]
        original = source.items[kept["meta"]["truthset"]["unique_id"]]
        assert task["data"] == original["data"]
        assert {"data": task["data"], **kept} == original
        assert task["annotations"] == [] and task["predictions"] == []


def check_annotations(source: Source) -> None:
    """Each response is an annotation of the question type, the model's too, and the final answer
    a prediction: what the round trip carries besides ``meta``."""
    for uid in LABELLED:
        item = source.items[uid]
        assert [a["completed_by"] for a in item["annotations"]] == [
            r["worker_id"] for r in source.lines[uid]["responses"]
        ]
        assert all(annotation["result"] for annotation in item["annotations"])
        assert len(item["predictions"]) == 1 and item["predictions"][0]["result"]
    opened = source.items[OPEN]
    (annotation,) = opened["annotations"]  # the model's prediction, never aggregated into a result
    (response,) = source.lines[OPEN]["responses"]
    assert response["worker_kind"] == "model" and response["scores"] is not None
    assert annotation["completed_by"] == response["worker_id"] and annotation["result"]
    assert opened["predictions"] == []


@pytest.mark.parametrize("name", NAMES)
def test_a_label_studio_export_imports_back_keeping_everything(
    org: Org, labelled: Callable, upload: Callable, media_dir: Path, settings: Settings, name: str
) -> None:
    source = labelled_source(org, labelled, upload, media_dir, name)
    check_provenance(source)
    check_annotations(source)
    fresh = org.make_project(spec=source.made.case.spec)
    job = import_file(org, settings, fresh["id"], source.file)
    assert job["status"] == "succeeded", job
    assert (job["result"]["created"], job["result"]["existing"], job["result"]["invalid"]) == (3, 0, 0)
    check_imported(source, org, fresh["id"])
    check_exported_again(source, org, Made(source.made.case, fresh, {}, source.made.data), media_dir)
    again = import_file(org, settings, fresh["id"], source.file)  # the same file: nothing new
    assert again["status"] == "succeeded", again
    assert (again["result"]["created"], again["result"]["existing"], again["result"]["invalid"]) == (0, 3, 0)
    assert len(imported_rows(org, fresh["id"])) == len(UIDS)


@pytest.mark.parametrize("name", NAMES)
def test_a_label_studio_export_imports_into_another_organization(
    org: Org, other_org: Org, labelled: Callable, upload: Callable, media_dir: Path, settings: Settings, name: str
) -> None:
    """Another organization imports the file as its own tasks, except an uploaded image, which is
    the first organization's: a shape project's every line is refused, naming it, and nothing is
    stored (tenants never see each other's data)."""
    source = labelled_source(org, labelled, upload, media_dir, name)
    project = other_org.make_project(spec=source.made.case.spec)
    job = import_file(other_org, settings, project["id"], source.file)
    if "photo" in source.made.data[0]:
        assert job["status"] == "failed" and job["result"]["stored"] is False, job
        photos = [item["data"]["photo"] for item in json.loads(source.file)]  # line by line
        for error, photo in zip(job["result"]["errors"], photos, strict=True):
            assert error["message"].startswith(f"data.photo: no uploaded image {photo} in this organization"), error
        assert imported_rows(other_org, project["id"]) == {}
        return
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == len(UIDS)
    check_imported(source, other_org, project["id"])
    again = import_file(other_org, settings, project["id"], source.file)
    assert (again["result"]["created"], again["result"]["existing"]) == (0, len(UIDS))


def test_a_models_scores_and_a_prefilled_answer_survive_the_round_trip(
    org: Org, media_dir: Path, settings: Settings
) -> None:
    """A model's prediction (its ``scores``) and a person's answer started from it (its ``prefill``)
    are in ``meta.truthset`` as the provenance export has them, and kept by the import.

    Why: the Label Studio writer kept each response's id, worker, time, duration, answer and
    review only, and a model's scores and a prefill were lost on the way through Label Studio."""
    case = BY_NAME["label"]
    project = org.make_project(spec=case.spec, quality={"overlap": 1, "prefill_predictions": True})
    report = tasks.import_tasks(
        org.db, org.owner.principal, project["id"], [(1, {"data": {"text": NOBODY}, "unique_id": OPEN})]
    )
    assert report.created == 1
    guess = [{"unique_id": OPEN, "question": "sentiment", "answer": "negative", "score": SCORE}]
    predictions.upload_predictions(
        org.db, org.owner.principal, project["id"], PredictionUpload(model="tagger", version="v1", predictions=guess)
    )
    person = org.add_member().principal
    lease = queue.next_assignment(org.db, person, project["id"])
    assert lease is not None
    shown = lease["predictions"]["sentiment"]["response_id"]
    answer = ResponseCreate(answer={"sentiment": "negative"}, assignment_id=lease["id"], prefill={"sentiment": shown})
    queue.submit(org.db, person, lease["task"]["id"], answer)
    made = Made(case, project, {OPEN: lease["task"]["id"]}, [])
    source = exported(org, made, media_dir)
    check_provenance(source)
    model, human = source.items[OPEN]["meta"]["truthset"]["responses"]
    assert model["worker_kind"] == "model" and model["scores"] is not None and model["prefill"] is None
    assert human["prefill"] == {"sentiment": {"response_id": shown, "worker_id": model["worker_id"], "accepted": True}}
    fresh = org.make_project(spec=case.spec)
    assert import_file(org, settings, fresh["id"], source.file)["status"] == "succeeded"
    (row,) = export.export_rows(org.db, org.owner.principal, fresh["id"], status=None)
    assert row["metadata"]["label_studio"]["meta"]["truthset"]["responses"] == source.lines[OPEN]["responses"]

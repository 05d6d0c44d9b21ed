"""Export jobs: POST /projects/{id}/exports answers 202 with a job; a runner writes the file from one
snapshot with progress; GET /exports/{job_id}/file downloads it (within the organization only);
cancel, filters and the delta cursor."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from truthset.config import Settings
from truthset.jobs import Runner
from truthset.services import export, export_jobs, jobs
from truthset.services.formats import jsonl
from truthset.storage import tables as t
from truthset.storage.ids import new_id, utcnow

from .helpers import ANSWER, API, Api, Org, assert_error, png_bytes


def run_exports(org: Org, settings: Settings) -> int:
    return Runner(org.db, kinds=[export_jobs.KIND], settings=settings).run_until_idle()


def start(api: Api, org: Org, project_id: str, **body: Any) -> dict[str, Any]:
    r = api.post(f"{API}/projects/{project_id}/exports", auth=org.owner, json=body)
    assert r.status_code == 202, r.text
    return r.json()


def finished(api: Api, org: Org, job_id: str) -> dict[str, Any]:
    job = api.get(f"{API}/jobs/{job_id}", auth=org.owner).json()
    assert job["status"] == "succeeded", job
    return job


def completed_tasks(api: Api, org: Org, n: int, **project: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    made_project = org.make_project(**project)
    made = org.make_tasks(made_project["id"], n)
    for task in made:
        api.post(f"{API}/tasks/{task['id']}/responses", auth=org.owner, json={"answer": ANSWER})
    return made_project, made


def test_an_export_job_writes_a_file_with_progress_and_is_downloaded(api: Api, org: Org, settings: Settings) -> None:
    project, made = completed_tasks(api, org, 5)
    job = start(api, org, project["id"])
    assert job["kind"] == "export" and job["status"] == "queued"
    assert job["payload"] == {"project_id": project["id"], "format": "jsonl", "filters": job["payload"]["filters"]}
    not_yet = api.get(f"{API}/exports/{job['id']}/file", auth=org.owner)
    assert assert_error(not_yet, 409, "export_not_ready")["details"] == {"status": "queued"}
    assert run_exports(org, settings) == 1
    done = finished(api, org, job["id"])
    assert done["progress"] == {"done": 5, "total": 5}
    result = done["result"]
    assert result["tasks"] == 5 and result["format"] == "jsonl" and result["project_id"] == project["id"]
    assert result["cursor"].endswith("Z") and result["expires_at"] > result["cursor"]
    r = api.get(f"{API}/exports/{job['id']}/file", auth=org.owner)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert f'filename="{result["download_name"]}"' in r.headers["content-disposition"]
    assert result["download_name"].endswith(f"-{job['id']}.jsonl")
    assert len(r.content) == result["size"] and hashlib.sha256(r.content).hexdigest() == result["sha256"]
    rows = [orjson.loads(line) for line in r.content.splitlines()]
    assert [row["task_id"] for row in rows] == [task["id"] for task in made]
    assert all(len(row["responses"]) == 1 and row["responses"][0]["answer"] == ANSWER for row in rows)
    # nothing else is left in the organization's export directory
    files = sorted(p.name for p in (settings.exports_dir / org.id).iterdir())
    assert files == [result["file"]]


def test_csv_and_parquet_jobs_read_back(api: Api, org: Org, settings: Settings) -> None:
    project, made = completed_tasks(api, org, 3)
    csv_job, parquet_job = (
        start(api, org, project["id"], format="csv"),
        start(api, org, project["id"], format="parquet"),
    )
    assert run_exports(org, settings) == 2
    text = api.get(f"{API}/exports/{csv_job['id']}/file", auth=org.owner)
    assert text.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(text.text)))
    assert [line["task_id"] for line in lines] == [task["id"] for task in made]
    assert {line["answer.sentiment"] for line in lines} == {"positive"}
    binary = api.get(f"{API}/exports/{parquet_job['id']}/file", auth=org.owner)
    table = pq.read_table(io.BytesIO(binary.content))
    assert table.column("task_id").to_pylist() == [task["id"] for task in made]
    assert [answer["sentiment"] for answer in table.column("answer").to_pylist()] == ["positive"] * 3


def test_a_format_spelled_as_imports_spell_it_is_that_format(api: Api, org: Org, settings: Settings) -> None:
    """Imports take `label-studio`, exports listed `label_studio` only: the import's name was a 422."""
    project, made = completed_tasks(api, org, 2)
    job = start(api, org, project["id"], format="Label-Studio")
    assert job["payload"]["format"] == "label_studio"
    assert run_exports(org, settings) == 1
    exported = orjson.loads(api.get(f"{API}/exports/{job['id']}/file", auth=org.owner).content)
    assert [task["meta"]["truthset"]["task_id"] for task in exported] == [task["id"] for task in made]


def test_an_unknown_format_is_refused_before_any_job(api: Api, org: Org) -> None:
    project = org.make_project()
    r = api.post(f"{API}/projects/{project['id']}/exports", auth=org.owner, json={"format": "xlsx"})
    error = assert_error(r, 422)
    assert error["details"]["field"] == "format" and "jsonl" in error["details"]["formats"]
    assert "the formats are: jsonl, csv, parquet" in error["message"]
    bad_cursor = api.post(f"{API}/projects/{project['id']}/exports", auth=org.owner, json={"updated_since": "soon"})
    assert assert_error(bad_cursor, 422)["details"]["field"] == "updated_since"
    assert api.get(f"{API}/jobs", auth=org.owner).json()["items"] == []


def test_another_organization_never_sees_an_export(api: Api, org: Org, other_org: Org, settings: Settings) -> None:
    project, _ = completed_tasks(api, org, 2)
    job = start(api, org, project["id"])
    run_exports(org, settings)
    theirs = api.get(f"{API}/exports/{job['id']}/file", auth=other_org.owner)
    missing = api.get(f"{API}/exports/{new_id()}/file", auth=other_org.owner)
    assert assert_error(theirs, 404, "not_found")["message"].replace(job["id"], "X") == assert_error(
        missing, 404, "not_found"
    )["message"].replace(missing.url.path.split("/")[-2], "X")
    r = api.post(f"{API}/projects/{project['id']}/exports", auth=other_org.owner, json={})
    assert_error(r, 404, "not_found")
    assert api.get(f"{API}/jobs/{job['id']}", auth=other_org.owner).status_code == 404
    # within the organization: reviewers read tasks and may download; annotators may not
    assert api.get(f"{API}/exports/{job['id']}/file", auth=org.actor("reviewer")).status_code == 200
    assert_error(api.get(f"{API}/exports/{job['id']}/file", auth=org.actor("annotator")), 403, "forbidden")
    assert_error(api.post(f"{API}/projects/{project['id']}/exports", auth=org.actor("annotator"), json={}), 403)


def test_a_job_of_another_kind_is_no_export(api: Api, org: Org) -> None:
    with org.db.write() as conn:
        other = jobs.enqueue(conn, org.id, "quality.refit", {"project_id": "x"}, created_by=org.owner.id)
    assert_error(api.get(f"{API}/exports/{other['id']}/file", auth=org.owner), 404, "not_found")


def test_a_canceled_export_leaves_no_file(
    api: Api, org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = completed_tasks(api, org, 4)
    job = start(api, org, project["id"])
    original = jsonl.WRITER.write
    monkeypatch.setattr(export, "EXPORT_BLOCK", 1)  # the writer gets the lines in blocks: one task each

    def cancel_midway(project: dict, rows: Any, out: Any) -> int:
        def rows_then_cancel() -> Any:
            for i, row in enumerate(rows):
                if i == 2:  # the manager cancels while the file is being written
                    assert api.post(f"{API}/jobs/{job['id']}/cancel", auth=org.owner).status_code == 200
                yield row

        return original(project, rows_then_cancel(), out)

    monkeypatch.setattr(jsonl.WRITER, "write", cancel_midway)
    run_exports(org, settings)
    assert api.get(f"{API}/jobs/{job['id']}", auth=org.owner).json()["status"] == "canceled"
    assert list((settings.exports_dir / org.id).iterdir()) == []
    assert_error(api.get(f"{API}/exports/{job['id']}/file", auth=org.owner), 409, "export_not_ready")


def test_a_failing_writer_leaves_no_partial_file(
    api: Api, org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = completed_tasks(api, org, 3)
    job = start(api, org, project["id"])

    def broken(project: dict, rows: Any, out: Any) -> int:
        out.write(b"half a line")
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(jsonl.WRITER, "write", broken)
    run_exports(org, settings)
    failed = api.get(f"{API}/jobs/{job['id']}", auth=org.owner).json()
    assert failed["status"] == "queued" and "the disk went away" in failed["error"]  # retried later
    assert list((settings.exports_dir / org.id).iterdir()) == []


def test_filters_and_the_delta_cursor(api: Api, org: Org, settings: Settings) -> None:
    project = org.make_project(overlap=2)
    batch = org.make_batch(project["id"])
    in_batch = org.make_tasks(project["id"], 2, batch_id=batch["id"])
    api.post(f"{API}/batches/{batch['id']}/finalize", auth=org.owner)
    loose = org.make_tasks(project["id"], 2)
    agreed, split = loose[-2:]  # make_tasks lists every task of the project
    annotator = org.actor("annotator")
    for actor, answer in ((org.owner, "positive"), (annotator, "positive")):
        api.post(f"{API}/tasks/{agreed['id']}/responses", auth=actor, json={"answer": {"sentiment": answer}})
    for actor, answer in ((org.owner, "positive"), (annotator, "negative")):
        api.post(f"{API}/tasks/{split['id']}/responses", auth=actor, json={"answer": {"sentiment": answer}})
    api.post(f"{API}/tasks/{agreed['id']}/reviews", auth=org.actor("reviewer"), json={"verdict": "accept"})

    def exported(**body: Any) -> tuple[list[str], dict[str, Any]]:
        job = start(api, org, project["id"], **body)
        run_exports(org, settings)
        result = finished(api, org, job["id"])["result"]
        content = api.get(f"{API}/exports/{job['id']}/file", auth=org.owner).content
        return [orjson.loads(line)["task_id"] for line in content.splitlines()], result

    assert exported()[0] == [agreed["id"], split["id"]]
    assert exported(all_statuses=True)[0] == [*(t["id"] for t in in_batch), agreed["id"], split["id"]]
    assert exported(batch_id=batch["id"], all_statuses=True)[0] == [t["id"] for t in in_batch]
    assert exported(status="pending", batch_id=batch["id"])[0] == [t["id"] for t in in_batch]
    assert exported(min_confidence=0.9)[0] == [agreed["id"]]
    assert exported(review_status="accepted")[0] == [agreed["id"]]
    # delta: the first export's cursor; a task changed afterwards is in the next export
    everything, first = exported(all_statuses=True)
    assert len(everything) == 4
    with org.db.write() as conn:  # the others changed long ago (older than the cursor's margin)
        long_ago = utcnow() - export_jobs.CURSOR_MARGIN * 3
        conn.execute(update(t.tasks).where(t.tasks.c.project_id == project["id"]).values(updated_at=long_ago))
    _, second = exported(all_statuses=True, updated_since=first["cursor"])
    assert second["tasks"] == 0 and second["filters"]["updated_since"] == first["cursor"]
    api.post(f"{API}/tasks/{in_batch[0]['id']}/responses", auth=org.owner, json={"answer": ANSWER})
    changed, third = exported(all_statuses=True, updated_since=second["cursor"])
    assert changed == [in_batch[0]["id"]]
    assert export_jobs.parse_cursor(third["cursor"]) > export_jobs.parse_cursor(second["cursor"])


def test_a_change_committed_after_the_snapshot_with_an_earlier_stamp_is_in_the_next_delta(
    api: Api, org: Org, settings: Settings
) -> None:
    """The cursor points CURSOR_MARGIN before the snapshot: a write stamped just before the export
    began but committed after its snapshot (it waited for the lock) is not missed."""
    project, made = completed_tasks(api, org, 2)
    _, first = None, None
    job = start(api, org, project["id"], all_statuses=True)
    run_exports(org, settings)
    first = finished(api, org, job["id"])["result"]
    snapshot_started = export_jobs.parse_cursor(first["cursor"]) + export_jobs.CURSOR_MARGIN
    with org.db.write() as conn:  # the late commit: stamped a minute before the first export's snapshot
        stamp = snapshot_started - timedelta(minutes=1)
        conn.execute(update(t.tasks).where(t.tasks.c.id == made[0]["id"]).values(updated_at=stamp))
        conn.execute(update(t.tasks).where(t.tasks.c.id == made[1]["id"]).values(updated_at=stamp - timedelta(hours=1)))
    delta = start(api, org, project["id"], all_statuses=True, updated_since=first["cursor"])
    run_exports(org, settings)
    content = api.get(f"{API}/exports/{delta['id']}/file", auth=org.owner).content
    assert [orjson.loads(line)["task_id"] for line in content.splitlines()] == [made[0]["id"]]


def test_old_files_expire(api: Api, org: Org, settings: Settings) -> None:
    project, _ = completed_tasks(api, org, 1)
    job = start(api, org, project["id"])
    run_exports(org, settings)
    result = finished(api, org, job["id"])["result"]
    path: Path = settings.exports_dir / org.id / result["file"]
    leftover = settings.exports_dir / org.id / f"{new_id()}-1.jsonl.part"
    leftover.write_bytes(b"half")
    later = path.stat().st_mtime + settings.export_retention_hours * 3600 + 1
    assert export_jobs.remove_expired(settings.exports_dir, settings.export_retention_hours, now=later) == 2
    assert not path.exists() and not leftover.exists()
    gone = api.get(f"{API}/exports/{job['id']}/file", auth=org.owner)
    assert "expired" in assert_error(gone, 404, "export_expired")["message"]


BOXES_SPEC: dict[str, Any] = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "objects", "type": "boxes", "field": "photo", "labels": ["car", "person"]}],
}


def test_a_coco_export_reads_image_sizes_from_the_media_store_by_route_and_by_job(
    api: Api, org: Org, settings: Settings
) -> None:
    """The image formats need each image's size: both the synchronous route and the export job hand
    the writer the organization's media store, and pycocotools reads the file back."""
    from pycocotools.coco import COCO

    uploaded = api.post(f"{API}/media", auth=org.owner, files={"file": ("lot.png", png_bytes(40, 30), "image/png")})
    assert uploaded.status_code == 201, uploaded.text
    project = org.make_project(spec=BOXES_SPEC, overlap=1)
    task = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"photo": uploaded.json()["reference"]}}
    ).json()
    box = {"label": "car", "x": 4, "y": 5, "width": 10, "height": 8}
    sent = api.post(f"{API}/tasks/{task['id']}/responses", auth=org.owner, json={"answer": {"objects": [box]}})
    assert sent.status_code == 201, sent.text

    by_route = api.get(f"{API}/projects/{project['id']}/export", auth=org.owner, params={"format": "coco"})
    assert by_route.status_code == 200, by_route.text
    job = start(api, org, project["id"], format="coco")
    assert run_exports(org, settings) == 1
    finished(api, org, job["id"])
    by_job = api.get(f"{API}/exports/{job['id']}/file", auth=org.owner)
    assert by_job.status_code == 200
    for content in (by_route.content, by_job.content):
        path = settings.data_dir / "read-back.json"
        path.write_bytes(content)
        coco = COCO(str(path))
        (image,) = coco.loadImgs(coco.getImgIds())
        assert (image["width"], image["height"]) == (40, 30)
        (annotation,) = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert annotation["bbox"] == [4, 5, 10, 8]
        assert coco.loadCats(annotation["category_id"])[0]["name"] == "car"


def test_a_finished_export_job_announces_itself_to_webhooks(api: Api, org: Org, settings: Settings) -> None:
    """``export.ready``: recorded when the file is in place, naming the job, its file and where to get it."""
    project, _ = completed_tasks(api, org, 2)
    hook = {"url": "https://93.184.216.34/exports", "events": ["export.ready"], "project_id": project["id"]}
    created = api.post(f"{API}/webhooks", auth=org.owner, json=hook)
    assert created.status_code == 201, created.text
    job = start(api, org, project["id"], format="csv")
    assert run_exports(org, settings) == 1
    result = finished(api, org, job["id"])["result"]
    deliveries = api.get(f"{API}/webhooks/{created.json()['id']}/deliveries", auth=org.owner).json()["items"]
    assert [d["event"] for d in deliveries] == ["export.ready"]
    detail = api.get(f"{API}/webhook-deliveries/{deliveries[0]['id']}", auth=org.owner).json()
    announced = detail["payload"]["export"]
    assert announced["job_id"] == job["id"] and announced["sha256"] == result["sha256"], detail
    assert announced["download"] == f"/api/v1/exports/{job['id']}/file" and announced["format"] == "csv"


BOXES_AND_POLYGONS_SPEC: dict[str, Any] = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [
        {"name": "objects", "type": "boxes", "field": "photo", "labels": ["car", "person"]},
        {"name": "outline", "type": "polygons", "field": "photo", "labels": ["road"]},
        {"name": "quality", "type": "label", "options": ["good", "blurry"], "required": False},
    ],
}


def test_an_export_names_its_questions_a_yolo_dataset_of_one_kind(api: Api, org: Org, settings: Settings) -> None:
    """A spec with boxes and polygons questions cannot be one YOLO dataset; naming the boxes question
    (job body and the synchronous route alike) writes the detect dataset of that question alone."""
    import zipfile

    uploaded = api.post(f"{API}/media", auth=org.owner, files={"file": ("lot.png", png_bytes(40, 20), "image/png")})
    project = org.make_project(spec=BOXES_AND_POLYGONS_SPEC, overlap=1)
    task = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"photo": uploaded.json()["reference"]}}
    ).json()
    answer = {
        "objects": [{"label": "person", "x": 0, "y": 0, "width": 20, "height": 10}],
        "outline": [{"label": "road", "points": [[0, 0], [40, 0], [40, 20]]}],
        "quality": "good",
    }
    sent = api.post(f"{API}/tasks/{task['id']}/responses", auth=org.owner, json={"answer": answer})
    assert sent.status_code == 201, sent.text
    exports = f"{API}/projects/{project['id']}/exports"

    both = api.post(exports, auth=org.owner, json={"format": "yolo"})
    refused = assert_error(both, 422, "invalid_input")
    assert "both boxes and polygons" in refused["message"] and refused["details"]["field"] == "questions"
    job = start(api, org, project["id"], format="yolo", questions=["objects"])
    assert job["payload"]["questions"] == ["objects"]
    assert run_exports(org, settings) == 1
    finished(api, org, job["id"])
    by_job = api.get(f"{API}/exports/{job['id']}/file", auth=org.owner).content
    by_route = api.get(
        f"{API}/projects/{project['id']}/export", auth=org.owner, params={"format": "yolo", "questions": "objects"}
    )
    assert by_route.status_code == 200, by_route.text
    for content in (by_job, by_route.content):
        zipped = zipfile.ZipFile(io.BytesIO(content))
        assert 'names:\n  0: "car"\n  1: "person"\n' in zipped.read("data.yaml").decode()  # no "road"
        assert zipped.read(f"labels/{task['id']}.txt").decode() == "1 0.250000 0.250000 0.500000 0.500000\n"

    segment = start(api, org, project["id"], format="yolo", questions=["outline"])
    run_exports(org, settings)
    finished(api, org, segment["id"])
    zipped = zipfile.ZipFile(io.BytesIO(api.get(f"{API}/exports/{segment['id']}/file", auth=org.owner).content))
    assert zipped.read(f"labels/{task['id']}.txt").decode().split()[0] == "0"  # road, the only class
    assert len(zipped.read(f"labels/{task['id']}.txt").decode().split()) == 7  # class + three points


def test_a_csv_export_of_some_questions_has_their_columns_only(api: Api, org: Org, settings: Settings) -> None:
    uploaded = api.post(f"{API}/media", auth=org.owner, files={"file": ("lot.png", png_bytes(8, 8), "image/png")})
    project = org.make_project(spec=BOXES_AND_POLYGONS_SPEC, overlap=1)
    data = {"data": {"photo": uploaded.json()["reference"]}}
    assert api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json=data).status_code == 201
    job = start(api, org, project["id"], format="csv", all_statuses=True, questions=["quality", "objects"])
    run_exports(org, settings)
    finished(api, org, job["id"])
    text = api.get(f"{API}/exports/{job['id']}/file", auth=org.owner).text
    header = next(csv.reader(io.StringIO(text)))
    assert [c for c in header if c.startswith("answer.")] == ["answer.objects", "answer.quality"]  # spec order


def test_export_questions_are_checked_before_any_job(api: Api, org: Org) -> None:
    project = org.make_project(spec=BOXES_AND_POLYGONS_SPEC)
    exports = f"{API}/projects/{project['id']}/exports"
    body = {"format": "csv", "questions": ["objects", "cars"]}
    unknown = assert_error(api.post(exports, auth=org.owner, json=body), 422)
    assert unknown["message"] == (
        "questions: 'cars' is not a question of this project; its questions are: objects, outline, quality"
    )
    assert unknown["details"]["questions"] == ["objects", "outline", "quality"]
    assert unknown["details"]["field"] == "questions"
    whole = assert_error(api.post(exports, auth=org.owner, json={"format": "jsonl", "questions": ["objects"]}), 422)
    assert whole["message"].startswith("questions: the jsonl format writes each task whole")
    empty = api.post(exports, auth=org.owner, json={"format": "csv", "questions": []})
    assert empty.status_code == 422
    # the chosen questions must still suit the format: a label question is no YOLO dataset
    no_shapes = assert_error(api.post(exports, auth=org.owner, json={"format": "yolo", "questions": ["quality"]}), 422)
    assert "no boxes or polygons question" in no_shapes["message"]
    assert api.get(f"{API}/jobs", auth=org.owner, params={"kind": "export"}).json()["items"] == []

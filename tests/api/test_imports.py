"""Import jobs through the API: every format, idempotence, bad input, zip safety, progress, cancel,
a crashed run resumed without duplicates, and tenant isolation."""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from truthset.config import Settings
from truthset.jobs import Runner, handler_for
from truthset.services import imports, jobs
from truthset.services.jobs import JobContext
from truthset.storage.ids import utcnow

from .helpers import API, Api, Org, assert_error

IMAGE_SPEC = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "kind", "type": "label", "options": ["cat", "dog"]}],
}


def upload(api: Api, org: Org, project_id: str, body: bytes, filename: str, **params: Any) -> Any:
    return api.post(
        f"{API}/projects/{project_id}/imports",
        params={"filename": filename, **params},
        content=body,
        headers={"Content-Type": "application/octet-stream"},
        auth=org.owner,
    )


def settings_of(api: Api) -> Settings:
    return api.app.state.settings


def run_jobs(api: Api) -> None:
    Runner(api.app.state.db, kinds=["import"], settings=settings_of(api)).run_until_idle()


def imported(api: Api, org: Org, project_id: str, body: bytes, filename: str, **params: Any) -> dict[str, Any]:
    """Upload, run the job, and return the job as the API shows it at the end."""
    response = upload(api, org, project_id, body, filename, **params)
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "import" and response.json()["status"] == "queued"
    run_jobs(api)
    return api.get(f"{API}/jobs/{response.json()['id']}", auth=org.owner).json()


def tasks_of(api: Api, org: Org, project_id: str) -> list[dict[str, Any]]:
    page = api.get(f"{API}/tasks", params={"project_id": project_id, "limit": 1000}, auth=org.owner).json()
    return page["items"]


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def image(kind: str = "PNG", size: tuple[int, int] = (3, 2), colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, kind)
    return out.getvalue()


def archive(entries: dict[str, bytes], *, links: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0  # a symbolic link (as `zip --symlinks` writes one)
            zf.writestr(info, "/etc/passwd")
    return out.getvalue()


def no_files_left(api: Api) -> bool:
    root = settings_of(api).imports_dir
    return not root.exists() or not [p for p in root.rglob("*") if p.is_file()]


# --- formats -------------------------------------------------------------------------------------


def test_jsonl_import_runs_as_a_job_and_a_second_run_adds_nothing(api: Api, org: Org) -> None:
    project = org.make_project()
    body = jsonl([{"data": {"text": f"t{n}"}} for n in range(5)] + [{"data": {"text": "u"}, "unique_id": "u1"}])
    job = imported(api, org, project["id"], body, "tasks.jsonl")
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 6 and job["result"]["invalid"] == 0
    assert job["progress"] == {"done": 6, "total": 6}
    assert job["payload"]["filename"] == "tasks.jsonl" and job["payload"]["format"] == "jsonl"
    again = imported(api, org, project["id"], body, "tasks.jsonl")
    assert again["result"]["created"] == 0 and again["result"]["existing"] == 6
    assert len(tasks_of(api, org, project["id"])) == 6
    assert no_files_left(api)  # the uploads are deleted once imported


def test_the_same_task_through_two_formats_is_one_task(api: Api, org: Org) -> None:
    """The content hash is of canonical JSON: key order and the format it came in do not matter."""
    project = org.make_project()
    first = imported(api, org, project["id"], b'[{"metadata": {"b": 1, "a": [1, 2]}, "data": {"text": "x"}}]', "t.json")
    assert first["result"]["created"] == 1
    body = b'text,metadata.a,metadata.b\nx,"[1, 2]",{"no": "json"}\n'.replace(b'{"no": "json"}', b"1")
    second = imported(api, org, project["id"], body, "t.csv")
    # metadata.b is the text "1" in a CSV (not a JSON list or object): a different task
    assert second["result"]["created"] == 1
    third = imported(
        api, org, project["id"], jsonl([{"data": {"text": "x"}, "metadata": {"a": [1, 2], "b": 1}}]), "t.jsonl"
    )
    assert third["result"] == {**third["result"], "created": 0, "existing": 1}


def test_csv_cells_hold_json_lists_and_objects_and_extra_columns_go_to_metadata(api: Api, org: Org) -> None:
    project = org.make_project()
    body = (
        b"text,unique_id,priority,metadata.tags,source\n"
        b'hello,c1,3,"[""a"", ""b""]",web\n'
        b'world,,,"{""k"": 1}",mail\n'
        b"[not json,,,,x\n"
    )
    job = imported(api, org, project["id"], body, "tasks.csv")
    assert job["result"]["created"] == 3, job
    by_text = {t["data"]["text"]: t for t in tasks_of(api, org, project["id"])}
    assert by_text["hello"]["unique_id"] == "c1" and by_text["hello"]["priority"] == 3
    assert by_text["hello"]["metadata"] == {"tags": ["a", "b"], "source": "web"}
    assert by_text["world"]["metadata"] == {"tags": {"k": 1}, "source": "mail"}
    assert by_text["[not json"]["metadata"] == {"tags": "", "source": "x"}
    assert imported(api, org, project["id"], body, "tasks.csv")["result"]["existing"] == 3


def test_bad_csv_rows_are_named_by_file_line_and_skipped(api: Api, org: Org) -> None:
    project = org.make_project()
    body = b"text,priority\nok 1,1\nbad,abc\ntoo,many,cells\n\xff\xfe bad bytes,2\nok 2,\n"
    rejected = imported(api, org, project["id"], body, "t.csv")
    assert rejected["status"] == "failed" and "4 invalid lines" not in rejected["error"]
    report = rejected["result"]
    assert [e["line"] for e in report["errors"]] == [3, 4, 5] and report["stored"] is False
    assert "priority" in report["errors"][0]["message"] and "3 cells" in report["errors"][1]["message"]
    assert "UTF-8" in report["errors"][2]["message"]
    assert tasks_of(api, org, project["id"]) == []
    skipped = imported(api, org, project["id"], body, "t.csv", on_error="skip")
    assert skipped["status"] == "succeeded" and skipped["result"]["created"] == 2
    assert sorted(t["data"]["text"] for t in tasks_of(api, org, project["id"])) == ["ok 1", "ok 2"]


def test_a_datasets_flat_jsonl_records_map_as_csv_columns_do(api: Api, org: Org) -> None:
    """Hugging Face datasets and most tools write JSONL records with the fields at the top level: keys
    named like a field are the data, unique_id/priority lift out, the rest goes to metadata. A line
    with no field at all still needs its data; the same file again adds nothing."""
    project = org.make_project()
    body = (
        b'{"text": "good film", "label": 1, "idx": 7}\n'
        b'{"text": "dull", "unique_id": "r2", "priority": 3, "metadata.source": "imdb"}\n'
        b'{"data": {"text": "already a task"}}\n'
        b'{"review": "no field of the spec"}\n'
    )
    job = imported(api, org, project["id"], body, "train.jsonl", on_error="skip")
    assert job["status"] == "succeeded" and job["result"]["created"] == 3, job
    (error,) = job["result"]["errors"]
    assert error["line"] == 4 and "data" in error["message"]
    stored = {t["data"]["text"]: t for t in tasks_of(api, org, project["id"])}
    assert stored["good film"]["metadata"] == {"label": 1, "idx": 7}
    assert (stored["dull"]["unique_id"], stored["dull"]["priority"]) == ("r2", 3)
    assert stored["dull"]["metadata"] == {"source": "imdb"}
    again = imported(api, org, project["id"], body, "train.jsonl", on_error="skip")
    assert (again["result"]["created"], again["result"]["existing"]) == (0, 3)


def test_an_empty_cell_of_a_required_text_field_is_that_lines_error(api: Api, org: Org) -> None:
    project = org.make_project()
    body = b"text,source\nfirst,web\n,forum\n"
    skipped = imported(api, org, project["id"], body, "t.csv", on_error="skip")
    assert skipped["status"] == "succeeded" and skipped["result"]["created"] == 1
    (error,) = skipped["result"]["errors"]
    assert error["line"] == 3 and "data.text is required and is empty" in error["message"]


def test_parquet_of_a_hugging_face_dataset_its_columns_become_fields(api: Api, org: Org) -> None:
    project = org.make_project()
    table = pa.table({"text": ["good", "bad", "meh"], "label": [1, 0, 2], "idx": [10, 11, 12]})
    job = imported(api, org, project["id"], parquet(table), "train-00000-of-00001.parquet")
    assert job["status"] == "succeeded" and job["result"]["created"] == 3
    stored = sorted(tasks_of(api, org, project["id"]), key=lambda t: t["metadata"]["idx"])
    assert (stored[0]["data"], stored[0]["metadata"]) == ({"text": "good"}, {"label": 1, "idx": 10})
    assert imported(api, org, project["id"], parquet(table), "t.parquet")["result"]["existing"] == 3


def test_parquet_rows_shaped_as_tasks_and_binary_cells_refused_by_row(api: Api, org: Org) -> None:
    project = org.make_project()
    table = pa.table(
        {
            "data": [{"text": "a"}, {"text": "b"}],
            "unique_id": ["p1", None],
            "priority": [5, None],
            "metadata": [{"blob": None}, {"blob": b"\x89PNG"}],
        }
    )
    job = imported(api, org, project["id"], parquet(table), "t.parquet", on_error="skip")
    assert job["result"]["created"] == 1 and job["result"]["errors"][0]["line"] == 2
    assert "binary" in job["result"]["errors"][0]["message"]
    (task,) = tasks_of(api, org, project["id"])
    assert (task["unique_id"], task["priority"], task["data"]) == ("p1", 5, {"text": "a"})


def test_a_file_that_is_not_parquet_is_refused_at_upload(api: Api, org: Org) -> None:
    project = org.make_project()
    error = assert_error(upload(api, org, project["id"], b"PAR1 not really", "t.parquet"), 422, "invalid_input")
    assert error["message"].startswith("not a Parquet file") and error["details"]["field"] == "file"
    assert no_files_left(api)


def test_label_studio_tasks_keep_annotations_and_predictions_in_metadata(api: Api, org: Org) -> None:
    project = org.make_project()
    exported = [
        {
            "id": 7,
            "data": {"text": "great"},
            "annotations": [{"id": 1, "completed_by": 3, "result": [{"from_name": "sentiment", "to_name": "text",
                             "type": "choices", "value": {"choices": ["positive"]}}]}],
            "predictions": [{"model_version": "v1", "score": 0.75, "result": []}],
            "meta": {"source": "ls"},
        },
        {"text": "plain data, no wrapper"},
    ]  # fmt: skip
    body = orjson.dumps(exported)
    job = imported(api, org, project["id"], body, "project-1.json", format="label-studio")
    assert job["status"] == "succeeded" and job["result"]["created"] == 2, job
    by_text = {t["data"]["text"]: t for t in tasks_of(api, org, project["id"])}
    kept = by_text["great"]["metadata"]["label_studio"]
    assert kept == {key: value for key, value in exported[0].items() if key != "data"}  # nothing lost
    assert by_text["plain data, no wrapper"]["metadata"] == {}
    again = imported(api, org, project["id"], body, "project-1.json", format="label-studio")
    assert again["result"]["existing"] == 2
    spelled_as_exports_do = imported(api, org, project["id"], body, "project-1.json", format="label_studio")
    assert spelled_as_exports_do["result"]["existing"] == 2


def test_a_zip_of_images_makes_one_task_per_image_with_its_size(api: Api, org: Org) -> None:
    project = org.make_project(spec=IMAGE_SPEC)
    body = archive(
        {
            "cats/a.png": image("PNG", (3, 2)),
            "cats/b.jpg": image("JPEG", (5, 4), "blue"),
            "__MACOSX/cats/._a.png": b"resource fork",
            ".DS_Store": b"junk",
        }
    )
    job = imported(api, org, project["id"], body, "cats.zip")
    assert job["status"] == "succeeded" and job["result"]["created"] == 2, job
    stored = sorted(tasks_of(api, org, project["id"]), key=lambda t: t["metadata"]["file"])
    assert [(t["metadata"]["file"], t["metadata"]["width"], t["metadata"]["height"]) for t in stored] == [
        ("cats/a.png", 3, 2),
        ("cats/b.jpg", 5, 4),
    ]
    media_id = stored[1]["data"]["photo"].removeprefix("media:")
    row = api.get(f"{API}/media/{media_id}", auth=org.owner)
    assert row.status_code == 200 and row.headers["content-type"] == "image/jpeg"
    assert imported(api, org, project["id"], body, "cats.zip")["result"]["existing"] == 2


def test_a_bad_image_in_a_zip_is_named_and_reject_stores_nothing(api: Api, org: Org) -> None:
    project = org.make_project(spec=IMAGE_SPEC)
    truncated = image("PNG", (40, 40))[:60]
    body = archive({"a.png": image(), "b.png": truncated, "notes.txt": b"hello"})
    rejected = imported(api, org, project["id"], body, "imgs.zip")
    assert rejected["status"] == "failed"
    errors = rejected["result"]["errors"]
    assert [(e["line"], e["message"].split(":")[0]) for e in errors] == [(2, "b.png"), (3, "notes.txt")]
    assert "not a readable image" in errors[0]["message"]
    assert tasks_of(api, org, project["id"]) == []
    skipped = imported(api, org, project["id"], body, "imgs.zip", on_error="skip")
    assert skipped["result"]["created"] == 1 and skipped["result"]["invalid"] == 2


@pytest.mark.parametrize(
    ("entries", "links", "refused"),
    [
        ({"../evil.png": b"x"}, (), "'..' is refused"),
        ({"a/../../evil.png": b"x"}, (), "'..' is refused"),
        ({"/etc/evil.png": b"x"}, (), "absolute path"),
        ({"C:/evil.png": b"x"}, (), "absolute path"),
        ({"ok.png": b"x"}, ("link.png",), "symbolic link"),
    ],
)
def test_a_zip_slip_archive_is_refused_at_upload(
    api: Api, org: Org, entries: dict[str, bytes], links: tuple[str, ...], refused: str
) -> None:
    project = org.make_project(spec=IMAGE_SPEC)
    error = assert_error(upload(api, org, project["id"], archive(entries, links=links), "x.zip"), 422)
    assert refused in error["message"] and error["details"]["field"] == "file"
    assert no_files_left(api) and tasks_of(api, org, project["id"]) == []


def test_a_zip_bomb_is_refused_by_unpacked_size_and_entry_count(
    make_api: Callable[..., Api], org: Org, settings: Settings
) -> None:
    api = make_api(settings.model_copy(update={"max_import_file_bytes": 64 * 1024, "max_import_entries": 3}))
    project = org.make_project(spec=IMAGE_SPEC)
    bomb = archive({"a.png": b"\0" * (1 << 20)})  # 1 MiB of zeros: about 1 KiB packed
    assert len(bomb) < 64 * 1024
    error = assert_error(upload(api, org, project["id"], bomb, "bomb.zip"), 413, "too_large")
    assert "zip-bomb" in error["message"] or "unpacks to" in error["message"]
    many = archive({f"{n}.png": image() for n in range(4)})
    error = assert_error(upload(api, org, project["id"], many, "many.zip"), 413, "too_large")
    assert "4 entries, more than 3" in error["message"]
    assert no_files_left(api)


def test_not_a_zip_and_no_image_field_are_clear_422s(api: Api, org: Org) -> None:
    text_project = org.make_project()
    error = assert_error(upload(api, org, text_project["id"], archive({"a.png": image()}), "a.zip"), 422)
    assert "needs one image field" in error["message"] and error["details"]["field"] == "field"
    image_project = org.make_project(spec=IMAGE_SPEC)
    error = assert_error(upload(api, org, image_project["id"], b"PK not a zip", "a.zip"), 422)
    assert error["message"].startswith("not a zip archive")


def test_an_unknown_format_names_the_formats_and_an_oversized_file_is_413(
    make_api: Callable[..., Api], org: Org, settings: Settings
) -> None:
    api = make_api(settings.model_copy(update={"max_import_file_bytes": 2048}))
    project = org.make_project()
    error = assert_error(upload(api, org, project["id"], b"x", "tasks.xml"), 422, "invalid_input")
    assert "jsonl, json, csv, parquet, label-studio, images" in error["message"]
    assert error["details"]["field"] == "format"
    big = jsonl([{"data": {"text": "x" * 100}}] * 40)
    error = assert_error(upload(api, org, project["id"], big, "big.jsonl"), 413, "too_large")
    assert no_files_left(api) and tasks_of(api, org, project["id"]) == []


# --- reject, progress, cancel, crash ---------------------------------------------------------------


def test_bad_lines_fail_the_job_with_the_report_and_store_nothing(api: Api, org: Org) -> None:
    project = org.make_project()
    body = b'{"data": {"text": "ok"}}\nnot json\n{"data": {"txt": "typo"}}\n'
    job = imported(api, org, project["id"], body, "t.jsonl")
    assert job["status"] == "failed" and "2 invalid lines (line 2: invalid JSON" in job["error"]
    assert job["result"]["stored"] is False and [e["line"] for e in job["result"]["errors"]] == [2, 3]
    assert tasks_of(api, org, project["id"]) == []
    assert job["attempts"] == 1  # bad input is not retried


def _many(n: int, prefix: str = "t") -> bytes:
    return jsonl([{"data": {"text": f"{prefix}{i}"}} for i in range(n)])


def test_cancel_stops_a_running_import_between_chunks(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    project = org.make_project()
    response = upload(api, org, project["id"], _many(5000), "t.jsonl")
    job_id = response.json()["id"]
    original = imports.import_tasks

    def cancel_at_first_progress(*args: Any, progress: Any, **kwargs: Any) -> Any:
        def canceling(done: int, total: int | None) -> None:
            jobs.cancel(org.db, org.owner.principal, job_id)  # as POST /jobs/{id}/cancel would
            progress(done, total)

        return original(*args, progress=canceling, **kwargs)

    monkeypatch.setattr(imports, "import_tasks", cancel_at_first_progress)
    run_jobs(api)
    job = api.get(f"{API}/jobs/{job_id}", auth=org.owner).json()
    assert job["status"] == "canceled" and job["locked_by"] is None
    assert tasks_of(api, org, project["id"]) == []  # stopped while checking: nothing stored
    assert no_files_left(api)


class Crash(BaseException):
    """Stands for the runner's process dying: nothing catches it, nothing is recorded."""


def test_a_crashed_import_is_resumed_by_another_runner_without_duplicates(
    api: Api, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = org.make_project()
    body = _many(5000) + jsonl([{"data": {"text": f"u{i}"}, "unique_id": f"u{i}"} for i in range(10)])
    job_id = upload(api, org, project["id"], body, "t.jsonl").json()["id"]
    db, settings = api.app.state.db, settings_of(api)
    handler = handler_for("import")
    assert handler is not None
    claimed = jobs.claim(db, "runner-a", ["import"], lease_seconds=30)
    assert claimed is not None and claimed["id"] == job_id
    context = JobContext(db, claimed, "runner-a", 30, settings=settings)
    original = imports.import_tasks

    def crash_after_the_first_stored_chunk(*args: Any, progress: Any, **kwargs: Any) -> Any:
        def crashing(done: int, total: int | None) -> None:
            progress(done, total)
            if total is not None:  # storing, with the first chunk committed
                raise Crash

        return original(*args, progress=crashing, **kwargs)

    monkeypatch.setattr(imports, "import_tasks", crash_after_the_first_stored_chunk)
    with pytest.raises(Crash):
        handler(db, context)
    stored_before = len(_all_texts(api, org, project["id"]))
    assert 0 < stored_before < 5010
    monkeypatch.setattr(imports, "import_tasks", original)
    # runner A is gone; once its lease has run out, runner B claims the job again and finishes it
    assert jobs.claim(db, "runner-b", ["import"], lease_seconds=30) is None  # still leased to A
    later = utcnow() + timedelta(seconds=31)
    again = jobs.claim(db, "runner-b", ["import"], lease_seconds=30, now=later, look_first=False)
    assert again is not None and again["id"] == job_id and again["attempts"] == 2
    result = handler(db, JobContext(db, again, "runner-b", 30, settings=settings))
    assert result["existing"] == stored_before and result["created"] == 5010 - stored_before
    texts = _all_texts(api, org, project["id"])
    assert len(texts) == len(set(texts)) == 5010


def _all_texts(api: Api, org: Org, project_id: str) -> list[str]:
    texts: list[str] = []
    cursor = None
    while True:
        params = {"project_id": project_id, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"{API}/tasks", params=params, auth=org.owner).json()
        texts += [t["data"]["text"] for t in page["items"]]
        if not (cursor := page["next_cursor"]):
            return texts


def test_progress_counts_rows_read_then_rows_stored(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    project = org.make_project()
    job_id = upload(api, org, project["id"], _many(4500), "t.jsonl").json()["id"]
    seen: list[tuple[int, int | None]] = []
    original = JobContext.progress

    def recording(self: JobContext, done: int, total: int | None = None) -> None:
        seen.append((done, total))
        original(self, done, total)

    monkeypatch.setattr(JobContext, "progress", recording)
    run_jobs(api)
    # checking: rows read so far (the next chunk is parsed ahead, so counts run early), then storing
    checking = [done for done, total in seen if total is None]
    assert checking == sorted(checking) and checking[-1] == 4500
    assert [step for step in seen if step[1] is not None] == [(2000, 4500), (4000, 4500), (4500, 4500)]
    job = api.get(f"{API}/jobs/{job_id}", auth=org.owner).json()
    assert job["progress"] == {"done": 4500, "total": 4500} and job["result"]["created"] == 4500


def test_an_upload_whose_job_never_runs_is_swept_by_a_later_import(api: Api, org: Org) -> None:
    project = org.make_project()
    canceled = upload(api, org, project["id"], _many(2), "old.jsonl").json()
    queued = upload(api, org, project["id"], _many(2, "q"), "waiting.jsonl").json()
    api.post(f"{API}/jobs/{canceled['id']}/cancel", auth=org.owner)  # canceled while queued: never runs
    root = settings_of(api).imports_dir
    files = {job["id"]: root / job["payload"]["file"] for job in (canceled, queued)}
    an_hour_ago = time.time() - 3601
    for path in files.values():
        os.utime(path, (an_hour_ago, an_hour_ago))
    upload(api, org, project["id"], _many(2, "new"), "new.jsonl")
    assert not files[canceled["id"]].exists()  # no job will read it
    assert files[queued["id"]].exists()  # still queued: kept however old


# --- tenants ---------------------------------------------------------------------------------------


def test_another_organization_never_sees_or_feeds_an_import(api: Api, org: Org, other_org: Org) -> None:
    project = org.make_project()
    job_id = upload(api, org, project["id"], _many(3), "t.jsonl").json()["id"]
    assert_error(api.get(f"{API}/jobs/{job_id}", auth=other_org.owner), 404, "not_found")
    assert_error(api.post(f"{API}/jobs/{job_id}/cancel", auth=other_org.owner), 404, "not_found")
    assert api.get(f"{API}/jobs", params={"kind": "import"}, auth=other_org.owner).json()["items"] == []
    into_theirs = api.post(
        f"{API}/projects/{project['id']}/imports",
        params={"filename": "t.jsonl"},
        content=_many(3, "intruder"),
        auth=other_org.owner,
    )
    assert_error(into_theirs, 404, "not_found")
    run_jobs(api)
    assert sorted(_all_texts(api, org, project["id"])) == ["t0", "t1", "t2"]
    assert no_files_left(api)


def test_an_annotator_cannot_start_an_import(api: Api, org: Org) -> None:
    project = org.make_project()
    annotator = org.actor("annotator")
    response = api.post(
        f"{API}/projects/{project['id']}/imports", params={"filename": "t.jsonl"}, content=_many(1), auth=annotator
    )
    assert_error(response, 403, "forbidden")
    assert no_files_left(api)

"""Removing the uploaded images no task names (services/media_pruning.py, the ``media.prune`` job).

An image that a task of the organization names stays; one that none names goes with its file once
it is older than the cut-off, unless another organization's row names the same file. Deleting a
project with its data queues the prune of its images a day later. SQLite always, PostgreSQL when
configured.
"""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select, update

from truthset.config import Settings
from truthset.domain import Role
from truthset.errors import Conflict, Forbidden, InvalidInput, NotFound
from truthset.jobs import Runner
from truthset.schemas import TaskCreate
from truthset.services import jobs, media, media_pruning, project_deletion, tasks
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.files import locked
from truthset.storage.ids import utcnow

if TYPE_CHECKING:
    from conftest import Org

IMAGE_SPEC = {
    "fields": [{"name": "image", "type": "image"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (3, 2), color).save(out, format="PNG")
    return out.getvalue()


def upload(org: Org, settings: Settings, color: str) -> dict[str, Any]:
    return media.store(
        org.db,
        org.owner.principal,
        [png(color)],
        filename=f"{color}.png",
        media_dir=settings.media_dir,
        max_bytes=1 << 20,
    )


def name_in_task(org: Org, project_id: str, row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = TaskCreate.model_validate({"data": {"image": f"media:{row['id']}"}, **extra})
    return tasks.create_task(org.db, org.owner.principal, project_id, body)


def age(db: Database, row: dict[str, Any], hours: float) -> None:
    """Make the upload ``hours`` old."""
    with db.write() as conn:
        conn.execute(
            update(t.media).where(t.media.c.id == row["id"]).values(created_at=utcnow() - timedelta(hours=hours))
        )


def exists(db: Database, row: dict[str, Any]) -> bool:
    with db.read() as conn:
        return conn.execute(select(t.media.c.id).where(t.media.c.id == row["id"])).first() is not None


def file_of(settings: Settings, row: dict[str, Any]) -> Path:
    return media.blob_path(settings.media_dir, row["sha256"])


def run(db: Database, settings: Settings, *kinds: str) -> int:
    return Runner(db, kinds=list(kinds), poll_seconds=0.02, settings=settings, name="test-runner").run_until_idle()


def finished(db: Database, job_id: str) -> dict[str, Any]:
    with db.read() as conn:
        job = dict(conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().one())
    assert job["status"] == "succeeded", job["error"]
    return job


def test_a_deleted_projects_images_go_a_day_later_unless_something_still_names_them(
    org: Org, other_org: Org, settings: Settings
) -> None:
    doomed = org.make_project(spec=IMAGE_SPEC, name="Doomed")
    kept = org.make_project(spec=IMAGE_SPEC, name="Kept")
    only_doomed, shared_in_org, unnamed = (upload(org, settings, c) for c in ("red", "green", "blue"))
    in_metadata = upload(org, settings, "white")
    same_bytes_elsewhere = upload(other_org, settings, "red")  # the same file as only_doomed
    assert same_bytes_elsewhere["sha256"] == only_doomed["sha256"]
    name_in_task(org, doomed["id"], only_doomed)
    name_in_task(org, doomed["id"], shared_in_org)
    name_in_task(org, kept["id"], shared_in_org)
    other_task = TaskCreate.model_validate(
        {"data": {"image": "https://example.com/a.png"}, "metadata": {"was": f"media:{in_metadata['id']}"}}
    )
    tasks.create_task(org.db, org.owner.principal, kept["id"], other_task)

    project_deletion.start(org.db, org.owner.principal, doomed["id"], "Doomed")
    assert run(org.db, settings, project_deletion.JOB_KIND) == 1
    with org.db.read() as conn:
        (scheduled,) = conn.execute(select(t.jobs).where(t.jobs.c.kind == media_pruning.JOB_KIND)).mappings()
    # a day later, with the deletion's time as the cut-off; nothing is removed before then
    assert scheduled["organization_id"] == org.id and scheduled["payload"]["project_ids"] == [doomed["id"]]
    assert scheduled["run_after"] - utcnow() > timedelta(hours=23)
    assert run(org.db, settings, media_pruning.JOB_KIND) == 0
    assert all(exists(org.db, row) for row in (only_doomed, shared_in_org, unnamed, in_metadata))

    with org.db.write() as conn:  # a day passes
        conn.execute(update(t.jobs).where(t.jobs.c.id == scheduled["id"]).values(run_after=utcnow()))
    assert run(org.db, settings, media_pruning.JOB_KIND) == 1
    result = finished(org.db, scheduled["id"])["result"]
    assert not exists(org.db, only_doomed) and not exists(org.db, unnamed)
    assert exists(org.db, shared_in_org) and exists(org.db, in_metadata)  # still named (data, metadata)
    assert file_of(settings, only_doomed).exists()  # the other organization's row names the same file
    assert not file_of(settings, unnamed).exists()
    assert file_of(settings, shared_in_org).exists() and file_of(settings, in_metadata).exists()
    assert exists(other_org.db, same_bytes_elsewhere)
    assert result["media_checked"] == 4 and result["media_removed"] == 2 and result["files_removed"] == 1
    assert result["bytes_removed"] == unnamed["size"] and result["tasks_read"] == 2

    # the other organization prunes its own: the last row naming the file goes, and the file with it
    job = media_pruning.start(other_org.db, other_org.owner.principal, older_than_hours=0)
    assert run(other_org.db, settings, media_pruning.JOB_KIND) == 1
    assert finished(other_org.db, job["id"])["result"]["files_removed"] == 1
    assert not exists(other_org.db, same_bytes_elsewhere) and not file_of(settings, only_doomed).exists()


def test_the_deletions_of_a_day_share_one_prune_that_starts_a_day_after_the_last(org: Org, settings: Settings) -> None:
    """Each prune reads every task of the organization: twenty deletions in a day are one read."""
    first, second, third = (org.make_project(spec=IMAGE_SPEC, name=f"Gone {i}") for i in range(3))
    with org.db.write() as conn:
        early = media_pruning.schedule_after_deletion(conn, org.id, first["id"])
    with org.db.write() as conn:
        later = media_pruning.schedule_after_deletion(conn, org.id, second["id"])
    assert later["id"] == early["id"] and later["payload"]["project_ids"] == [first["id"], second["id"]]
    with org.db.read() as conn:
        (waiting,) = conn.execute(select(t.jobs).where(t.jobs.c.kind == media_pruning.JOB_KIND)).mappings()
    assert waiting["payload"] == later["payload"] and waiting["run_after"] > early["run_after"]
    assert waiting["payload"]["uploaded_before"] > early["payload"]["uploaded_before"]  # the later deletion's

    with org.db.write() as conn:  # a runner has it: the next deletion queues a prune of its own
        conn.execute(update(t.jobs).where(t.jobs.c.id == waiting["id"]).values(status="running"))
    with org.db.write() as conn:
        own = media_pruning.schedule_after_deletion(conn, org.id, third["id"])
    assert own["id"] != waiting["id"] and own["payload"]["project_ids"] == [third["id"]]
    with org.db.write() as conn:  # and a waiting job that a runner claims meanwhile is not moved
        assert not jobs.reschedule_waiting(conn, waiting["id"], {"uploaded_before": "x"}, utcnow())


def test_an_upload_is_kept_until_it_is_older_than_the_cut_off(org: Org, settings: Settings) -> None:
    fresh, old = upload(org, settings, "red"), upload(org, settings, "blue")
    age(org.db, old, 25)
    job = media_pruning.start(org.db, org.owner.principal)  # 24 hours by default
    assert run(org.db, settings, media_pruning.JOB_KIND) == 1
    assert finished(org.db, job["id"])["result"]["media_removed"] == 1
    assert exists(org.db, fresh) and file_of(settings, fresh).exists()
    assert not exists(org.db, old) and not file_of(settings, old).exists()
    # an upload of the same bytes again brings the file back, with a new row
    again = upload(org, settings, "blue")
    assert again["id"] != old["id"] and file_of(settings, again).exists()


def test_files_no_row_names_are_removed_and_nothing_else(org: Org, settings: Settings) -> None:
    """A run that stopped between a chunk's commit and its files left files no row names: the next
    run removes them. What is not a stored file (temporaries, the lock, other names) stays."""
    kept = upload(org, settings, "red")
    orphan = settings.media_dir / "ab" / ("ab" + "c" * 62)
    orphan.parent.mkdir()
    orphan.write_bytes(b"12345")
    others = [
        settings.media_dir / "tmpq1w2e3",
        settings.media_dir / "ab" / "notes.txt",
        settings.media_dir / "ab" / ("cd" + "0" * 62),
    ]
    for path in others:
        path.write_bytes(b"x")
    kept_thumbnail, _ = media.thumbnail(org.db, org.owner.principal, kept["id"], settings.media_dir)
    orphan_thumbnail = media.thumbnail_path(settings.media_dir, orphan.name)  # of the orphan file
    orphan_thumbnail.parent.mkdir(parents=True, exist_ok=True)
    orphan_thumbnail.write_bytes(b"webp")
    gone_thumbnail = media.thumbnail_path(settings.media_dir, "ef" + "1" * 62)  # of a file long gone
    gone_thumbnail.parent.mkdir(parents=True, exist_ok=True)
    gone_thumbnail.write_bytes(b"webp")
    job = media_pruning.start(org.db, org.owner.principal)  # the upload is fresh: its row and file stay
    assert run(org.db, settings, media_pruning.JOB_KIND) == 1
    result = finished(org.db, job["id"])["result"]
    assert result["media_removed"] == 0 and result["files_removed"] == 1 and result["bytes_removed"] == 5
    assert not orphan.exists() and all(path.exists() for path in others)
    assert file_of(settings, kept).exists() and (settings.media_dir / media.LOCK_FILE).exists()
    assert kept_thumbnail.is_file() and not orphan_thumbnail.exists() and not gone_thumbnail.exists()


def test_a_task_made_while_the_prune_reads_keeps_its_image(
    org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = org.make_project(spec=IMAGE_SPEC)
    row = upload(org, settings, "red")
    read = media_pruning._named_media

    def read_then_a_task_arrives(db: Database, organization_id: str) -> Any:
        named = read(db, organization_id)
        name_in_task(org, project["id"], row)  # after the scan, before the deletion's transaction
        return named

    monkeypatch.setattr(media_pruning, "_named_media", read_then_a_task_arrives)
    job = media_pruning.start(org.db, org.owner.principal, older_than_hours=0)
    assert run(org.db, settings, media_pruning.JOB_KIND) == 1
    assert finished(org.db, job["id"])["result"]["media_removed"] == 0
    assert exists(org.db, row) and file_of(settings, row).exists()


def test_files_wait_for_an_upload_in_flight(org: Org, settings: Settings) -> None:
    """An upload holds the media directory's lock shared from its file's arrival to its row's
    commit; the removal of files waits for it, then sees the new row and keeps the file."""
    row = upload(org, settings, "red")
    with org.db.write() as conn:
        conn.execute(t.media.delete().where(t.media.c.id == row["id"]))
    done = threading.Event()
    removed: dict[str, int] = {}

    def remove() -> None:
        removed.update(media_pruning._unlink_unnamed(org.db, settings.media_dir, [row["sha256"]]))
        done.set()

    with locked(settings.media_dir / media.LOCK_FILE, exclusive=False):
        thread = threading.Thread(target=remove)
        thread.start()
        assert not done.wait(0.3)  # waits while the "upload" holds the lock
        again = media._add_row(org.db, org.owner.principal, row["sha256"], "image/png", row["size"], "red.png", 3, 2)
    thread.join(10)
    assert done.is_set() and removed == {} and file_of(settings, again).exists()


def test_only_owners_and_admins_prune_and_the_age_is_checked(org: Org) -> None:
    with pytest.raises(Forbidden):
        media_pruning.start(org.db, org.principal_for(Role.MANAGER))
    with pytest.raises(InvalidInput, match="older_than_hours"):
        media_pruning.start(org.db, org.owner.principal, older_than_hours=-1)
    job = media_pruning.start(org.db, org.principal_for(Role.ADMIN), older_than_hours=0)
    assert job["kind"] == "media.prune" and job["status"] == "queued"
    with org.db.read() as conn:
        assert (
            jobs.stored_key(dict(conn.execute(select(t.jobs).where(t.jobs.c.id == job["id"])).mappings().one())) is None
        )


def test_found_is_membership_in_the_sorted_keys() -> None:
    named = np.array(sorted(bytes([i]) * 12 for i in (3, 5, 9)), dtype="S12")
    keys = np.array([bytes([i]) * 12 for i in (1, 3, 4, 9, 200)], dtype="S12")
    assert media_pruning._found(named, keys).tolist() == [False, True, False, True, False]
    assert media_pruning._found(named[:0], keys).tolist() == [False] * 5


def test_a_task_may_only_name_images_the_organization_has(org: Org, other_org: Org, settings: Settings) -> None:
    """Never uploaded, another organization's, or pruned: a 422 naming the field for one task, an
    invalid line in an import (skipped with on_error=skip, nothing stored otherwise)."""
    project = org.make_project(spec=IMAGE_SPEC)
    ours, theirs, pruned = (
        upload(org, settings, "red"),
        upload(other_org, settings, "blue"),
        upload(org, settings, "green"),
    )
    media_pruning.start(org.db, org.owner.principal, older_than_hours=0)
    name_in_task(org, project["id"], ours)  # named: the prune keeps it
    assert run(org.db, settings, media_pruning.JOB_KIND) == 1 and not exists(org.db, pruned)
    for row in (theirs, pruned, {"id": "0123456789abcdef01234567"}):
        with pytest.raises(InvalidInput, match=f"data.image: no uploaded image media:{row['id']} in this organization"):
            name_in_task(org, project["id"], row)
    lines = [(n, {"data": {"image": f"media:{row['id']}"}}) for n, row in enumerate((ours, theirs, pruned), 1)]
    rejected = tasks.import_tasks(org.db, org.owner.principal, project["id"], lines)
    assert rejected.created == 0 and [e["line"] for e in rejected.errors] == [2, 3]
    skipped = tasks.import_tasks(org.db, org.owner.principal, project["id"], lines, on_error="skip")
    assert skipped.created == 1 and skipped.invalid == 2 and [e["line"] for e in skipped.errors] == [2, 3]


def test_a_prune_waits_for_a_task_being_stored_that_names_the_image(
    org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's transaction checks its image and holds it (FOR SHARE on PostgreSQL, the write turn on
    SQLite) until its commit; the prune's deleting transaction locks the image first, so it waits,
    then reads the new task and keeps the image. Without the hold the image went under the task."""
    project = org.make_project(spec=IMAGE_SPEC)
    row = upload(org, settings, "red")
    recent = media_pruning._RecentTasks(org.id, media_pruning._first_id_at(utcnow() - media_pruning.CLOCK_SLACK))
    checked, proceed = threading.Event(), threading.Event()
    original = tasks._batch_for_tasks

    def pause_after_the_check(*args: Any) -> Any:  # create_task calls it after _require_media
        checked.set()
        assert proceed.wait(10)
        return original(*args)

    monkeypatch.setattr(tasks, "_batch_for_tasks", pause_after_the_check)
    maker = threading.Thread(target=name_in_task, args=(org, project["id"], row))
    maker.start()
    assert checked.wait(10)
    deleted: list[Any] = []
    pruner = threading.Thread(
        target=lambda: deleted.append(media_pruning._delete_rows(org.db, org.id, utcnow(), [row], recent))
    )
    pruner.start()
    pruner.join(0.5)
    assert pruner.is_alive()  # waiting for the task's transaction
    proceed.set()
    maker.join(10)
    pruner.join(10)
    assert deleted == [[]] and exists(org.db, row)


def test_an_image_pruned_while_an_import_runs_stops_the_import_before_storing_a_task_naming_it(
    org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Phase 1 of an import checks the images and phase 2 stores the tasks, in other transactions: a
    prune between them must not leave a task naming a removed image. The write checks again."""
    project = org.make_project(spec=IMAGE_SPEC)
    kept, gone = upload(org, settings, "red"), upload(org, settings, "blue")
    lines = [(1, {"data": {"image": f"media:{kept['id']}"}}), (2, {"data": {"image": f"media:{gone['id']}"}})]
    # phase 1 saw both images (a prune removes the second one right after)
    monkeypatch.setattr(tasks._Importer, "drop_missing_media", lambda self, conn, numbered: numbered)
    with org.db.write() as conn:
        conn.execute(t.media.delete().where(t.media.c.id == gone["id"]))
    with pytest.raises(InvalidInput, match=f"data.image: image media:{gone['id']} was removed while the import ran"):
        tasks.import_tasks(org.db, org.owner.principal, project["id"], lines)
    with org.db.read() as conn:
        assert conn.execute(select(t.tasks.c.id).where(t.tasks.c.project_id == project["id"])).all() == []


def test_one_image_no_task_names_is_deleted_at_once_and_a_named_one_never(
    org: Org, other_org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``delete_image``: any age, now; a task naming the image (data or metadata, or made while the
    delete runs) makes it a 409 naming that task; the file stays while another row names it."""
    project = org.make_project(spec=IMAGE_SPEC)
    unnamed, in_data, in_metadata, shared = (upload(org, settings, c) for c in ("red", "green", "white", "black"))
    theirs = upload(other_org, settings, "black")  # the same file as ``shared``
    named_task = name_in_task(org, project["id"], in_data)
    other_task = TaskCreate.model_validate(
        {"data": {"image": "https://example.com/a.png"}, "metadata": {"was": f"media:{in_metadata['id']}"}}
    )
    meta_task = tasks.create_task(org.db, org.owner.principal, project["id"], other_task)
    owner = org.owner.principal

    result = media_pruning.delete_image(org.db, owner, unnamed["id"], settings.media_dir)
    assert result == {"id": unnamed["id"], "file_removed": True, "bytes_removed": unnamed["size"]}
    assert not exists(org.db, unnamed) and not file_of(settings, unnamed).exists()
    for row, task in ((in_data, named_task), (in_metadata, meta_task)):
        with pytest.raises(Conflict, match=f"media {row['id']} is named by task {task['id']}"):
            media_pruning.delete_image(org.db, owner, row["id"], settings.media_dir)
        assert exists(org.db, row) and file_of(settings, row).exists()
    result = media_pruning.delete_image(org.db, owner, shared["id"], settings.media_dir)
    assert result["file_removed"] is False and not exists(org.db, shared)
    assert file_of(settings, shared).exists() and exists(other_org.db, theirs)  # their row names the file
    with pytest.raises(NotFound):  # another organization's image, as a missing one
        media_pruning.delete_image(org.db, owner, theirs["id"], settings.media_dir)
    with pytest.raises(NotFound):
        media_pruning.delete_image(org.db, owner, unnamed["id"], settings.media_dir)
    manager = org.actor(Role.MANAGER).principal
    late = upload(org, settings, "blue")
    with pytest.raises(Forbidden):
        media_pruning.delete_image(org.db, manager, late["id"], settings.media_dir)

    # a task made after the first search (in a read) is found by the second (in the deleting write)
    searched = media_pruning._refuse_if_named

    def then_a_task_arrives(conn: Any, org_id: str, media_id: str, *, made_since: str | None = None) -> None:
        searched(conn, org_id, media_id, made_since=made_since)
        if made_since is None:
            name_in_task(org, project["id"], late)

    monkeypatch.setattr(media_pruning, "_refuse_if_named", then_a_task_arrives)
    with pytest.raises(Conflict, match=f"media {late['id']} is named by task"):
        media_pruning.delete_image(org.db, owner, late["id"], settings.media_dir)
    assert exists(org.db, late)


@pytest.mark.parametrize(
    ("kind", "mode", "size", "expected"),
    [("JPEG", "RGB", (1000, 800), (256, 205)), ("GIF", "P", (100, 400), (64, 256)), ("WEBP", "L", (50, 20), (50, 20))],
)
def test_thumbnails_of_each_format(
    org: Org, settings: Settings, kind: str, mode: str, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format=kind)
    row = media.store(
        org.db, org.owner.principal, [out.getvalue()], filename="x", media_dir=settings.media_dir, max_bytes=1 << 22
    )
    path, kind = media.thumbnail(org.db, org.owner.principal, row["id"], settings.media_dir)
    with Image.open(path) as small:
        assert small.format == "WEBP" and small.size == expected and kind == "image/webp"
    assert media.thumbnail(org.db, org.owner.principal, row["id"], settings.media_dir) == (path, kind)  # kept
    assert [name for name, _ in media.stored_thumbnails(settings.media_dir)] == [row["sha256"]]


def test_a_huge_image_that_cannot_be_decoded_small_is_its_own_thumbnail(
    org: Org, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding a PNG whole takes 4 bytes a pixel of the server's memory; a JPEG decodes small."""
    monkeypatch.setattr(media, "THUMBNAIL_MAX_PIXELS", 100)
    png_row = upload(org, settings, "red")  # 3 x 2 pixels: under the (patched) cap
    out = io.BytesIO()
    Image.new("RGB", (20, 10)).save(out, format="PNG")
    big_png = media.store(org.db, org.owner.principal, [out.getvalue()], filename="big.png",
                          media_dir=settings.media_dir, max_bytes=1 << 20)  # fmt: skip
    out = io.BytesIO()
    Image.new("RGB", (20, 10)).save(out, format="JPEG")
    jpeg_row = media.store(org.db, org.owner.principal, [out.getvalue()], filename="big.jpg",
                           media_dir=settings.media_dir, max_bytes=1 << 20)  # fmt: skip
    owner = org.owner.principal
    assert media.thumbnail(org.db, owner, big_png["id"], settings.media_dir) == (
        file_of(settings, big_png),
        "image/png",
    )
    assert media.thumbnail(org.db, owner, png_row["id"], settings.media_dir)[1] == "image/webp"
    assert media.thumbnail(org.db, owner, jpeg_row["id"], settings.media_dir)[1] == "image/webp"
    assert not media.thumbnail_path(settings.media_dir, big_png["sha256"]).exists()

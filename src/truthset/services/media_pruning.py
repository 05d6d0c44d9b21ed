"""Removing uploaded images that no task names: the ``media.prune`` job, and one image at once
(:func:`delete_image`, ``DELETE /api/v1/media/{id}``).

An image is stored once per organization (a ``media`` row) and once on disk (a file named by its
content, shared by every organization that uploaded the same bytes). Tasks name it as
``media:<id>`` in their data. Deleting a project with its data (services/project_deletion.py)
deletes its tasks, but not their images: another project may name the same one. This job removes
the organization's images that no task of the organization names, when they were uploaded before
a cut-off, so an image uploaded for tasks not made yet is kept:

- asked for by an owner or admin (``POST /api/v1/media/pruning``, ``truthset media prune``, the
  Images page): the cut-off is ``older_than_hours`` ago (24 by default);
- queued by every deletion of a project with its data, to run 24 hours after it with the deletion's
  time as the cut-off: the deleted project's images go, and an upload made just before the deletion
  still had a day to be named by a task. The deletions of one UTC day share one job (each moves
  its cut-off and start to its own time): twenty deletions are one read of the tasks, not twenty,
  and the job runs at most a day after the day's last deletion.

How it decides, and why nothing in use is lost:

1. It reads every task of the organization once, in id order, and keeps the ids its data and
   metadata name (a 12-byte key each in a sorted NumPy array: a million images take 12 MB, not a
   set of a million strings).
2. It goes through the organization's images uploaded before the cut-off, a chunk at a time. In the
   transaction that deletes a chunk's unnamed rows it reads again the tasks made since step 1
   began (task ids start with their creation time), so a task made meanwhile keeps its image.
3. A file is removed only when no row of any organization names it any more, checked under an
   exclusive lock of the media directory that every upload holds shared from the file's arrival to
   its row's commit (services/media.py): a file that is about to be named again stays.
4. Last, it removes the files of the media directory that no row of any organization names (a run
   that stopped between a chunk's commit and its files left them), with the same check under the
   same lock, a chunk of files at a time; and the thumbnails whose file is gone (a file's own
   thumbnail goes with it).

Task data is never changed after a task is made, so a task read in step 1 names the same images in
step 2; and a task made after a row's deletion cannot name it (services/tasks.py refuses an image
the organization has no row of). Safe to repeat: a run deletes what is still unnamed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Text, cast, delete, func, or_, select

from truthset.config import Settings, get_settings
from truthset.domain import Principal
from truthset.errors import Conflict, InvalidInput
from truthset.questions import MEDIA_PREFIX
from truthset.services import jobs, media
from truthset.services.jobs import JobContext, JobFailed
from truthset.services.pacing import Pacer
from truthset.services.policy import Action, allowed, require
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t
from truthset.storage.files import locked
from truthset.storage.ids import utcnow

JOB_KIND = "media.prune"
#: An image no task names is kept this long after its upload unless the request says otherwise:
#: a client uploads images first and makes the tasks naming them after.
DEFAULT_OLDER_THAN_HOURS = 24.0
MAX_OLDER_THAN_HOURS = 24.0 * 365 * 10
#: After a project's deletion, its images are pruned this much later (see the module's doc).
AFTER_DELETION = timedelta(hours=24)
#: The most deleted projects one such prune lists in its payload (the newest; it prunes them all).
LISTED_PROJECTS = 100
#: Tasks read per query (keyset on id), and images decided per transaction.
TASK_CHUNK = 5_000
MEDIA_CHUNK = 1_000
#: Tasks made up to this long before the scan began are read again with each chunk: clocks of two
#: processes may differ by a little, and a task's id is its maker's clock.
CLOCK_SLACK = timedelta(minutes=5)

#: How a task names an image (``truthset.questions.media_reference``); matched in the stored JSON
#: text, so an id anywhere in the data or metadata keeps its image (never the other way round).
_REFERENCE = re.compile(re.escape(MEDIA_PREFIX) + r"([0-9a-f]{24})")


def start(db: Database, principal: Principal, older_than_hours: float = DEFAULT_OLDER_THAN_HOURS) -> dict[str, Any]:
    """Queue a prune of the organization's images uploaded more than ``older_than_hours`` ago that no
    task names; returns the job. Owners and admins: what it removes is gone for good."""
    require(principal, Action.DELETE_MEDIA)
    if not 0 <= older_than_hours <= MAX_OLDER_THAN_HOURS:
        raise InvalidInput(
            f"older_than_hours must be between 0 and {MAX_OLDER_THAN_HOURS:g}", details={"field": "older_than_hours"}
        )
    cutoff = utcnow() - timedelta(hours=older_than_hours)
    with db.write() as conn:
        job = jobs.enqueue(
            conn,
            principal.organization_id,
            JOB_KIND,
            {"uploaded_before": cutoff.isoformat()},
            created_by=principal.member_id,
        )
    return jobs.public(job)


def schedule_after_deletion(conn: Connection, organization_id: str, project_id: str) -> dict[str, Any]:
    """Queue, in the transaction that deletes a project, the prune of its images a day later.

    A prune the same day's deletions queued and that still waits takes this one in: its cut-off and
    start move to this deletion's (later) ones and the project joins its ``project_ids``.
    """
    now = utcnow()
    run_after = now + AFTER_DELETION
    for _ in range(3):  # the waiting job may be claimed between reading and moving it: queue again
        mine = {"uploaded_before": now.isoformat(), "project_ids": [project_id]}
        job = jobs.enqueue(
            conn,
            organization_id,
            JOB_KIND,
            mine,
            dedupe_key=f"{JOB_KIND}:deletions:{now:%Y-%m-%d}",
            run_after=run_after,
        )
        listed = job["payload"].get("project_ids", [])
        if project_id in listed:
            return job
        # never earlier than it was: another process's clock may be a little ahead of this one's
        cutoff = max(now, _cutoff(job["payload"]))
        later = max(run_after, job["run_after"])
        merged = {"uploaded_before": cutoff.isoformat(), "project_ids": [*listed, project_id][-LISTED_PROJECTS:]}
        if jobs.reschedule_waiting(conn, job["id"], merged, later):
            return {**job, "payload": merged, "run_after": later}
    raise Conflict("could not queue the prune of the deleted project's images: its job kept changing; try again")


def run(db: Database, job: JobContext) -> dict[str, Any]:
    """The ``media.prune`` job: remove the organization's unnamed images uploaded before the cut-off."""
    cutoff = _cutoff(job.payload)
    settings: Settings = job.settings or get_settings()
    org = job.organization_id
    recent = _RecentTasks(org, _first_id_at(utcnow() - CLOCK_SLACK))
    named, tasks = _named_media(db, org)
    with db.read() as conn:
        total = conn.execute(
            select(func.count()).where(t.media.c.organization_id == org, t.media.c.created_at < cutoff)
        ).scalar_one()
    job.progress(0, total)
    checked = removed = files = freed = 0
    pacer = Pacer(db)
    for chunk in _candidates(db, org, cutoff):
        job.check()
        found = _found(named, np.array([_key(row["id"]) for row in chunk], dtype="S12"))
        unnamed = [row for row, is_named in zip(chunk, found, strict=True) if not is_named]
        if unnamed:
            with pacer.step(time.perf_counter):
                gone = db.submit(_delete_rows, db, org, cutoff, unnamed, recent, hot=False).result()
            removed += len(gone)
            unlinked = _unlink_unnamed(db, settings.media_dir, [row["sha256"] for row in gone])
            files, freed = files + len(unlinked), freed + sum(unlinked.values())
        checked += len(chunk)
        job.progress(min(checked, total), total)
    # last, what no row names (a run stopped between a chunk's commit and its files left some)
    blobs = list(media.stored_blobs(settings.media_dir))
    for start in range(0, len(blobs), MEDIA_CHUNK):
        unlinked = _unlink_unnamed(db, settings.media_dir, blobs[start : start + MEDIA_CHUNK])
        files, freed = files + len(unlinked), freed + sum(unlinked.values())
    _sweep_thumbnails(settings.media_dir)
    return {
        "uploaded_before": cutoff.isoformat(),
        "tasks_read": tasks,
        "media_checked": checked,
        "media_removed": removed,
        "files_removed": files,
        "bytes_removed": freed,
    }


def delete_image(db: Database, principal: Principal, media_id: str, media_dir: Path) -> dict[str, Any]:
    """Remove one uploaded image that no task of the organization names, now, whatever its age;
    its file too, unless another organization's row names the same bytes. Owners and admins, and
    the member who uploaded it while they may upload (a manager's own mistaken upload).

    A task naming it (``media:<id>`` anywhere in its data or metadata) makes it a 409 naming that
    task: nothing is removed. The tasks are searched once in a read, then, in the deleting
    transaction (after locking the row, as the prune does), only those made since, so the write
    does not hold SQLite's one writer for a scan of every task.
    """
    row = image_to_delete(db, principal, media_id)
    org = principal.organization_id
    floor = _first_id_at(utcnow() - CLOCK_SLACK)
    with db.read() as conn:
        _refuse_if_named(conn, org, media_id)
    with db.write() as conn:
        conn.execute(repo.scoped(t.media, org, t.media.c.id).where(t.media.c.id == media_id).with_for_update()).all()
        _refuse_if_named(conn, org, media_id, made_since=floor)
        conn.execute(delete(t.media).where(t.media.c.organization_id == org, t.media.c.id == media_id))
    unlinked = _unlink_unnamed(db, media_dir, [row["sha256"]])
    return {"id": media_id, "file_removed": bool(unlinked), "bytes_removed": sum(unlinked.values())}


def image_to_delete(db: Database, principal: Principal, media_id: str) -> dict[str, Any]:
    """The image's row, if ``principal`` may delete it (:func:`delete_image`); a 404 for another
    organization's image, as for a missing one, and a 403 in the policy's words otherwise."""
    row = media.get(db, principal, media_id)
    if not may_delete(principal, row):
        require(principal, Action.DELETE_MEDIA)
    return row


def may_delete(principal: Principal, row: dict[str, Any]) -> bool:
    """Whether ``principal`` may delete the image ``row`` (:func:`delete_image`)."""
    if allowed(principal, Action.DELETE_MEDIA):
        return True
    return row.get("created_by") == principal.member_id and allowed(principal, Action.UPLOAD_MEDIA)


def _refuse_if_named(conn: Connection, org: str, media_id: str, *, made_since: str | None = None) -> None:
    """A 409 naming a task of the organization (made since ``made_since``, an id) that names the image."""
    c = t.tasks.c
    pattern = f"%{MEDIA_PREFIX}{media_id}%"  # ids are hex: nothing to escape
    query = select(c.id).where(c.organization_id == org, or_(*(text.like(pattern) for text in _TEXTS))).limit(1)
    if made_since is not None:
        query = query.where(c.id >= made_since)
    naming = conn.execute(query).scalar()
    if naming is not None:
        raise Conflict(
            f"media {media_id} is named by task {naming} (and maybe others): an image is removed only "
            "when no task names it; delete its project with its data first",
            details={"task_id": naming},
        )


def _cutoff(payload: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(payload["uploaded_before"]))
    except (KeyError, ValueError):
        raise JobFailed("the payload names no uploaded_before time") from None


def _key(media_id: str) -> bytes:
    """An image id as 12 bytes (ids are 24 hex digits)."""
    return bytes.fromhex(media_id)


def _named_media(db: Database, org: str) -> tuple[np.ndarray, int]:
    """The ids of the images the organization's tasks name (sorted 12-byte keys), and how many tasks were read."""
    keys: list[np.ndarray] = [np.array([], dtype="S12")]
    pending: set[bytes] = set()
    tasks = 0
    for texts in _task_texts(db, org):
        tasks += len(texts)
        for text in texts:
            pending.update(_key(found) for found in _REFERENCE.findall(text))
        if len(pending) > 100_000:  # folded into the array now and then: memory stays that of the keys
            keys.append(np.array(sorted(pending), dtype="S12"))
            pending.clear()
    keys.append(np.array(sorted(pending), dtype="S12"))
    return np.unique(np.concatenate(keys)), tasks


def _found(named: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which of ``keys`` are in the sorted ``named`` (a binary search each: np.isin sorts both
    arrays again on every call for byte strings)."""
    if not len(named):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(named, keys), len(named) - 1)
    return named[at] == keys


#: A task's data and metadata as the stored JSON text (no decoding: the references are matched in it).
_TEXTS = (cast(t.tasks.c.data, Text), cast(t.tasks.c.metadata, Text))


def _text(data: str | None, metadata: str | None) -> str:
    return f"{data or ''} {metadata or ''}"


def _task_texts(db: Database, org: str) -> Iterator[list[str]]:
    """The stored JSON text of each task's data and metadata, a chunk of tasks at a time, in id order."""
    c = t.tasks.c
    after = ""
    while True:
        query = select(c.id, *_TEXTS).where(c.organization_id == org, c.id > after).order_by(c.id).limit(TASK_CHUNK)
        with db.read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        yield [_text(data, metadata) for _, data, metadata in rows]
        after = rows[-1][0]


def _candidates(db: Database, org: str, cutoff: datetime) -> Iterator[list[dict[str, Any]]]:
    """The organization's images uploaded before the cut-off, a chunk at a time, in id order."""
    c = t.media.c
    after = ""
    while True:
        query = (
            select(c.id, c.sha256, c.size)
            .where(c.organization_id == org, c.created_at < cutoff, c.id > after)
            .order_by(c.id)
            .limit(MEDIA_CHUNK)
        )
        with db.read() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


def _delete_rows(
    db: Database, org: str, cutoff: datetime, unnamed: list[dict[str, Any]], recent: _RecentTasks
) -> list[dict[str, Any]]:
    """Delete the rows of ``unnamed`` that no task made since the scan began names; the deleted ones.

    The rows are locked first (``FOR UPDATE`` on PostgreSQL): a transaction storing a task that
    names one holds it ``FOR SHARE`` (services/tasks.py), so this waits for its commit and the
    read of the newest tasks below sees that task; one that comes later finds the row gone.
    """
    with db.write() as conn:
        held = select(t.media.c.id).where(
            t.media.c.organization_id == org, t.media.c.id.in_([row["id"] for row in unnamed])
        )
        conn.execute(held.with_for_update()).all()
        named = recent.read(conn)
        doomed = [row for row in unnamed if row["id"] not in named]
        if doomed:
            conn.execute(
                delete(t.media).where(
                    t.media.c.organization_id == org,
                    t.media.c.id.in_([row["id"] for row in doomed]),
                    t.media.c.created_at < cutoff,
                )
            )
    return doomed


@dataclass
class _RecentTasks:
    """The images named by the tasks made since ``floor`` (a little before the scan began), read in
    each deleting transaction. Those tasks' ids come from the index every time; the text of a task
    is read once, so a big import just before a prune is not read again for every chunk."""

    organization_id: str
    floor: str
    seen: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)

    def read(self, conn: Connection) -> set[str]:
        c = t.tasks.c
        ids = conn.execute(select(c.id).where(c.organization_id == self.organization_id, c.id >= self.floor))
        new = [task_id for task_id in ids.scalars() if task_id not in self.seen]
        for start in range(0, len(new), MEDIA_CHUNK):
            chunk = new[start : start + MEDIA_CHUNK]
            query = select(*_TEXTS).where(c.organization_id == self.organization_id, c.id.in_(chunk))
            for data, metadata in conn.execute(query):
                self.named.update(_REFERENCE.findall(_text(data, metadata)))
        self.seen.update(new)
        return self.named


def _first_id_at(naive_utc: datetime) -> str:
    """The smallest id made at that time: ids begin with their maker's clock, in hex milliseconds
    (storage/ids.py)."""
    return f"{int(naive_utc.replace(tzinfo=UTC).timestamp() * 1000):012x}"


def _unlink_unnamed(db: Database, media_dir: Path, shas: list[str]) -> dict[str, int]:
    """Remove the files of ``shas`` that no row of any organization names; each removed one's bytes.

    Under the media directory's exclusive lock: an upload holds it shared from its file's arrival
    to its row's commit, so a file about to be named again is seen named here (services/media.py)."""
    if not shas:
        return {}
    removed = {}
    with locked(media_dir / media.LOCK_FILE, exclusive=True):
        with db.read() as conn:
            named = set(conn.execute(select(t.media.c.sha256).where(t.media.c.sha256.in_(shas))).scalars())
        for sha in sorted(set(shas) - named):
            path = media.blob_path(media_dir, sha)
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:  # removed by an earlier run that stopped before saying so
                continue
            removed[sha] = size
            media.thumbnail_path(media_dir, sha).unlink(missing_ok=True)
    return removed


def _sweep_thumbnails(media_dir: Path) -> None:
    """Remove the thumbnails whose file is gone (one made from a file unlinked meanwhile)."""
    for sha, path in media.stored_thumbnails(media_dir):
        if not media.blob_path(media_dir, sha).exists():
            path.unlink(missing_ok=True)

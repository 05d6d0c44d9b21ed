"""Projects labelled through the services, exported with ``export_rows``, for the format writers.

``labelled(org, spec, items, answers)`` creates a project (overlap = the number of workers),
imports ``items`` (each ``{"data": ..., "unique_id": ...}``), and has each worker answer every task:
``answers[w][i]`` is worker ``w``'s answer to task ``i``. It returns the project and its export rows
(completed tasks, with their aggregated results), as a writer receives them.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from truthset.schemas import ResponseCreate
from truthset.services import export, media, queue, tasks
from truthset.services.formats.images import MediaStore

if TYPE_CHECKING:
    from conftest import Org


def label(org: Org, spec: dict[str, Any], items: list[dict[str, Any]], answers: list[list[dict]]) -> tuple:
    project = org.make_project(spec=spec, overlap=len(answers))
    report = tasks.import_tasks(org.db, org.owner.principal, project["id"], list(enumerate(items, 1)))
    assert report.created == len(items), report
    for worker_answers in answers:
        worker = org.add_member().principal
        by_task = {}
        while lease := queue.next_assignment(org.db, worker, project["id"]):
            by_task[lease["task"]["id"]] = lease
        ordered = sorted(by_task.values(), key=lambda lease: lease["task"]["unique_id"] or "")
        assert len(ordered) == len(items)
        for lease, answer in zip(ordered, worker_answers, strict=True):
            data = ResponseCreate(answer=answer, assignment_id=lease["id"])
            queue.submit(org.db, worker, lease["task"]["id"], data)
    rows = list(export.export_rows(org.db, org.owner.principal, project["id"]))
    return project, rows


@pytest.fixture
def labelled() -> Callable[..., tuple]:
    return label


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def upload(org: Org, media_dir: Path) -> Callable[..., str]:
    """``upload(width, height, fmt="PNG")``: store a new image of that size; its ``media:<id>``."""
    count = iter(range(1_000_000))

    def make(width: int, height: int, fmt: str = "PNG", owner: Org | None = None) -> str:
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), (next(count) % 256, 10, 20)).save(buffer, fmt)
        who = (owner or org).owner.principal
        stored = media.store(
            org.db, who, [buffer.getvalue()], filename=f"img.{fmt.lower()}", media_dir=media_dir, max_bytes=10**8
        )
        return f"media:{stored['id']}"

    return make


@pytest.fixture
def store(org: Org, media_dir: Path) -> MediaStore:
    return MediaStore(org.db, org.id, media_dir)

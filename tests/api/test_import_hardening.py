"""Bulk imports and bodies under attack: size limits, long lines, hostile JSON, lock deadlines."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from truthset.config import Settings

from .helpers import API, Api, Org, assert_error

JSONL = {"Content-Type": "application/x-ndjson"}


def _streamed(*chunks: bytes) -> Callable[[], AsyncIterator[bytes]]:
    """A body sent without Content-Length (chunked), as a client streaming it would."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return body


def _tasks(api: Api, org: Org, project_id: str) -> list[dict[str, Any]]:
    r = api.get(f"{API}/tasks", auth=org.owner, params={"project_id": project_id, "limit": 1000})
    assert r.status_code == 200, r.text
    return r.json()["items"]


# --- 413 for an oversized body without Content-Length ----------------------------------------------


@pytest.mark.parametrize(
    ("route", "content_type", "chunk"),
    [
        ("tasks", "application/json", b'{"data": {"text": "' + b"x" * 1000),
        ("tasks/bulk", "application/x-ndjson", b'{"data": {"text": "' + b"x" * 1000 + b'"}}\n'),
        ("tasks/bulk", "application/json", b'[{"data": {"text": "' + b"x" * 1000 + b'"}},'),
    ],
)
def test_an_oversized_chunked_body_is_413_like_a_declared_one(
    make_api: Any, org: Org, settings: Settings, route: str, content_type: str, chunk: bytes
) -> None:
    api = make_api(
        settings.model_copy(update={"max_body_bytes": 2048, "max_import_bytes": 4096, "max_upload_bytes": 3000})
    )
    project = org.make_project()
    body = _streamed(*[chunk] * 10)
    r = api.post(
        f"{API}/projects/{project['id']}/{route}",
        auth=org.owner,
        content=body(),
        headers={"Content-Type": content_type},
    )
    error = assert_error(r, 413, "too_large")
    assert error["details"] == {"limit": 2048 if route == "tasks" else 4096}
    assert _tasks(api, org, project["id"]) == []

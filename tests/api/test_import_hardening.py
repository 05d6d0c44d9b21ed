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


# --- JSONL: one long line --------------------------------------------------------------------------


def test_an_over_long_jsonl_line_is_that_lines_error_and_is_never_held_whole(
    make_api: Any, org: Org, settings: Settings
) -> None:
    """A 24 MB line over a 64 KiB limit: its line number is reported, the body around it is imported,
    and the server never holds the line (it used to buffer it, and copy it once per chunk)."""
    api = make_api(settings.model_copy(update={"max_task_bytes": 64 * 1024}))
    project = org.make_project()
    piece = b"x" * (64 * 1024)  # the same object each time: the test itself allocates nothing big

    async def body() -> AsyncIterator[bytes]:
        yield b'{"data": {"text": "before"}}\n\n{"data": {"text": "'
        for _ in range(384):
            yield piece
        yield b'"}}\n{"data": {"text": "after"}}'

    tracemalloc.start()
    try:
        r = api.post(
            f"{API}/projects/{project['id']}/tasks/bulk",
            auth=org.owner,
            content=body(),
            headers=JSONL,
            params={"on_error": "skip"},
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["created"] == 2 and report["errors"] == [
        {"line": 3, "message": f"line is longer than {64 * 1024} bytes"}
    ]
    assert peak < 8 * 1024 * 1024, peak  # a few chunks, not the 24 MB line
    assert sorted(t["data"]["text"] for t in _tasks(api, org, project["id"])) == ["after", "before"]


# --- JSON arrays: streamed ---------------------------------------------------------------------------


def test_a_json_array_is_parsed_as_it_streams_in(api: Api, org: Org) -> None:
    """Item numbers, exact integers, fractions, and memory that stays flat for a big array of junk."""
    project = org.make_project()
    url = f"{API}/projects/{project['id']}/tasks/bulk"
    junk = b'"' + b"x" * (10 * 1024 - 3) + b'",'  # 10 KiB items that are not tasks: 8 MiB in all
    chunks = [b"[", *[junk] * 800, b'{"data": {"text": "last"}}]']
    tracemalloc.start()
    try:
        r = api.post(url, auth=org.owner, content=_streamed(*chunks)(), headers={"Content-Type": "application/json"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    report = assert_error(r, 422, "invalid_input")["details"]["report"]
    assert report["stored"] is False and report["received"] == 801 and report["checked"] == 100
    assert [e["line"] for e in report["errors"]] == list(range(1, 101))
    assert report["errors"][0]["message"] == "task: must be a JSON object"
    assert peak < 4 * 1024 * 1024, peak  # a chunk and an item at a time, not the 8 MiB body
    # skip: every item is checked; the out-of-range integer is that item's error, named
    r = api.post(
        url,
        auth=org.owner,
        params={"on_error": "skip"},
        json=[
            {"data": {"text": "a"}, "metadata": {"f": 0.5, "big": 9007199254740993}},
            {"data": {"text": "b"}, "metadata": {"n": 2**70}},
            7,
        ],
    )
    report = r.json()
    assert report["created"] == 1 and [e["line"] for e in report["errors"]] == [2, 3]
    assert report["errors"][0]["message"].startswith("metadata: ") and "64-bit" in report["errors"][0]["message"]
    (task,) = _tasks(api, org, project["id"])
    assert task["metadata"] == {"f": 0.5, "big": 9007199254740993}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"data": {"text": "not an array"}}', 422, "must be an array"),
        (b'[{"data": {"text": "a"}}, {"data": ', 422, "not valid JSON"),
        (b'[{"data": {"text": "a"}}] [1]', 422, "not valid JSON"),
        (b"   ", 422, "must be an array"),
        (b'[{"data": {"text": "' + b"x" * 300_000 + b'"}}]', 413, "item 1 of the JSON array is longer"),
    ],
)
def test_a_bad_json_array_stores_nothing(
    make_api: Any, org: Org, settings: Settings, body: bytes, status: int, message: str
) -> None:
    api = make_api(settings.model_copy(update={"max_task_bytes": 64 * 1024}))
    project = org.make_project()
    for on_error in ("reject", "skip"):
        r = api.post(
            f"{API}/projects/{project['id']}/tasks/bulk",
            auth=org.owner,
            params={"on_error": on_error},
            content=_streamed(*[body[i : i + 1000] for i in range(0, len(body), 1000)])(),
            headers={"Content-Type": "application/json"},
        )
        error = assert_error(r, status)
        assert message in error["message"]
    assert _tasks(api, org, project["id"]) == []


# --- deep metadata and huge integers: refused by name on every way in ----------------------------------

DEEP = b'{"a":' * 300 + b"{}" + b"}" * 300
HUGE = b'{"n": 1180591620717411303424}'


@pytest.mark.parametrize("metadata", [DEEP, HUGE], ids=["deep", "huge"])
def test_task_and_batch_create_refuse_deep_or_huge_metadata_by_name(api: Api, org: Org, metadata: bytes) -> None:
    project = org.make_project()
    json_type = {"Content-Type": "application/json"}
    task = b'{"data": {"text": "x"}, "metadata": ' + metadata + b"}"
    r = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, content=task, headers=json_type)
    assert assert_error(r, 422, "invalid_input")["details"]["field"] == "metadata"
    batch = b'{"name": "b", "metadata": ' + metadata + b"}"
    r = api.post(f"{API}/projects/{project['id']}/batches", auth=org.owner, content=batch, headers=json_type)
    assert assert_error(r, 422, "invalid_input")["details"]["field"] == "metadata"
    assert _tasks(api, org, project["id"]) == []
    assert api.get(f"{API}/projects/{project['id']}/batches", auth=org.owner).json()["items"] == []


@pytest.mark.parametrize("metadata", [DEEP, HUGE], ids=["deep", "huge"])
@pytest.mark.parametrize("on_error", ["reject", "skip"])
def test_a_bulk_line_with_deep_or_huge_metadata_is_refused_by_name(
    api: Api, org: Org, metadata: bytes, on_error: str
) -> None:
    """With on_error=skip it is that line's error only (a 300-deep line used to fail the import with a 500)."""
    project = org.make_project()
    body = b'{"data": {"text": "good"}}\n{"data": {"text": "bad"}, "metadata": ' + metadata + b"}\n"
    r = api.post(
        f"{API}/projects/{project['id']}/tasks/bulk",
        auth=org.owner,
        content=body,
        headers=JSONL,
        params={"on_error": on_error},
    )
    assert r.status_code == (422 if on_error == "reject" else 200), r.text
    report = r.json()["error"]["details"]["report"] if on_error == "reject" else r.json()
    assert [e["line"] for e in report["errors"]] == [2]
    assert report["errors"][0]["message"].startswith("metadata: ")
    stored = [t["data"]["text"] for t in _tasks(api, org, project["id"])]
    assert stored == ([] if on_error == "reject" else ["good"])


# --- lock deadlines ------------------------------------------------------------------------------------


def test_a_write_that_waits_past_the_lock_timeout_answers_503_busy(api: Api, org: Org) -> None:
    db = api.app.state.db
    if not db.is_sqlite:
        pytest.skip("the process-wide write lock is SQLite's (PostgreSQL: tests/storage/test_engine.py)")
    project = org.make_project()
    db.lock_timeout = 0.2
    holding, done = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with db.write():
            holding.set()
            done.wait(timeout=60)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        r = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"text": "x"}})
        error = assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "1" and "try again" in error["message"]
        r = api.post(f"{API}/projects/{project['id']}/next", auth=org.owner)
        assert_error(r, 503, "busy")
    finally:
        done.set()
        holder.join()
    assert (
        api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"text": "x"}}).status_code
        == 201
    )

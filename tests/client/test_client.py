"""The SDK against a real server: every method, the error mapping, retries, streaming import."""

from __future__ import annotations

import struct
import sys
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import truthset
from truthset.client import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    MemberCreated,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    TooLargeError,
    error_from_response,
)
from truthset.schemas import (
    AgreementOut,
    ApiKeyCreated,
    ApiKeyOut,
    AssignmentOut,
    BatchOut,
    HistoryStep,
    ImportReport,
    Me,
    MediaOut,
    MemberOut,
    ProjectOut,
    ResponseOut,
    ReviewItem,
    ReviewResult,
    SubmitResult,
    TaskCreate,
    TaskCreated,
    TaskOut,
    WorkerFigures,
    WorkerOut,
    WorkerStats,
)

from .conftest import LiveServer

SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def _name(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


@pytest.fixture
def project(client: truthset.Client) -> ProjectOut:
    return client.projects.create(_name("project"), SPEC)


def _annotator(client: truthset.Client, live: LiveServer) -> truthset.Client:
    member = client.members.add(f"{uuid.uuid4().hex[:8]}@acme.example", role="annotator")
    key = client.keys.create("annotator", member_id=member.id)
    return live.client(key.key)


# --- accounts -------------------------------------------------------------------------------------


def test_me_members_and_keys(client: truthset.Client, live: LiveServer) -> None:
    me = client.me()
    assert isinstance(me, Me)
    assert me.organization_name == "Acme"
    assert me.member.role == "owner"

    added = client.members.add("Ann@Acme.example", name="Ann", role="reviewer")
    assert isinstance(added, MemberCreated)
    assert added.email == "ann@acme.example"
    assert added.password  # a one-time password
    chosen = client.members.add("bo@acme.example", password="correct horse battery")
    assert chosen.password is None and chosen.role == "annotator"

    members = list(client.members.list(page_size=1))  # several pages, followed lazily
    assert {m.email for m in members} >= {"owner@acme.example", "ann@acme.example", "bo@acme.example"}
    assert all(isinstance(m, MemberOut) for m in members)
    assert client.members.get(added.id).name == "Ann"

    updated = client.members.update(added.id, name="Ann B", role="manager")
    assert (updated.name, updated.role) == ("Ann B", "manager")
    assert client.members.update(added.id, disabled=True).disabled_at is not None

    key = client.keys.create("ci", member_id=chosen.id)
    assert isinstance(key, ApiKeyCreated) and key.key.startswith("ts_")
    with live.client(key.key) as bo:
        assert bo.me().member.email == "bo@acme.example"
        assert [k.id for k in bo.keys.list()] == [key.id]
    listed = list(client.keys.list(page_size=1))
    assert key.id in {k.id for k in listed} and all(isinstance(k, ApiKeyOut) for k in listed)
    revoked = client.keys.revoke(key.id)
    assert revoked.revoked_at is not None
    with live.client(key.key) as bo, pytest.raises(AuthenticationError) as caught:
        bo.me()
    assert caught.value.status == 401 and caught.value.code == "unauthenticated"

    workers = list(client.workers())
    assert workers and all(isinstance(w, WorkerOut) for w in workers)
    types = {t.name: t for t in client.question_types()}
    assert {"label", "labels", "rating", "text", "number", "rubric"} <= set(types)
    assert "criteria" in types["rubric"].config_schema["properties"]


# --- projects and batches -------------------------------------------------------------------------


def test_projects(client: truthset.Client) -> None:
    created = client.projects.create(
        _name("p"), SPEC, description="d", instructions="# Do it", overlap=2, lease_seconds=60
    )
    assert isinstance(created, ProjectOut)
    assert created.quality["min_overlap"] == created.quality["max_overlap"] == 2 and created.lease_seconds == 60
    assert client.projects.get(created.id).instructions == "# Do it"
    updated = client.projects.update(created.id, name="renamed", overlap=3)
    assert updated.name == "renamed" and updated.quality["max_overlap"] == 3
    assert created.id in {p.id for p in client.projects.list(page_size=1)}
    client.projects.update(created.id, archived=True)
    assert created.id not in {p.id for p in client.projects.list()}
    assert created.id in {p.id for p in client.projects.list(include_archived=True)}


def test_batches(client: truthset.Client, project: ProjectOut) -> None:
    batch = client.batches.create(project.id, "first", metadata={"source": "crawl"})
    assert isinstance(batch, BatchOut) and batch.status == "open" and batch.metadata == {"source": "crawl"}
    report = client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(3)], batch_id=batch.id)
    assert report.created == 3
    assert client.batches.get(batch.id).counts == {"staged": 3}
    finalized = client.batches.finalize(batch.id)
    assert finalized.status == "finalized" and finalized.counts == {"pending": 3}
    assert client.batches.finalize(batch.id).status == "finalized"  # harmless twice
    other = client.batches.create(project.id, "second")
    assert [b.name for b in client.batches.list(project.id, page_size=1)] == ["first", "second"]
    assert client.batches.cancel(other.id).status == "canceled"
    with pytest.raises(ConflictError) as caught:
        client.batches.create(project.id, "first")
    assert caught.value.status == 409 and caught.value.details == {"field": "name"}


# --- tasks ----------------------------------------------------------------------------------------


def test_create_get_cancel_task(client: truthset.Client, project: ProjectOut) -> None:
    task = client.tasks.create(
        project.id, {"text": "hi"}, unique_id=uuid.uuid4().hex, priority=5, metadata={"lang": "en"}, overlap=2
    )
    assert isinstance(task, TaskCreated) and task.created
    assert (task.priority, task.overlap, task.metadata) == (5, 2, {"lang": "en"})
    again = client.tasks.create(project.id, {"text": "other"}, unique_id=task.unique_id)
    assert again.id == task.id and not again.created
    fetched = client.tasks.get(task.id)
    assert isinstance(fetched, TaskOut) and fetched.data == {"text": "hi"}
    assert fetched.created_at.tzinfo is not None
    canceled = client.tasks.cancel(task.id)
    assert canceled.status == "canceled"
    assert client.tasks.responses(task.id) == []


def test_import_from_a_generator_streams_jsonl(client: truthset.Client, project: ProjectOut) -> None:
    consumed = 0

    def generate() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for i in range(3000):
            consumed += 1
            yield {"data": {"text": f"item {i}"}, "unique_id": f"gen-{project.id}-{i}", "metadata": {"n": i % 3}}

    tasks = generate()
    report = client.tasks.import_tasks(project.id, tasks)
    assert isinstance(report, ImportReport)
    assert (report.received, report.created, report.existing, report.invalid, report.stored) == (3000, 3000, 0, 0, True)
    assert consumed == 3000
    # Re-import never duplicates.
    repeats = ({"data": {"text": "x"}, "unique_id": f"gen-{project.id}-{i}"} for i in range(10))
    again = client.tasks.import_tasks(project.id, repeats)
    assert (again.created, again.existing) == (0, 10)


def test_import_models_and_files(client: truthset.Client, project: ProjectOut, tmp_path: Path) -> None:
    models = [TaskCreate(data={"text": "model"}, priority=1)]
    assert client.tasks.import_tasks(project.id, models).created == 1

    jsonl = tmp_path / "tasks.jsonl"
    jsonl.write_bytes(b"".join(orjson.dumps({"data": {"text": f"line {i}"}}) + b"\n" for i in range(5)))
    assert client.tasks.import_tasks(project.id, jsonl).created == 5
    array = tmp_path / "tasks.json"
    array.write_bytes(orjson.dumps([{"data": {"text": "a"}}, {"data": {"text": "b"}}]))
    assert client.tasks.import_tasks(project.id, str(array)).created == 2
    table = tmp_path / "tasks.csv"
    table.write_text("text,unique_id,priority\nhello,csv-1,3\nworld,,\n", encoding="utf-8")
    assert client.tasks.import_tasks(project.id, table).created == 2
    from_csv = next(iter(client.tasks.list(project.id, unique_id="csv-1")))
    assert (from_csv.data, from_csv.priority) == ({"text": "hello"}, 3)
    (tmp_path / "tasks.xml").write_text("<tasks/>")
    with pytest.raises(truthset.client.InvalidInputError, match=r"cannot tell the format of 'tasks\.xml'"):
        client.tasks.import_tasks(project.id, tmp_path / "tasks.xml")


def test_import_reports_bad_lines(client: truthset.Client, project: ProjectOut) -> None:
    rows = [{"data": {"text": "ok 1"}}, {"data": {"nope": 1}}, {"data": {"text": "ok 3"}}]
    with pytest.raises(truthset.client.ImportRejectedError, match="1 invalid line") as caught:
        client.tasks.import_tasks(project.id, rows)
    rejected = caught.value.report
    assert rejected is not None and caught.value.status == 422
    assert (rejected.stored, rejected.created, rejected.invalid) == (False, 0, 1)
    assert rejected.errors[0].line == 2 and "nope" in rejected.errors[0].message
    skipped = client.tasks.import_tasks(project.id, rows, on_error="skip")
    assert (skipped.stored, skipped.created, skipped.invalid) == (True, 2, 1)


def test_list_tasks_filters_and_pages(client: truthset.Client, project: ProjectOut) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    rows = [{"data": {"text": f"t{i}"}, "metadata": {"split": "a" if i % 2 else "b"}} for i in range(7)]
    client.tasks.import_tasks(project.id, rows)
    listed = client.tasks.list(project.id, page_size=2)
    assert isinstance(listed, Iterator)  # lazy: nothing fetched until iterated
    everything = list(listed)
    assert len(everything) == 7 and [t.data["text"] for t in everything] == [f"t{i}" for i in range(7)]
    assert len(list(client.tasks.list(project.id, metadata={"split": "a"}, page_size=2))) == 3
    assert len(list(client.tasks.list(project.id, status="pending", created_after=before))) == 7
    assert list(client.tasks.list(project.id, status="completed")) == []
    assert list(client.tasks.list(project.id, created_before=before)) == []
    assert list(client.tasks.list(project.id, updated_before=before, completed_after=before)) == []
    assert len(list(client.tasks.list(project.id, updated_after=before, completed_before=datetime.now(UTC)))) == 0


def test_lazy_pagination_fetches_pages_on_demand(client: truthset.Client, project: ProjectOut) -> None:
    client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(5)])
    seen: list[str] = []

    def count(request: httpx.Request) -> None:
        seen.append(request.url.path)

    client._http.event_hooks["request"].append(count)
    pages = client.tasks.list(project.id, page_size=2)
    assert seen == []
    next(pages)
    assert len(seen) == 1
    assert len(list(pages)) == 4
    assert len(seen) == 3


# --- queue, responses, export -------------------------------------------------------------------


def test_annotation_loop(client: truthset.Client, live: LiveServer, project: ProjectOut) -> None:
    client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(3)])
    with _annotator(client, live) as annotator:
        first = annotator.queue.next_task(project.id)
        assert isinstance(first, AssignmentOut) and first.status == "active"
        result = annotator.queue.submit(
            first.task.id, {"sentiment": "positive"}, assignment_id=first.id, duration_ms=1200
        )
        assert isinstance(result, SubmitResult)
        assert result.response.duration_ms == 1200
        assert client.tasks.get(first.task.id).status == "completed"  # the annotator's reply stays blind

        second = annotator.queue.next_task(project.id)
        assert second is not None
        skipped = annotator.queue.skip(second.id)
        assert skipped.status == "skipped"
        third = annotator.queue.next_task(project.id)
        assert third is not None and third.task.id != second.task.id
        released = annotator.queue.release(third.id)
        assert released.status == "released"
        with pytest.raises(ConflictError):
            annotator.queue.release(third.id)

        again = annotator.queue.next_task(project.id)
        assert again is not None and again.task.id == third.task.id
        annotator.queue.submit(again.task.id, {"sentiment": "negative"})
        assert annotator.queue.next_task(project.id) is None  # 204: nothing left for this worker

    responses = client.tasks.responses(first.task.id)
    assert [type(r) for r in responses] == [ResponseOut]
    assert responses[0].answer == {"sentiment": "positive"}

    rows = list(client.export(project.id))
    assert {r["task_id"] for r in rows} == {first.task.id, third.task.id}
    assert {r["answer"]["sentiment"] for r in rows} == {"positive", "negative"}
    assert len(list(client.export(project.id, all_statuses=True))) == 3
    assert list(client.export(project.id, status="canceled")) == []
    # a minimum confidence keeps only tasks with a result that confident (the unanswered one has none)
    assert len(list(client.export(project.id, all_statuses=True, min_confidence=0))) == 2
    assert {t.id for t in client.tasks.list(project.id, min_confidence=0.5)} == {first.task.id, third.task.id}


def test_quality_figures(client: truthset.Client, live: LiveServer) -> None:
    project = client.projects.create(_name("quality"), SPEC, overlap=2)
    client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(2)])
    annotators = [_annotator(client, live), _annotator(client, live)]
    for annotator, labels in zip(annotators, (["positive", "negative"], ["positive", "positive"]), strict=True):
        with annotator:
            for label in labels:
                lease = annotator.queue.next_task(project.id)
                assert lease is not None
                annotator.queue.submit(lease.task.id, {"sentiment": label}, assignment_id=lease.id, duration_ms=500)
    agreement = client.projects.agreement(project.id)
    assert isinstance(agreement, AgreementOut) and agreement.responses == 4
    assert agreement.questions[0].percent_agreement == 0.5 and agreement.questions[0].cohens_kappa is not None
    figures = list(client.projects.workers(project.id, page_size=1))
    assert len(figures) == 2 and all(isinstance(f, WorkerFigures) for f in figures)
    assert {f.agreement_with_results for f in figures} <= {0.5, 1.0} and figures[0].median_duration_ms == 500
    stats = client.workers.stats(figures[0].worker_id, project.id)
    assert isinstance(stats, WorkerStats) and stats.responses == 2 and stats.project_id == project.id
    with _annotator(client, live) as outsider, pytest.raises(PermissionDeniedError):
        outsider.projects.agreement(project.id)


def test_review_queue_verdicts_and_history(client: truthset.Client, live: LiveServer) -> None:
    project = client.projects.create(_name("review"), SPEC, quality={"overlap": 1, "review": {"sample_rate": 1.0}})
    client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(3)])
    with _annotator(client, live) as annotator:
        for _ in range(3):
            lease = annotator.queue.next_task(project.id)
            assert lease is not None
            annotator.queue.submit(lease.task.id, {"sentiment": "positive"}, assignment_id=lease.id)
    assert len(list(client.tasks.list(project.id, review_status="pending"))) == 3
    first = client.reviews.next(project.id)
    assert isinstance(first, ReviewItem) and first.responses[0].answer == {"sentiment": "positive"}
    fixed = client.reviews.fix(first.task.id, {"sentiment": "negative"})
    assert isinstance(fixed, ReviewResult) and fixed.task.result is not None
    assert fixed.task.result["answer"] == {"sentiment": "negative"} and fixed.task.review_status == "fixed"
    second = client.reviews.next(project.id)
    assert second is not None
    assert client.reviews.accept(second.task.id).task.review_status == "accepted"
    third = client.reviews.next(project.id)
    assert third is not None
    with pytest.raises(InvalidInputError):
        client.reviews.reject(third.task.id, "")
    assert client.reviews.reject(third.task.id, "not positive").task.status == "pending"
    assert client.reviews.next(project.id) is None
    assert [r.verdict for r in client.reviews.list(first.task.id)] == ["fix"]
    steps = client.tasks.history(first.task.id)
    assert all(isinstance(s, HistoryStep) for s in steps)
    assert [s.kind for s in steps][-2:] == ["response", "reviewed"]


def test_submit_is_idempotent(client: truthset.Client, live: LiveServer, project: ProjectOut) -> None:
    client.tasks.create(project.id, {"text": "once"})
    with _annotator(client, live) as annotator:
        assignment = annotator.queue.next_task(project.id)
        assert assignment is not None
        key = str(uuid.uuid4())
        first = annotator.queue.submit(assignment.task.id, {"sentiment": "positive"}, idempotency_key=key)
        replay = annotator.queue.submit(assignment.task.id, {"sentiment": "positive"}, idempotency_key=key)
        assert replay.response.id == first.response.id
        with pytest.raises(ConflictError, match="already answered"):
            annotator.queue.submit(assignment.task.id, {"sentiment": "positive"})


def test_iter_tasks(client: truthset.Client, live: LiveServer, project: ProjectOut) -> None:
    client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(4)])
    with _annotator(client, live) as annotator:
        done = 0
        for assignment in annotator.queue.iter_tasks(project.id):
            annotator.queue.submit(assignment.task.id, {"sentiment": "positive"}, assignment_id=assignment.id)
            done += 1
    assert done == 4


def test_upload_media(client: truthset.Client, tmp_path: Path) -> None:
    png = _png()
    from_bytes = client.upload_media(png, filename="dot.png")
    assert isinstance(from_bytes, MediaOut)
    assert from_bytes.content_type == "image/png" and from_bytes.reference == f"media:{from_bytes.id}"
    path = tmp_path / "dot.png"
    path.write_bytes(png)
    assert client.upload_media(path).sha256 == from_bytes.sha256
    with pytest.raises(InvalidInputError) as caught:
        client.upload_media(b"not an image", filename="x.txt")
    assert caught.value.details["field"] == "file"


# --- errors ---------------------------------------------------------------------------------------


def test_error_mapping(client: truthset.Client, live: LiveServer, project: ProjectOut) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.projects.get("0" * 24)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert "not found" in missing.value.message and str(missing.value).startswith("404 not_found")

    with pytest.raises(InvalidInputError) as invalid:
        client.projects.create("", SPEC)
    assert invalid.value.status == 422 and invalid.value.details["field"] == "name"

    with pytest.raises(InvalidInputError) as bad_answer:
        task = client.tasks.create(project.id, {"text": "x"})
        client.queue.submit(task.id, {"sentiment": "maybe"})
    assert "sentiment" in bad_answer.value.message

    with _annotator(client, live) as annotator, pytest.raises(PermissionDeniedError) as forbidden:
        annotator.projects.create("nope", SPEC)
    assert (forbidden.value.status, forbidden.value.code) == (403, "forbidden")

    with pytest.raises(TooLargeError) as large:
        client.projects.create("big", SPEC, instructions="x" * 100_000)  # over the test's 64 KB body limit
    assert large.value.status == 413

    with live.client("ts_not-a-key") as stranger, pytest.raises(AuthenticationError):
        stranger.me()

    for status, cls in ((400, truthset.client.BadRequestError), (429, truthset.client.RateLimitError)):
        made = error_from_response(httpx.Response(status, json={"error": {"code": "c", "message": "m"}}))
        assert type(made) is cls and (made.code, made.message) == ("c", "m")
    not_json = error_from_response(httpx.Response(500, text="<html>oops</html>"))
    assert isinstance(not_json, ServerError) and not_json.code == "error" and not_json.status == 500
    assert isinstance(error_from_response(httpx.Response(418)), ApiError)


# --- retries (a mock transport, no server) ------------------------------------------------------


def _mock_client(handler: Any, **options: Any) -> truthset.Client:
    return truthset.Client("http://truthset.test", "ts_k", transport=httpx.MockTransport(handler), backoff=0, **options)


def test_retries_idempotent_calls_on_502_503_504_and_connection_errors() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadError("reset", request=request)
        if len(calls) <= 3:
            return httpx.Response(502 + len(calls) - 2)
        return httpx.Response(200, json={"organization_id": "o", "organization_name": "n", "member": _member()})

    with _mock_client(handler) as client:
        assert client.me().organization_name == "n"
    assert len(calls) == 4
    assert calls[0].headers["authorization"] == "Bearer ts_k"


def test_gives_up_after_max_retries() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"error": {"code": "unavailable", "message": "busy", "details": None}})

    with _mock_client(handler, max_retries=2) as client, pytest.raises(ServerError) as caught:
        client.projects.get("p")
    assert len(calls) == 3 and caught.value.status == 503 and caught.value.message == "busy"


def test_submit_retries_with_the_same_idempotency_key() -> None:
    keys = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        if len(keys) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(201, json=_submit_result())

    with _mock_client(handler) as client:
        client.queue.submit("t", {"q": "a"})
    assert len(keys) == 2 and keys[0] == keys[1]
    uuid.UUID(keys[0])  # a uuid4 by default


def test_non_idempotent_calls_are_not_resent_after_the_request_went_out() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)  # never sent: safe to retry
        if len(calls) == 2:
            raise httpx.ReadError("reset", request=request)  # maybe processed: not resent
        return httpx.Response(503)

    with _mock_client(handler) as client:
        with pytest.raises(ApiConnectionError) as caught:
            client.queue.next_task("p")
        assert len(calls) == 2 and caught.value.code == "connection_error" and caught.value.status is None
        with pytest.raises(ServerError):
            client.queue.skip("a")
        assert len(calls) == 3


def test_a_busy_answer_is_asked_again_even_for_a_lease() -> None:
    """503 ``busy`` says the server changed nothing (it lost a race): any call may be sent again."""
    calls = []
    busy = {"error": {"code": "busy", "message": "the tasks left for you are being written", "details": None}}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json=busy) if len(calls) == 1 else httpx.Response(204)

    with _mock_client(handler) as client:
        assert client.queue.next_task("p") is None
    assert len(calls) == 2


def test_streamed_import_is_never_resent() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.read())
        return httpx.Response(503)

    with _mock_client(handler) as client, pytest.raises(ServerError):
        client.tasks.import_tasks("p", [{"data": {"text": "x"}}])
    assert len(calls) == 1 and orjson.loads(calls[0]) == {"data": {"text": "x"}}


def test_export_retries_before_the_first_row() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(calls) == 2:
            return httpx.Response(504)
        if len(calls) == 3:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "nope", "details": None}})
        return httpx.Response(200, content=b'{"task_id": "a"}\n\n{"task_id": "b"}\n')

    with _mock_client(handler) as client:
        with pytest.raises(NotFoundError):
            list(client.export("p"))
        assert [row["task_id"] for row in client.export("p")] == ["a", "b"]


def test_configuration() -> None:
    with pytest.raises(ValueError, match="URL"):
        truthset.Client(None, "ts_x")
    with pytest.raises(ValueError, match="API key"):
        truthset.Client("http://x", None)
    with truthset.Client("http://x/", "ts_x", timeout=httpx.Timeout(5.0)) as client:
        assert repr(client) == "<truthset.Client http://x>"


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUTHSET_URL", "http://env.example")
    monkeypatch.setenv("TRUTHSET_API_KEY", "ts_env")
    with truthset.Client() as client:
        assert client.url == "http://env.example"
        assert client._http.headers["authorization"] == "Bearer ts_env"


def test_the_sdk_imports_no_server_layer() -> None:
    import subprocess

    code = "import sys, truthset; truthset.Client; print(sorted(m for m in sys.modules if m.startswith('truthset')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for layer in ("truthset.storage", "truthset.services", "truthset.api", "sqlalchemy"):
        assert f"'{layer}" not in loaded, loaded
    assert "'truthset.client'" in loaded


# --- fixtures for the mock-transport tests ------------------------------------------------------


def _member() -> dict[str, Any]:
    return {"id": "m", "email": "a@b.c", "name": "a", "role": "owner", "created_at": "2026-01-01T00:00:00Z"}


def _task() -> dict[str, Any]:
    now = "2026-01-01T00:00:00Z"
    return {
        "id": "t",
        "project_id": "p",
        "batch_id": None,
        "unique_id": None,
        "data": {},
        "metadata": {},
        "priority": 0,
        "status": "pending",
        "overlap": 1,
        "response_count": 0,
        "created_at": now,
        "updated_at": now,
    }


def _submit_result() -> dict[str, Any]:
    response = {
        "id": "r",
        "task_id": "t",
        "worker_id": "w",
        "assignment_id": None,
        "answer": {"q": "a"},
        "duration_ms": None,
        "created_at": "2026-01-01T00:00:00Z",
    }
    return {"response": response, "task": _task()}


def test_dashboard_figures(client: truthset.Client, live: LiveServer) -> None:
    project = client.projects.create(_name("dashboard"), SPEC, quality={"overlap": 1, "price_per_judgment": 0.5})
    client.tasks.import_tasks(project.id, [{"data": {"text": f"t{i}"}} for i in range(3)])
    with _annotator(client, live) as annotator:
        for _ in range(2):
            lease = annotator.queue.next_task(project.id)
            assert lease is not None
            annotator.queue.submit(lease.task.id, {"sentiment": "positive"}, assignment_id=lease.id, duration_ms=800)
        with pytest.raises(PermissionDeniedError):
            annotator.projects.dashboard(project.id)
    figures = client.projects.dashboard(project.id, interval="day", workers_limit=1)
    assert figures.progress.completed == 2 and figures.progress.pending == 1
    assert figures.cost.judgments == 2 and figures.cost.total == 1.0
    assert len(figures.throughput.points) == 30 and figures.throughput.points[-1].responses == 2
    assert len(figures.workers.items) == 1 and figures.workers.items[0].mean_duration_ms == 800

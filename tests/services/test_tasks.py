"""Tasks: unique_id idempotency, bulk import with bad lines, filters, keyset pagination, cancel."""

from __future__ import annotations

import errno
import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy import text as sql_text

from truthset.domain import Role, TaskStatus
from truthset.errors import Conflict, Forbidden, InvalidInput, NotFound, StorageFull, TooLarge
from truthset.schemas import ResponseCreate, TaskCreate
from truthset.services import projects, queue, tasks
from truthset.services.tasks import TaskFilter
from truthset.storage import Database
from truthset.storage import repositories as repo
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org


def _task_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.tasks)).scalar_one())


def _lines(*objects: object) -> list[tuple[int, bytes]]:
    return [(i + 1, o if isinstance(o, bytes) else orjson.dumps(o)) for i, o in enumerate(objects)]


# --- create ----------------------------------------------------------------------------------------


def test_create_task_defaults(org: Org) -> None:
    project = org.make_project(overlap=3)
    task = org.make_task(project["id"], "hi", priority=5, metadata={"source": "a"})
    assert task["created"] is True
    assert task["status"] == str(TaskStatus.PENDING)
    assert task["overlap"] == 3 and task["priority"] == 5
    assert task["data"] == {"text": "hi"} and task["metadata"] == {"source": "a"}
    assert task["response_count"] == 0 and task["result"] is None
    stored = tasks.get_task(org.db, org.owner.principal, task["id"])
    assert stored["data"] == {"text": "hi"} and stored["overlap"] == 3
    assert org.make_task(project["id"], overlap=1)["overlap"] == 1


def test_unique_id_makes_create_idempotent(org: Org) -> None:
    project = org.make_project()
    first = org.make_task(project["id"], "one", unique_id="u-1")
    again = org.make_task(project["id"], "something else", unique_id="u-1")
    assert again["created"] is False
    assert again["id"] == first["id"]
    assert again["data"] == {"text": "one"}
    assert _task_count(org.db) == 1


def test_unique_id_is_per_organization(org: Org, other_org: Org) -> None:
    mine = org.make_task(org.make_project()["id"], unique_id="shared")
    theirs = other_org.make_task(other_org.make_project()["id"], unique_id="shared")
    assert mine["created"] and theirs["created"] and mine["id"] != theirs["id"]


def test_a_unique_id_of_another_project_is_a_conflict_not_that_task(org: Org) -> None:
    pilot, production = org.make_project(), org.make_project()
    first = org.make_task(pilot["id"], "one", unique_id="u-1")
    with pytest.raises(Conflict) as exc:
        org.make_task(production["id"], "one", unique_id="u-1")
    assert "'u-1'" in exc.value.message and pilot["id"] in exc.value.message
    assert exc.value.details == {"field": "unique_id", "task_id": first["id"], "project_id": pilot["id"]}
    assert _task_count(org.db) == 1
    assert org.make_task(pilot["id"], "one", unique_id="u-1")["created"] is False  # its own project: idempotent


def test_an_import_names_the_lines_whose_unique_id_another_project_has(org: Org) -> None:
    pilot, production = org.make_project(), org.make_project()
    lines = _lines(*({"data": {"text": f"t{n}"}, "unique_id": f"u{n}"} for n in range(5)))
    tasks.import_tasks(org.db, org.owner.principal, pilot["id"], lines[:2])
    rejected = tasks.import_tasks(org.db, org.owner.principal, production["id"], lines)
    assert (rejected.created, rejected.existing, rejected.invalid, rejected.stored) == (0, 0, 2, False)
    assert [e["line"] for e in rejected.errors] == [1, 2]
    assert "'u0'" in rejected.errors[0]["message"] and pilot["id"] in rejected.errors[0]["message"]
    skipped = tasks.import_tasks(org.db, org.owner.principal, production["id"], lines, on_error="skip")
    assert (skipped.created, skipped.existing, skipped.invalid) == (3, 0, 2)
    again = tasks.import_tasks(org.db, org.owner.principal, production["id"], lines[2:])
    assert (again.created, again.existing, again.invalid) == (0, 3, 0)  # its own tasks: existing, as before
    stored = org.all_tasks(TaskFilter(project_id=production["id"]))
    assert sorted(t["unique_id"] for t in stored) == ["u2", "u3", "u4"]


def test_unique_ids_are_looked_up_through_the_index_not_by_scanning_the_organization(org: Org) -> None:
    if not org.db.is_sqlite:
        pytest.skip("SQLite's planner: it scanned the organization's tasks once per id without a CROSS JOIN")
    project = org.make_project()
    lines = _lines(*({"data": {"text": "x"}, "unique_id": f"u{n}"} for n in range(50)))
    tasks.import_tasks(org.db, org.owner.principal, project["id"], lines)
    query = repo.unique_id_query("sqlite", exclude_project=True)
    params = {"org": org.id, "project": project["id"], "ids": '["u1"]'}
    with org.db.read() as conn:
        plan = " / ".join(row[3] for row in conn.execute(sql_text(f"EXPLAIN QUERY PLAN {query.text}"), params))
    # one probe of the (organization_id, unique_id) index per id, not the organization's tasks walked
    # (ix_tasks_org_id) with the ids scanned for each
    assert "SEARCH t USING INDEX sqlite_autoindex_tasks_2 (organization_id=? AND unique_id=?)" in plan, plan


def test_create_task_validates_data_against_the_fields(org: Org) -> None:
    project = org.make_project()
    with pytest.raises(InvalidInput) as exc:
        tasks.create_task(org.db, org.owner.principal, project["id"], TaskCreate(data={"txt": "typo"}))
    assert "txt" in exc.value.message and exc.value.details == {"field": "data"}
    with pytest.raises(InvalidInput) as exc:
        tasks.create_task(org.db, org.owner.principal, project["id"], TaskCreate(data={"text": 3}))
    assert "data.text" in exc.value.message
    with pytest.raises(InvalidInput):
        tasks.create_task(org.db, org.owner.principal, project["id"], TaskCreate(data={}))
    with pytest.raises(TooLarge):
        tasks.create_task(
            org.db, org.owner.principal, project["id"], TaskCreate(data={"text": "x" * 2000}), max_task_bytes=1000
        )
    assert _task_count(org.db) == 0


def test_only_managers_create_tasks(org: Org) -> None:
    project = org.make_project()
    for role in (Role.REVIEWER, Role.ANNOTATOR):
        with pytest.raises(Forbidden):
            tasks.create_task(org.db, org.principal_for(role), project["id"], TaskCreate(data={"text": "x"}))
        with pytest.raises(Forbidden):
            tasks.import_tasks(org.db, org.principal_for(role), project["id"], _lines({"data": {"text": "x"}}))
    manager = org.principal_for(Role.MANAGER)
    assert tasks.create_task(org.db, manager, project["id"], TaskCreate(data={"text": "x"}))["created"]
    with pytest.raises(NotFound):
        tasks.create_task(org.db, manager, "0" * 24, TaskCreate(data={"text": "x"}))


# --- bulk import -----------------------------------------------------------------------------------


def test_import_unique_ids_repeated_inside_one_import_and_across_imports(org: Org) -> None:
    project = org.make_project()
    first = tasks.import_tasks(
        org.db,
        org.owner.principal,
        project["id"],
        _lines(
            {"data": {"text": "a"}, "unique_id": "a"},
            {"data": {"text": "b"}, "unique_id": "b"},
            {"data": {"text": "a again"}, "unique_id": "a"},
            {"data": {"text": "no id"}},
        ),
    )
    assert (first.received, first.created, first.existing, first.invalid, first.stored) == (4, 3, 1, 0, True)
    second = tasks.import_tasks(
        org.db,
        org.owner.principal,
        project["id"],
        _lines({"data": {"text": "b"}, "unique_id": "b"}, {"data": {"text": "c"}, "unique_id": "c"}),
    )
    assert (second.created, second.existing) == (1, 1)
    stored = org.all_tasks(TaskFilter(project_id=project["id"]))
    assert sorted(t["unique_id"] or "-" for t in stored) == ["-", "a", "b", "c"]
    assert next(t for t in stored if t["unique_id"] == "a")["data"] == {"text": "a"}
    # re-importing everything creates nothing
    again = tasks.import_tasks(
        org.db,
        org.owner.principal,
        project["id"],
        _lines(*({"data": {"text": u}, "unique_id": u} for u in "abc")),
    )
    assert (again.created, again.existing) == (0, 3)
    assert _task_count(org.db) == 4


def test_import_across_chunks_deduplicates(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "IMPORT_CHUNK", 3)
    project = org.make_project()
    rows = [{"data": {"text": str(i)}, "unique_id": f"u{i % 4}"} for i in range(10)]
    for on_error in ("reject", "skip"):
        report = tasks.import_tasks(
            org.db, org.owner.principal, project["id"], list(enumerate(rows, 1)), on_error=on_error
        )
        assert report.received == 10 and report.created + report.existing == 10
    assert _task_count(org.db) == 4


BAD_IMPORT = [
    {"data": {"text": "good 1"}},
    b"{not json",
    {"data": {"text": "good 2"}, "unique_id": "g2"},
    {"data": {"txt": "unknown field"}},
    {"data": {"text": "extra key"}, "colour": "red"},
    {"data": {"text": 5}},
    {"data": {"text": "good 3"}, "priority": 3},
    {"data": {"text": "bad priority"}, "priority": "high"},
]


def test_import_reject_stores_nothing_and_names_the_lines(org: Org) -> None:
    project = org.make_project()
    report = tasks.import_tasks(org.db, org.owner.principal, project["id"], _lines(*BAD_IMPORT), on_error="reject")
    assert report.stored is False
    assert report.created == 0 and report.received == 8 and report.invalid == 5
    assert [e["line"] for e in report.errors] == [2, 4, 5, 6, 8]
    messages = {e["line"]: e["message"] for e in report.errors}
    assert "txt" in messages[4] and "colour" in messages[5] and "data.text" in messages[6]
    assert "priority" in messages[8]
    assert _task_count(org.db) == 0


def test_import_skip_stores_the_good_lines_and_names_the_bad(org: Org) -> None:
    project = org.make_project()
    report = tasks.import_tasks(org.db, org.owner.principal, project["id"], _lines(*BAD_IMPORT), on_error="skip")
    assert report.stored is True
    assert (report.received, report.created, report.invalid) == (8, 3, 5)
    assert [e["line"] for e in report.errors] == [2, 4, 5, 6, 8]
    stored = org.all_tasks(TaskFilter(project_id=project["id"]))
    assert [t["data"]["text"] for t in stored] == ["good 1", "good 2", "good 3"]
    assert [t["priority"] for t in stored] == [0, 0, 3]


def test_import_reports_at_most_100_errors_but_counts_all(org: Org) -> None:
    project = org.make_project()
    report = tasks.import_tasks(
        org.db, org.owner.principal, project["id"], [(i, b"nope") for i in range(1, 151)], on_error="skip"
    )
    assert report.invalid == 150 and len(report.errors) == 100 and report.created == 0


def test_a_rejected_import_stops_checking_after_100_errors_but_counts_every_line(org: Org) -> None:
    """Bounded work: once the import has failed and listed 100 errors, the rest is only counted."""
    project = org.make_project()
    lines = [(i, b"nope") for i in range(1, 301)]
    report = tasks.import_tasks(org.db, org.owner.principal, project["id"], lines, on_error="reject")
    assert report.stored is False and report.received == 300
    assert report.checked == 100 and report.invalid == 100 and len(report.errors) == 100


def test_no_write_transaction_is_open_while_the_items_are_read(org: Org) -> None:
    """Phase 1 reads every item (maybe from a slow client) before phase 2 opens its first transaction."""
    project = org.make_project()
    org.db.lock_timeout = 5.0  # a write that had to wait for the import would fail as Busy

    def items(run: str) -> Iterator[tuple[int, bytes]]:
        for n in range(1, 4):
            yield n, orjson.dumps({"data": {"text": f"{run}: line {n}"}})  # new content: not a re-import
            # meanwhile another write goes through: the import holds no lock while it reads
            org.db.submit(org.make_task, project["id"], f"made while line {n} was read").result(timeout=60)

    for on_error in ("reject", "skip"):
        report = tasks.import_tasks(org.db, org.owner.principal, project["id"], items(on_error), on_error=on_error)
        assert report.created == 3
    assert _task_count(org.db) == 12


def test_an_import_is_stored_in_short_transactions(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk commits on its own, so the annotation loop's calls take turns with a long import.

    Also with on_error=reject, which used to store everything in one transaction.
    """
    project = org.make_project()
    monkeypatch.setattr(tasks, "IMPORT_CHUNK", 10)
    commits = []

    def committed(conn: object) -> None:
        commits.append(conn)

    event.listen(org.db.engine, "commit", committed)
    try:
        lines = _lines(*({"data": {"text": f"item {n}"}} for n in range(30)))
        report = tasks.import_tasks(org.db, org.owner.principal, project["id"], lines, on_error="reject")
    finally:
        event.remove(org.db.engine, "commit", committed)
    assert report.created == 30 and report.stored
    assert len(commits) >= 3  # 30 valid rows, 10 per transaction


def test_the_annotation_loop_takes_turns_with_an_import(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: a call queued while an import chunk is stored runs before the next chunk, not after the import."""
    if not org.db.is_sqlite:
        pytest.skip("SQLite's writer queue; PostgreSQL writers do not queue behind one another")
    project = org.make_project()
    monkeypatch.setattr(tasks, "IMPORT_CHUNK", 10)
    order: list[str] = []
    write = tasks._Importer.write

    def recording_write(importer: tasks._Importer, db: Database, chunk: list, *, durable: bool) -> None:
        write(importer, db, chunk, durable=durable)
        order.append("chunk")
        if len(order) == 1:  # an annotator's call arrives while the first chunk is being stored
            arrives = threading.Thread(target=lambda: db.submit(order.append, "loop call"))
            arrives.start()
            arrives.join()

    monkeypatch.setattr(tasks._Importer, "write", recording_write)
    lines = _lines(*({"data": {"text": f"item {n}"}} for n in range(30)))
    assert tasks.import_tasks(org.db, org.owner.principal, project["id"], lines).created == 30
    assert order == ["chunk", "loop call", "chunk", "chunk"]


def test_deep_or_huge_values_are_that_lines_error_only(org: Org) -> None:
    """Metadata nested 300 levels or an integer beyond 64 bits: the line is refused by name, not the import."""
    project = org.make_project()
    deep_json = b'{"a":' * 300 + b"{}" + b"}" * 300
    deep = orjson.loads(deep_json)
    lines = [
        (1, b'{"data": {"text": "good"}}'),
        (2, b'{"data": {"text": "deep"}, "metadata": ' + deep_json + b"}"),
        (3, b'{"data": {"text": "huge"}, "metadata": {"n": 1180591620717411303424}}'),
        (4, {"data": {"text": "deep item"}, "metadata": deep}),
        (5, {"data": {"text": "huge item"}, "metadata": {"n": 2**70}}),
        (6, b'{"data": {"text": "nul"}, "metadata": {"k": "a\\u0000b"}}'),
        (7, b'{"data": {"text": "a long number in a string is fine"}, "unique_id": "12345678901234567890123"}'),
        (8, b'{"data": {"text": "many shallow lists"}, "metadata": {"l": [' + b",".join([b"[]"] * 100) + b"]}}"),
        (9, b'{"data": {"text": "an escaped backslash, then u0000"}, "metadata": {"k": "\\\\u0000"}}'),
    ]
    report = tasks.import_tasks(org.db, org.owner.principal, project["id"], lines, on_error="skip")
    assert report.created == 4 and [e["line"] for e in report.errors] == [2, 3, 4, 5, 6]
    for error in report.errors:
        assert error["message"].startswith("metadata: "), error
    assert "64 levels" in report.errors[0]["message"] and "64-bit" in report.errors[1]["message"]
    assert "NUL" in report.errors[4]["message"]
    assert sorted(t["data"]["text"] for t in org.all_tasks(TaskFilter(project_id=project["id"]))) == [
        "a long number in a string is fine",
        "an escaped backslash, then u0000",
        "good",
        "many shallow lists",
    ]


def test_import_into_a_batch(org: Org) -> None:
    project = org.make_project()
    batch = org.make_batch(project["id"])
    report = tasks.import_tasks(
        org.db, org.owner.principal, project["id"], _lines({"data": {"text": "x"}}), batch_id=batch["id"]
    )
    assert report.created == 1
    (task,) = org.all_tasks(TaskFilter(batch_id=batch["id"]))
    assert task["status"] == str(TaskStatus.STAGED)
    # a per-line batch_id other than the import's is refused
    other = org.make_batch(project["id"])
    mixed = tasks.import_tasks(
        org.db,
        org.owner.principal,
        project["id"],
        _lines({"data": {"text": "y"}, "batch_id": other["id"]}),
        batch_id=batch["id"],
        on_error="skip",
    )
    assert mixed.created == 0 and [e["line"] for e in mixed.errors] == [1]


def test_empty_import(org: Org) -> None:
    project = org.make_project()
    for on_error in ("reject", "skip"):
        report = tasks.import_tasks(org.db, org.owner.principal, project["id"], [], on_error=on_error)
        assert (report.received, report.created, report.stored) == (0, 0, True)
    with pytest.raises(NotFound):
        tasks.import_tasks(org.db, org.owner.principal, project["id"], [], batch_id="0" * 24, on_error="skip")


# --- listing ---------------------------------------------------------------------------------------


def _set_times(db: Database, task_id: str, **values: datetime) -> None:
    with db.write() as conn:
        conn.execute(update(t.tasks).where(t.tasks.c.id == task_id).values(**values))


def test_list_tasks_filters(org: Org) -> None:
    project = org.make_project()
    other_project = org.make_project()
    batch = org.make_batch(project["id"])
    a = org.make_task(project["id"], "a", unique_id="ua", metadata={"source": "s1", "n": 5})
    b = org.make_task(project["id"], "b", batch_id=batch["id"], metadata={"source": "s2"})
    c = org.make_task(project["id"], "c", batch_id=batch["id"], metadata={"source": "s1", "lang": "fr"})
    projects.finalize_batch(org.db, org.owner.principal, batch["id"])
    d = org.make_task(other_project["id"], "d")
    queue.submit(org.db, org.principal_for(Role.ANNOTATOR), c["id"], ResponseCreate(answer={"sentiment": "neutral"}))
    tasks.cancel_task(org.db, org.owner.principal, d["id"])

    jan, feb, mar, apr = (datetime(2024, m, 1) for m in (1, 2, 3, 4))
    _set_times(org.db, a["id"], created_at=jan, updated_at=mar)
    _set_times(org.db, b["id"], created_at=feb, updated_at=feb)
    _set_times(org.db, c["id"], created_at=mar, updated_at=apr, completed_at=apr)
    _set_times(org.db, d["id"], created_at=apr, updated_at=apr)

    def ids(**kw: object) -> list[str]:
        found = org.all_tasks(TaskFilter(**kw))  # type: ignore[arg-type]
        return [x["id"] for x in found]

    assert ids() == [a["id"], b["id"], c["id"], d["id"]]
    assert ids(project_id=project["id"]) == [a["id"], b["id"], c["id"]]
    assert ids(batch_id=batch["id"]) == [b["id"], c["id"]]
    assert ids(status=TaskStatus.PENDING) == [a["id"], b["id"]]
    assert ids(status=TaskStatus.COMPLETED) == [c["id"]]
    assert ids(status=TaskStatus.CANCELED) == [d["id"]]
    assert ids(unique_id="ua") == [a["id"]]
    assert ids(unique_id="nope") == []
    assert ids(created_after=feb) == [b["id"], c["id"], d["id"]]  # inclusive
    assert ids(created_before=mar) == [a["id"], b["id"]]  # exclusive
    assert ids(created_after=feb, created_before=apr) == [b["id"], c["id"]]
    assert ids(updated_after=mar) == [a["id"], c["id"], d["id"]]
    assert ids(updated_before=mar) == [b["id"]]
    assert ids(completed_after=mar) == [c["id"]]
    assert ids(completed_before=mar) == []
    # aware datetimes are compared in UTC
    assert ids(created_after=datetime(2024, 2, 1, 1, tzinfo=UTC) + timedelta(hours=-1)) == [b["id"], c["id"], d["id"]]
    assert ids(metadata={"source": "s1"}) == [a["id"], c["id"]]
    assert ids(metadata={"source": "s1", "lang": "fr"}) == [c["id"]]
    assert ids(metadata={"source": "s3"}) == []
    assert ids(project_id=project["id"], status=TaskStatus.PENDING, metadata={"source": "s2"}) == [b["id"]]


def test_metadata_filters_match_json_text_on_every_database(org: Org) -> None:
    """Numbers, booleans and keys with dots match by their JSON text on SQLite and PostgreSQL alike."""
    project = org.make_project()
    meta = {"flag": True, "off": False, "n": 5, "x": 1.5, "s": "en", "z": None, "a.b": "dotted", "sp ace": "y"}
    task = org.make_task(project["id"], "a", metadata=meta)
    org.make_task(project["id"], "b", metadata={"flag": False, "n": 6, "s": "true"})

    def ids(**metadata: str) -> list[str]:
        return [x["id"] for x in org.all_tasks(TaskFilter(metadata=metadata))]

    for key, text in (("flag", "true"), ("off", "false"), ("n", "5"), ("x", "1.5"), ("s", "en"), ("a.b", "dotted")):
        assert ids(**{key: text}) == [task["id"]], key
    assert ids(**{"sp ace": "y"}) == [task["id"]]
    assert ids(flag="1") == [] and ids(n="5.0") == [] and ids(z="null") == [] and ids(missing="x") == []


def test_list_tasks_needs_read_rights(org: Org) -> None:
    org.make_task(org.make_project()["id"])
    assert len(tasks.list_tasks(org.db, org.principal_for(Role.REVIEWER), TaskFilter(), cursor=None, limit=5)[0]) == 1
    with pytest.raises(Forbidden):
        tasks.list_tasks(org.db, org.principal_for(Role.ANNOTATOR), TaskFilter(), cursor=None, limit=5)


def test_keyset_pagination_returns_each_task_exactly_once(org: Org) -> None:
    project = org.make_project()
    total = 2500
    made = org.make_tasks(project["id"], total)
    assert len(made) == total
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page, cursor = tasks.list_tasks(
            org.db, org.owner.principal, TaskFilter(project_id=project["id"]), cursor=cursor, limit=37
        )
        pages += 1
        assert 1 <= len(page) <= 37
        seen.extend(x["id"] for x in page)
        if cursor is None:
            break
    assert pages == -(-total // 37)
    assert len(seen) == len(set(seen)) == total
    assert seen == sorted(seen) == [x["id"] for x in made]
    # creation order is id order
    assert [x["data"]["text"] for x in made] == [f"item {i}" for i in range(total)]


def test_an_exact_last_page_has_no_cursor(org: Org) -> None:
    project = org.make_project()
    org.make_tasks(project["id"], 4)
    first, cursor = tasks.list_tasks(org.db, org.owner.principal, TaskFilter(), cursor=None, limit=2)
    second, cursor = tasks.list_tasks(org.db, org.owner.principal, TaskFilter(), cursor=cursor, limit=2)
    assert len(first) == len(second) == 2 and cursor is None


# --- cancel, responses ------------------------------------------------------------------------------


def test_cancel_task(org: Org) -> None:
    project = org.make_project()
    pending, done = org.make_task(project["id"]), org.make_task(project["id"])
    annotator = org.principal_for(Role.ANNOTATOR)
    queue.submit(org.db, annotator, done["id"], ResponseCreate(answer={"sentiment": "negative"}))
    with pytest.raises(Forbidden):
        tasks.cancel_task(org.db, annotator, pending["id"])
    canceled = tasks.cancel_task(org.db, org.owner.principal, pending["id"])
    assert canceled["status"] == str(TaskStatus.CANCELED)
    assert tasks.cancel_task(org.db, org.owner.principal, pending["id"])["status"] == "canceled"
    with pytest.raises(Conflict):
        tasks.cancel_task(org.db, org.owner.principal, done["id"])
    with pytest.raises(NotFound):
        tasks.cancel_task(org.db, org.owner.principal, "0" * 24)
    assert queue.next_assignment(org.db, org.principal_for(Role.REVIEWER), project["id"]) is None


def test_task_responses(org: Org) -> None:
    project = org.make_project(overlap=2)
    task = org.make_task(project["id"])
    first, second = org.add_member(), org.add_member()
    queue.submit(org.db, first.principal, task["id"], ResponseCreate(answer={"sentiment": "negative"}))
    queue.submit(org.db, second.principal, task["id"], ResponseCreate(answer={"sentiment": "negative", "stars": 2}))
    responses = tasks.task_responses(org.db, org.owner.principal, task["id"])
    assert [r["worker_id"] for r in responses] == [first.worker_id, second.worker_id]
    assert responses[1]["answer"] == {"sentiment": "negative", "stars": 2}
    with pytest.raises(Forbidden):
        tasks.task_responses(org.db, first.principal, task["id"])
    with pytest.raises(NotFound):
        tasks.get_task(org.db, org.owner.principal, "0" * 24)


@pytest.mark.parametrize("loop_busy", [False, True])
def test_an_import_pauses_between_its_steps_only_while_the_annotation_loop_is_busy(
    org: Org, monkeypatch: pytest.MonkeyPatch, loop_busy: bool
) -> None:
    """Background work yields to people: each parse and store step is followed by a pause of its length."""
    project = org.make_project()
    monkeypatch.setattr(tasks, "IMPORT_CHUNK", 10)
    monkeypatch.setattr(org.db, "loop_busy_since", lambda moment: loop_busy)
    pauses: list[float] = []
    monkeypatch.setattr(tasks.time, "sleep", pauses.append)
    lines = _lines(*({"data": {"text": f"item {n}"}} for n in range(30)))
    assert tasks.import_tasks(org.db, org.owner.principal, project["id"], lines).created == 30
    assert len(pauses) == (10 if loop_busy else 0)  # 4 reads (the last finds the end), 3 parses, 3 stores
    assert all(pause >= 0 for pause in pauses)


def test_only_the_annotation_loop_marks_the_hot_path(db: Database) -> None:
    moment = time.monotonic()
    assert not db.loop_busy_since(moment)
    db.submit(lambda: None, hot=False).result(timeout=60)
    assert not db.loop_busy_since(moment)  # an import's step is not the loop
    db.submit(lambda: None).result(timeout=60)
    assert db.loop_busy_since(moment)
    time.sleep(0.01)  # the call's end is stamped by its future's callback, just after the caller wakes
    assert not db.loop_busy_since(time.monotonic())  # a step that began after the call ended saw none


class FullDiskFile(io.BytesIO):
    """A temporary file on a full disk: every write fails as the kernel's ENOSPC would."""

    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_temporary_directory_refuses_the_import_as_storage_full(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Phase 1 spools checked rows to TMPDIR: a full disk there is a 507 naming it, not a 500."""
    project = org.make_project()
    monkeypatch.setattr(tasks.tempfile, "TemporaryFile", lambda **_: FullDiskFile())
    lines = _lines(*({"data": {"text": f"item {n}"}} for n in range(3)))
    with pytest.raises(StorageFull, match="temporary directory"):
        tasks.import_tasks(org.db, org.owner.principal, project["id"], lines)
    assert _task_count(org.db) == 0

"""Export reads one snapshot: what changes while it runs does not show in it."""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
import time
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert

from truthset.domain import Principal
from truthset.schemas import ProjectCreate
from truthset.services import accounts, export, export_readers, formats, pacing, projects, tasks
from truthset.storage import Database
from truthset.storage import tables as t
from truthset.storage.ids import new_ids, utcnow

if TYPE_CHECKING:
    from conftest import Org


def test_export_shows_the_state_at_its_start_while_tasks_change(db: Database, org: Org) -> None:
    project = org.make_project()
    made = org.make_tasks(project["id"], 2500)  # more than one block of rows
    rows = export.export_rows(db, org.owner.principal, project["id"], status=None)
    first = next(rows)
    # meanwhile, through the services: a late task is canceled and a new one is created
    tasks.cancel_task(db, org.owner.principal, made[-1]["id"])
    org.make_task(project["id"], "created during the export")
    rest = list(rows)
    exported = [first, *rest]
    assert [row["task_id"] for row in exported] == [task["id"] for task in made]
    assert {row["status"] for row in exported} == {"pending"}
    # a new export sees the changes
    after = list(export.export_rows(db, org.owner.principal, project["id"], status=None))
    assert len(after) == 2501 and after[2499]["status"] == "canceled"


def test_write_jsonl_writes_one_line_per_row_in_blocks() -> None:
    rows = [{"task_id": str(i), "answer": None} for i in range(export.EXPORT_BLOCK * 2 + 3)]
    out = io.BytesIO()
    assert export.write_jsonl(iter(rows), out) == len(rows)
    assert [orjson.loads(line) for line in out.getvalue().splitlines()] == rows


def test_lines_rendered_by_several_readers_are_one_snapshot_in_order(
    db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines come from several connections sharing the export's snapshot
    (services/export_readers.py), block by block: still one state, in id order, all of it."""
    monkeypatch.setattr(export, "EXPORT_BLOCK", 4)  # 23 tasks: 6 blocks over 2 readers
    project = org.make_project()
    made = org.make_tasks(project["id"], 23)
    lines = export.export_lines(db, org.owner.principal, project["id"], filters=export.ExportFilter(status=None))
    first = next(lines)
    readers = [thread for thread in threading.enumerate() if thread.name.startswith("export-reader")]
    assert len(readers) == 2
    tasks.cancel_task(db, org.owner.principal, made[-1]["id"])
    org.make_task(project["id"], "created during the export")
    exported = [orjson.loads(line) for line in [first, *lines]]
    assert [row["task_id"] for row in exported] == [task["id"] for task in made]
    assert {row["status"] for row in exported} == {"pending"}
    rows = list(export.export_rows(db, org.owner.principal, project["id"], status=None))
    assert len(rows) == 24 and rows[22]["status"] == "canceled"


def test_an_export_stopped_early_leaves_no_reader_running(
    db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "EXPORT_BLOCK", 2)
    project = org.make_project()
    org.make_tasks(project["id"], 30)
    lines = export.export_lines(db, org.owner.principal, project["id"], filters=export.ExportFilter(status=None))
    next(lines)
    lines.close()  # a cancelled job stops reading
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("export-reader")]


def test_the_readers_pause_after_each_block_only_while_the_annotation_loop_is_busy(
    db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a server that also serves annotators the readers are background work (services/pacing.py)."""
    monkeypatch.setattr(export, "EXPORT_BLOCK", 5)  # 20 tasks: 4 blocks
    project = org.make_project()
    org.make_tasks(project["id"], 20)
    paused: list[float] = []
    clocks = SimpleNamespace(sleep=paused.append, monotonic=time.monotonic, thread_time=time.thread_time)
    monkeypatch.setattr(pacing, "time", clocks)  # the pacer's sleeps only, not every thread's
    filters = export.ExportFilter(status=None)
    assert len(list(export.export_lines(db, org.owner.principal, project["id"], filters=filters))) == 20
    assert paused == []  # nobody annotating: full speed
    monkeypatch.setattr(Database, "loop_busy_since", lambda self, moment: True)
    assert len(list(export.export_lines(db, org.owner.principal, project["id"], filters=filters))) == 20
    assert len(paused) == 4 and all(pause >= 0 for pause in paused)


def test_postgres_export_finds_a_tasks_responses_by_task_before_any_analyze(
    fresh_postgres_url: str, default_spec: dict
) -> None:
    """Right after a bulk load, before autovacuum's first ANALYZE, the planner has no statistics:
    a tenant check that could be an index condition made it AND the task index with the
    organization index, reading every response of the organization for each task (a 200,000-task
    export took 53 s, not 3). The line query must reach a task's responses and reviews by task."""
    db = Database(fresh_postgres_url)
    db.create_all()
    try:
        owner, project_id = _bulk_loaded_project(db, default_spec, tasks_count=3000)
        project = projects.get_project(db, owner, project_id)
        for lines in (None, formats.get("parquet").line_sql(project, True)):  # JSONL's line, Parquet's
            query = export.line_query(db, owner, project_id, lines=lines).order_by(t.tasks.c.id)
            with db.read() as conn:
                sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
                plan = "\n".join(row for (row,) in conn.exec_driver_sql("EXPLAIN " + sql))
            assert "ix_responses_task" in plan or "uq_responses_task_worker" in plan, plan
            assert "ix_responses_org_id" not in plan and "ix_reviews_org_id" not in plan, plan
        lines = [orjson.loads(line) for line in export.export_lines(db, owner, project_id)]
        assert len(lines) == 3000 and {len(line["responses"]) for line in lines} == {3}
    finally:
        db.dispose()


def _bulk_loaded_project(db: Database, spec: dict, *, tasks_count: int) -> tuple[Principal, str]:
    """A project of completed tasks with 3 responses each, inserted in bulk (no ANALYZE after)."""
    created = accounts.init_organization(db, "Acme", "owner@acme.example")
    owner = accounts.authenticate(db, created["api_key"])
    project = projects.create_project(db, owner, ProjectCreate(name="bulk", spec=spec, quality={"overlap": 3}))
    org, now = owner.organization_id, utcnow()
    workers = new_ids(3)
    task_ids = new_ids(tasks_count)
    result = {"answer": {"sentiment": "positive"}, "confidence": {"sentiment": 0.9}}
    with db.write() as conn:
        conn.execute(
            insert(t.workers),
            [{"id": w, "organization_id": org, "kind": "human", "name": w, "created_at": now} for w in workers],
        )
        conn.execute(
            insert(t.tasks),
            [
                {"id": task_id, "organization_id": org, "project_id": project["id"], "unique_id": f"u{i}",
                 "data": {"text": f"review {i}"}, "metadata": {}, "priority": 0, "status": "completed",
                 "overlap": 3, "response_count": 3, "lease_count": 0, "result": result, "confidence": 0.9,
                 "created_at": now, "updated_at": now, "completed_at": now}
                for i, task_id in enumerate(task_ids)
            ],
        )  # fmt: skip
        conn.execute(
            insert(t.responses),
            [
                {"id": response_id, "organization_id": org, "project_id": project["id"], "task_id": task_id,
                 "worker_id": worker_id, "answer": {"sentiment": "positive"}, "duration_ms": 1000, "created_at": now}
                for task_id in task_ids
                for worker_id, response_id in zip(workers, new_ids(3), strict=True)
            ],
        )  # fmt: skip
    return owner, project["id"]


def test_postgres_readers_take_turns_while_the_annotation_loop_is_busy(
    db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two PostgreSQL backends rendering at once took a core from the annotators' backends: while
    the loop is busy the readers render one block at a time (services/export_readers.py); idle, at once."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite's readers render in the server's own threads")
    monkeypatch.setattr(export, "EXPORT_BLOCK", 5)  # 20 tasks: 4 blocks over 2 readers
    project = org.make_project()
    org.make_tasks(project["id"], 20)
    spans: list[tuple[float, float]] = []
    render = export_readers.render_lines

    def slow_render(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        time.sleep(0.05)  # long enough for the other reader's block to overlap, were it let
        block = render(*args, **kwargs)
        spans.append((started, time.perf_counter()))
        return block

    monkeypatch.setattr(export_readers, "render_lines", slow_render)
    # no pauses (the pacer's sleeps only, not every thread's): only the turns keep blocks apart
    clocks = SimpleNamespace(sleep=lambda seconds: None, monotonic=time.monotonic, thread_time=time.thread_time)
    monkeypatch.setattr(pacing, "time", clocks)
    filters = export.ExportFilter(status=None)

    def overlapping() -> int:
        spans.clear()
        assert len(list(export.export_lines(db, org.owner.principal, project["id"], filters=filters))) == 20
        ordered = sorted(spans)
        return sum(1 for a, b in itertools.pairwise(ordered) if b[0] < a[1])

    assert overlapping() > 0  # nobody annotating: both readers at once
    monkeypatch.setattr(Database, "loop_busy_since", lambda self, moment: True)
    assert overlapping() == 0


def test_an_export_file_s_checksum_is_that_of_every_byte_written_in_order(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's file is hashed in a thread of its own: small writes gathered, big ones handed
    over as they are, and a buffer the writer reuses after write() returns (pyarrow's) copied
    first, so the checksum is the file's whatever the mix. The hashing waits here until every
    write is done, as it may when the machine is busy."""
    from truthset.services import export_jobs
    from truthset.services.export_jobs import _HashingFile

    written = threading.Event()
    hash_chunks = _HashingFile._hash_chunks
    monkeypatch.setattr(export_jobs, "_HASH_QUEUE", 100)
    monkeypatch.setattr(_HashingFile, "_hash_chunks", lambda self: (written.wait(10), hash_chunks(self)))
    reused = bytearray(b"a" * (2 << 20))
    path = tmp_path / "out"
    with open(path, "wb") as raw, _HashingFile(raw) as out:
        for size in (10, 3 << 20, 7, 1 << 20, 5):
            out.write(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
            out.write(reused)
            reused[:] = b"b" * len(reused)  # changed as soon as written
            out.write(memoryview(reused)[:10])
            reused[:] = b"c" * len(reused)
        written.set()
    content = path.read_bytes()
    assert out.size == len(content) and out.hexdigest() == hashlib.sha256(content).hexdigest()


def test_postgres_parquet_readers_share_the_export_s_snapshot_and_plan_each_block(fresh_postgres_url: str) -> None:
    """The ADBC readers of a Parquet export on PostgreSQL (services/export_arrow.py) adopt the
    export's snapshot, read only, and plan each block's range knowing its ids (not the prepared
    statement's generic plan, made for any range)."""
    from truthset.services import export_arrow

    db = Database(fresh_postgres_url)
    db.create_all()
    try:
        conninfo = db.libpq_conninfo()
        with db.snapshot(lasting=True) as conn:
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            reader = export_arrow._Reader(conninfo, snapshot)
            try:
                settings = {
                    name: reader.table(f"SELECT current_setting('{name}')", []).column(0)[0].as_py()
                    for name in ("plan_cache_mode", "transaction_isolation", "transaction_read_only", "jit")
                }
            finally:
                reader.close()
        assert settings == {
            "plan_cache_mode": "force_custom_plan",
            "transaction_isolation": "repeatable read",
            "transaction_read_only": "on",
            "jit": "off",
        }
        with pytest.raises(RuntimeError, match="unexpected snapshot id"):
            export_arrow._Reader(conninfo, "1'; DROP TABLE tasks; --")
    finally:
        db.dispose()


@pytest.mark.parametrize("query", ["", "?sslmode=disable&application_name=truthset%20export"])
def test_postgres_parquet_readers_connect_as_the_database_s_own_connections_do(
    fresh_postgres_url: str, postgres_admin: Any, default_spec: dict, query: str
) -> None:
    """The ADBC readers connect with the libpq options psycopg is given (Database.libpq_conninfo):
    a user name with a space (which libpq refuses in a URI, where SQLAlchemy leaves it as it is),
    a password with URI and conninfo quoting characters, and the URL's query options."""
    from sqlalchemy.engine import make_url

    from truthset.services import export_arrow

    admin_db = Database(fresh_postgres_url)
    admin_db.create_all()
    admin_db.dispose()
    role, password = f"ts reader {uuid.uuid4().hex[:8]}", "p@ss:w/rd %20'x\\"
    with postgres_admin.connect() as conn:
        literal = password.replace("'", "''").replace("%", "%%")  # %%: the driver's placeholder mark
        conn.exec_driver_sql(f"""CREATE ROLE "{role}" LOGIN SUPERUSER PASSWORD '{literal}'""")
    url = make_url(fresh_postgres_url + query).set(username=role, password=password)
    db = Database(url.render_as_string(hide_password=False))
    try:
        assert f"user='{role}'" in db.libpq_conninfo() and "context" not in db.libpq_conninfo()
        owner, project_id = _bulk_loaded_project(db, default_spec, tasks_count=30)
        with db.snapshot(lasting=True) as conn:
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            reader = export_arrow._Reader(db.libpq_conninfo(), snapshot)
            try:
                seen = reader.table("SELECT current_user, current_setting('application_name')", []).to_pylist()
            finally:
                reader.close()
        assert seen == [{"current_user": role, "current_setting": "truthset export" if query else ""}]
        writer, out = formats.get("parquet"), io.BytesIO()
        project = projects.get_project(db, owner, project_id)
        filters = export.ExportFilter(status=None)
        assert writer.write(project, export.rows_for(writer, db, owner, project_id, filters), out) == 30
        assert pq.read_table(io.BytesIO(out.getvalue())).num_rows == 30
    finally:
        db.dispose()
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE "{role}"')

"""Export rows carry full provenance (every response with its worker, time and review), read in one
query per block of tasks; each format is read back by the library that consumes it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import orjson
import pyarrow.parquet as pq
import pytest
import sqlalchemy
from sqlalchemy import event, select, update

from truthset.domain import ReviewStatus, TaskStatus
from truthset.errors import InvalidInput
from truthset.schemas import ResponseCreate
from truthset.services import export, formats, queue, review, tasks
from truthset.services.formats import _arrow_lines
from truthset.storage import Database
from truthset.storage import tables as t

if TYPE_CHECKING:
    from conftest import Org

FULL_SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}, {"name": "chat", "type": "conversation", "required": False}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["positive", "negative", "neutral"]},
        {"name": "topics", "type": "labels", "options": ["sport", "tech"], "required": False},
        {"name": "stars", "type": "rating", "min": 1, "max": 5, "required": False},
        {"name": "note", "type": "text", "required": False},
    ],
}


def labeled_project(org: Org) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Three tasks: two answered by two annotators each (one then accepted, the other fixed), one open."""
    project = org.make_project(spec=FULL_SPEC, overlap=2)
    made = org.make_tasks(project["id"], 3, metadata={"source": "shop"})
    first, second = org.add_member("annotator", name="Ann"), org.add_member("annotator", name="Bob")
    answers = [
        {"sentiment": "positive", "topics": ["tech"], "stars": 4, "note": "fine"},
        {"sentiment": "positive", "topics": ["tech", "sport"], "stars": 5},
    ]
    for task in made[:2]:
        for actor, answer in zip((first, second), answers, strict=True):
            queue.submit(org.db, actor.principal, task["id"], ResponseCreate(answer=answer, duration_ms=1200))
    reviewer = org.principal_for("reviewer")
    review.submit_review(org.db, reviewer, made[0]["id"], "accept")
    review.submit_review(org.db, reviewer, made[1]["id"], "fix", answer={"sentiment": "neutral"})
    return project, made


def test_rows_hold_every_response_with_its_worker_and_review(db: Database, org: Org) -> None:
    project, made = labeled_project(org)
    rows = list(export.export_rows(db, org.owner.principal, project["id"]))
    assert [row["task_id"] for row in rows] == [task["id"] for task in made[:2]]
    accepted, fixed = rows
    assert set(accepted) >= {"task_id", "unique_id", "batch_id", "status", "data", "metadata", "answer",
                             "confidence", "result", "completed_at", "responses", "reviews", "updated_at"}  # fmt: skip
    assert [r["worker_name"] for r in accepted["responses"]] == ["Ann", "Bob"]
    assert {r["worker_kind"] for r in accepted["responses"]} == {"human"}
    assert accepted["responses"][1]["answer"]["topics"] == ["sport", "tech"]
    assert all(r["duration_ms"] == 1200 and r["created_at"].endswith("Z") for r in accepted["responses"])
    assert accepted["review_status"] == "accepted" and [v["verdict"] for v in accepted["reviews"]] == ["accept"]
    assert {r["review"]["verdict"] for r in accepted["responses"]} == {"accept"}
    assert fixed["review_status"] == "fixed" and fixed["answer"]["sentiment"] == "neutral"
    fix = fixed["reviews"][0]
    assert fix["verdict"] == "fix" and fix["response_id"] == fixed["responses"][-1]["id"]
    assert len(fixed["responses"]) == 3 and fixed["responses"][-1]["answer"] == {"sentiment": "neutral"}
    assert fixed["result"]["methods"]["sentiment"] == "review_fix"


def test_responses_are_read_in_one_query_per_block(db: Database, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    project = org.make_project()
    made = org.make_tasks(project["id"], 25)
    for task in made:
        queue.submit(db, org.owner.principal, task["id"], ResponseCreate(answer={"sentiment": "negative"}))
    monkeypatch.setattr(export, "EXPORT_BLOCK", 10)
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731 (before_cursor_execute's statement)
    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        rows = list(export.export_rows(db, org.owner.principal, project["id"]))
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    assert len(rows) == 25 and all(len(row["responses"]) == 1 for row in rows)
    from_responses = [s for s in statements if "FROM responses" in s]
    assert len(from_responses) == 3  # 25 tasks in blocks of 10


def test_jsonl_csv_and_parquet_read_back(db: Database, org: Org, tmp_path) -> None:
    project, made = labeled_project(org)
    rows = list(export.export_rows(db, org.owner.principal, project["id"]))
    files = {}
    for name in ("jsonl", "csv", "parquet"):
        out = io.BytesIO()
        writer = formats.get(name)
        assert writer.write(project, iter(rows), out) == 2
        files[name] = out.getvalue()
        (tmp_path / f"export.{writer.extension}").write_bytes(out.getvalue())
    assert [orjson.loads(line) for line in files["jsonl"].splitlines()] == rows

    table = list(csv.DictReader(io.StringIO(files["csv"].decode())))
    assert [line["task_id"] for line in table] == [task["id"] for task in made[:2]]
    assert table[0]["answer.sentiment"] == "positive" and table[1]["answer.sentiment"] == "neutral"
    assert orjson.loads(table[0]["answer.topics"]) == rows[0]["answer"]["topics"] == ["tech"]
    assert table[0]["data.text"] == "item 0"
    assert table[0]["data.chat"] == "" and orjson.loads(table[0]["metadata"]) == {"source": "shop"}
    assert (
        table[0]["method.sentiment"]
        and float(table[0]["confidence.sentiment"]) == rows[0]["result"]["confidence"]["sentiment"]
    )
    assert table[0]["response_count"] == "2" and orjson.loads(table[0]["responses"]) == rows[0]["responses"]

    parquet = pq.read_table(tmp_path / "export.parquet")
    assert parquet.num_rows == 2 and parquet.column("task_id").to_pylist() == [task["id"] for task in made[:2]]
    first = parquet.to_pylist()[0]
    assert first["answer"]["sentiment"] == "positive" and first["answer"]["topics"] == ["tech"]
    assert first["data"] == {"text": "item 0", "chat": None}
    assert [r["worker_name"] for r in first["responses"]] == ["Ann", "Bob"]
    assert first["responses"][0]["answer"]["stars"] == 4.0 and first["responses"][0]["review"]["verdict"] == "accept"
    assert first["completed_at"].tzinfo is not None and orjson.loads(first["result"]) == rows[0]["result"]

    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "export.parquet"), split="train",
                                   cache_dir=str(tmp_path / "hf"))  # fmt: skip
    assert loaded.num_rows == 2 and loaded[1]["answer"]["sentiment"] == "neutral"
    assert loaded[0]["responses"][1]["answer"]["topics"] == ["sport", "tech"]
    assert loaded.features["answer"]["stars"].dtype == "float64"


def test_an_empty_export_is_a_file_in_every_format(db: Database, org: Org) -> None:
    """Also through each writer's fast path (rows_for: the database's lines, or Arrow on
    PostgreSQL), where a project without a matching task is one empty block (a delta export with
    nothing new failed there, and its job was retried again and again)."""
    project = org.make_project()
    org.make_tasks(project["id"], 2)  # none completed
    for name in ("jsonl", "csv", "parquet"):
        writer = formats.get(name)
        for rows in (
            export.export_rows(db, org.owner.principal, project["id"], status=TaskStatus.COMPLETED),
            export.rows_for(writer, db, org.owner.principal, project["id"], export.ExportFilter()),
        ):
            out = io.BytesIO()
            assert writer.write(project, rows, out) == 0, name
    assert pq.read_table(io.BytesIO(out.getvalue())).num_rows == 0


def test_an_unknown_format_names_the_formats() -> None:
    with pytest.raises(InvalidInput, match="the formats are: jsonl, csv, parquet") as raised:
        formats.get("xlsx")
    assert raised.value.details["formats"][:3] == ["jsonl", "csv", "parquet"]


DOCS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def test_docs_formats_md_shows_the_row_shape_and_its_parquet_example_runs(
    db: Database, org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented JSONL line has exactly the keys of a real row (the contract other writers read)."""
    text = DOCS.read_text().split("### JSONL", 1)[1]
    documented = orjson.loads(re.search(r"```json\n(.*?)```", text, flags=re.S).group(1))
    project, _ = labeled_project(org)
    row = next(export.export_rows(db, org.owner.principal, project["id"]))
    assert set(documented) == set(row)
    assert set(documented["responses"][0]) == set(row["responses"][0])
    assert set(documented["reviews"][0]) == set(row["reviews"][0])
    with (tmp_path / "tasks.parquet").open("wb") as out:
        formats.get("parquet").write(project, export.export_rows(db, org.owner.principal, project["id"]), out)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    parquet = DOCS.read_text().split("### Parquet", 1)[1].split("\n### ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", parquet, flags=re.S)
    exec(compile(example, "docs/formats.md", "exec"), {})


def test_the_lines_the_database_renders_are_the_rows(db: Database, org: Org) -> None:
    """JSONL is rendered by the database (export_lines); it must say exactly what export_rows says,
    also for texts people typed that need escaping, a model's scores and a pre-filled answer."""
    project, made = labeled_project(org)
    org.make_tasks(project["id"], 2, batch_id=org.make_batch(project["id"])["id"])
    awkward = 'Zoë "Z" \\ O\'Brien\ttab\nnew line \u2028 ✓'
    with db.write() as conn:
        responses = select(t.responses.c.id, t.responses.c.worker_id).where(t.responses.c.task_id == made[0]["id"])
        response_id, worker_id = conn.execute(responses.order_by(t.responses.c.id)).first()
        conn.execute(update(t.workers).where(t.workers.c.id == worker_id).values(name=awkward))
        conn.execute(
            update(t.responses)
            .where(t.responses.c.id == response_id)
            .values(scores={"sentiment": {"positive": 0.8, "neutral": 0.2}}, prefill={"sentiment": "positive"})
        )
        conn.execute(update(t.reviews).where(t.reviews.c.task_id == made[0]["id"]).values(reason=awkward))
        conn.execute(update(t.tasks).where(t.tasks.c.id == made[2]["id"]).values(unique_id=awkward))
    for filters in (export.ExportFilter(), export.ExportFilter(status=None), export.ExportFilter(min_confidence=0.5)):
        rows = list(export.export_rows(db, org.owner.principal, project["id"], filters=filters))
        totals: list[int] = []
        lines = list(
            export.export_lines(db, org.owner.principal, project["id"], filters=filters, on_total=totals.append)
        )
        assert [orjson.loads(line) for line in lines] == rows and totals == [len(rows)]
        if filters.status is None:
            assert any(row["reviews"] for row in rows) and any(not row["responses"] for row in rows)
            assert rows[0]["responses"][0]["worker_name"] == rows[0]["reviews"][0]["reason"] == awkward
            assert rows[0]["responses"][0]["prefill"] == {"sentiment": "positive"}
            assert [row["unique_id"] for row in rows].count(awkward) == 1


@pytest.mark.parametrize("refused", [False, True], ids=["pyarrow reads the lines", "a refused block"])
def test_parquet_from_the_database_s_lines_is_the_parquet_of_the_rows(
    db: Database, org: Org, monkeypatch: pytest.MonkeyPatch, refused: bool
) -> None:
    """The Parquet writer reads JSON lines the database renders (pyarrow's reader builds the
    batches); the file must hold exactly what converting export_rows in Python gives, also when
    pyarrow refuses a block (then each line is converted in Python)."""
    project, made = labeled_project(org)
    org.make_tasks(project["id"], 2)
    if refused:  # a labels answer of numbers (an older spec): pyarrow refuses the block, Python converts it
        answer = {"sentiment": "neutral", "topics": [1, 2]}
        with db.write() as conn:
            conn.execute(update(t.tasks).where(t.tasks.c.id == made[2]["id"]).values(result={"answer": answer}))
    else:
        monkeypatch.setattr(_arrow_lines, "coerce", None)  # the careful path is never taken
    writer = formats.get("parquet")
    filters = export.ExportFilter(status=None)
    fast, careful = io.BytesIO(), io.BytesIO()
    writer.write(project, export.rows_for(writer, db, org.owner.principal, project["id"], filters), fast)
    writer.write(project, export.export_rows(db, org.owner.principal, project["id"], filters=filters), careful)
    from_lines, from_rows = pq.read_table(fast).to_pylist(), pq.read_table(careful).to_pylist()
    assert len(from_lines) == 5
    if refused:
        assert from_rows[2]["answer"]["sentiment"] == "neutral" and from_rows[2]["answer"]["topics"] is None
    for line, row in zip(from_lines, from_rows, strict=True):
        for key in ("metadata", "result"):  # JSON text: the same JSON, written by another hand
            mine, theirs = line.pop(key), row.pop(key)
            assert (mine and orjson.loads(mine)) == (theirs and orjson.loads(theirs))
        assert line == row


def test_parquet_keeps_stored_json_text_newlines_and_all(db: Database, org: Org) -> None:
    """The Parquet writer reads the lines the database renders in blocks joined by newlines: stored
    JSON holding a raw newline (whitespace between its tokens) must neither shift the rows nor
    change the document, and a task without a result has a null one."""
    project, made = labeled_project(org)
    raw = '{"note":\n  "two\\nlines",\n"n": 1}'  # raw newlines between tokens; an escaped one in the string
    with db.write() as conn:
        conn.execute(update(t.tasks).where(t.tasks.c.id == made[1]["id"]).values(metadata=None))
        # the text as it is: the JSON type would serialise it again (and PostgreSQL's json keeps text as given)
        stored = sqlalchemy.text("UPDATE tasks SET metadata = :raw WHERE id = :id")
        conn.execute(stored, {"raw": raw, "id": made[0]["id"]})
    writer = formats.get("parquet")
    out = io.BytesIO()
    rows = export.rows_for(writer, db, org.owner.principal, project["id"], export.ExportFilter(status=None))
    assert writer.write(project, rows, out) == 3
    table = pq.read_table(out).to_pylist()
    assert [row["task_id"] for row in table] == [task["id"] for task in made]
    assert orjson.loads(table[0]["metadata"]) == {"note": "two\nlines", "n": 1}
    assert orjson.loads(table[1]["metadata"]) is None  # JSON null as stored
    assert orjson.loads(table[2]["metadata"]) == {"source": "shop"}
    assert table[2]["result"] is None and table[2]["responses"] == []
    assert orjson.loads(table[0]["result"])["answer"]["sentiment"] == table[0]["answer"]["sentiment"] == "positive"


def test_parquet_of_json_kept_as_text_and_of_filters_is_the_parquet_of_the_rows(db: Database, org: Org) -> None:
    """A spec whose fields and answers are partly JSON kept as text (a conversation, a ranking,
    spans): the Parquet writer's fast path (JSON lines on SQLite, Arrow columns on PostgreSQL:
    services/export_arrow.py) writes what converting export_rows in Python writes, whatever the
    filters, with responses, their workers and a review."""
    from truthset.demo import CHAT_SPEC, PROJECTS

    project = org.make_project(spec=CHAT_SPEC, overlap=2)
    chat = next(demo for demo in PROJECTS if demo.spec is CHAT_SPEC)
    items = list(enumerate(chat.tasks()[:4], start=1))
    assert tasks.import_tasks(db, org.owner.principal, project["id"], items).created == 4
    made = sorted(org.all_tasks(tasks.TaskFilter(project_id=project["id"])), key=lambda task: task["id"])
    grade = {"accuracy": {"score": 4}, "helpfulness": {"score": 5}, "tone": {"score": 3}}
    answer = {
        "preference": {"winner": 1, "strength": "much better"},
        "grade-0": grade,
        "grade-1": grade,
        "problems-0": [{"start": 0, "end": 4, "label": "error"}],
        "rewrite": "Use slicing.",
    }
    workers = [org.add_member("annotator", name=name).principal for name in ("Ann", 'Bo "B"')]
    for task in made[:3]:
        for worker in workers:
            queue.submit(db, worker, task["id"], ResponseCreate(answer=answer, duration_ms=900))
    review.submit_review(db, org.principal_for("reviewer"), made[0]["id"], "accept")
    writer = formats.get("parquet")
    for filters in (
        export.ExportFilter(),
        export.ExportFilter(status=None),
        export.ExportFilter(min_confidence=0.0),
        export.ExportFilter(status=None, review_status=ReviewStatus.ACCEPTED),
        export.ExportFilter(status=None, updated_since=made[1]["updated_at"]),
    ):
        fast, careful = io.BytesIO(), io.BytesIO()
        writer.write(project, export.rows_for(writer, db, org.owner.principal, project["id"], filters), fast)
        writer.write(project, export.export_rows(db, org.owner.principal, project["id"], filters=filters), careful)
        from_lines, from_rows = pq.read_table(fast).to_pylist(), pq.read_table(careful).to_pylist()
        assert len(from_lines) == len(from_rows) > 0, filters
        for line, row in zip(from_lines, from_rows, strict=True):
            for key in ("metadata", "result"):  # JSON text: the same JSON, written by another hand
                assert orjson.loads(line.pop(key) or "null") == orjson.loads(row.pop(key) or "null")
            for key in ("conversation", "replies"):
                assert orjson.loads(line["data"].pop(key)) == orjson.loads(row["data"].pop(key))
            answers = [line["answer"], row["answer"]] + [r["answer"] for r in line["responses"] + row["responses"]]
            for answered in filter(None, answers):  # a task without a result has none
                for key in ("preference", "grade-0", "grade-1", "problems-0", "problems-1"):  # JSON text too
                    answered[key] = answered[key] and orjson.loads(answered[key])
            assert line == row
    first = from_lines[0]  # (the last filter's rows: every status)
    assert first["data"] == {} and first["responses"][0]["answer"]["problems-0"] == answer["problems-0"]
    assert first["responses"][0]["answer"]["grade-1"] == grade and first["answer"]["preference"] is not None
    # CSV: one answer.<name>-<i> column for each candidate too, with the result's value as JSON
    out = io.BytesIO()
    formats.get("csv").write(project, export.export_rows(db, org.owner.principal, project["id"]), out)
    header, *lines = list(csv.reader(io.StringIO(out.getvalue().decode())))
    assert {"answer.grade-0", "answer.grade-1", "answer.problems-0", "data.conversation"} <= set(header)
    cells = dict(zip(header, lines[0], strict=True))
    assert set(orjson.loads(cells["answer.grade-0"])) == set(grade)  # the result's rubric, criterion by criterion
    assert orjson.loads(cells["data.conversation"])[0]["role"] == "system"

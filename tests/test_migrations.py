"""Migrations: upgrading an empty database, or one made by an earlier version, yields exactly the
schema of ``storage.tables``, and the API serves an upgraded database's data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import create_engine, pool, select, update

import schema_history
from aio import run_async
from schema_history import SHIPPED
from truthset.api import API_PREFIX, create_app
from truthset.config import Settings
from truthset.schemas import ProjectCreate, TaskCreate
from truthset.services import accounts, projects, tasks
from truthset.storage import Database, upgrade
from truthset.storage import tables as t
from truthset.storage.migrate import MIGRATIONS, alembic_config
from truthset.storage.tables import SEARCH_OBJECTS, metadata


def _not_search(name: str | None, kind: str, parents: dict) -> bool:
    """The full-text search objects live outside the metadata (see tables.SEARCH_OBJECTS)."""
    return not (name or "").startswith(SEARCH_OBJECTS)


def _differences(url: str) -> list:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "compare_server_default": True, "include_name": _not_search}
            context = MigrationContext.configure(conn, opts=opts)
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def _current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_upgrade_yields_exactly_the_tables_schema(db_url: str) -> None:
    upgrade(db_url)
    assert _differences(db_url) == []
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert _current_revision(db_url) == head
    # a second upgrade is a no-op
    upgrade(db_url)
    assert _differences(db_url) == []


def test_the_migrations_form_one_line() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_a_fresh_sqlite_upgrade_is_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/truthset.db"
    upgrade(url)
    db = Database(url)
    try:
        with db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.dispose()


# --- databases made by earlier versions ------------------------------------------------------------


def _sqlite_schema(url: str) -> dict[str, Any]:
    """Tables with their columns and indexes with their table, unique flag and (ordered) key columns."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            objects = raw.execute("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
            schema: dict[str, Any] = {}
            for kind, name, table in objects.fetchall():
                if kind == "table":
                    columns = raw.execute(f"PRAGMA table_info({name})").fetchall()
                    schema[f"table {name}"] = sorted((c[1], c[2].upper(), c[3], c[4], c[5]) for c in columns)
                elif kind == "index":
                    keys = raw.execute(f"PRAGMA index_xinfo({name})").fetchall()
                    unique = raw.execute(f"PRAGMA index_list({table})").fetchall()
                    flag = next(row[2] for row in unique if row[1] == name)
                    schema[f"index {name}"] = (table, flag, [(k[2], k[3]) for k in keys if k[5]])
            return schema
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def fresh_sqlite_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fresh') / 'fresh.db'}"
    upgrade(url)
    return _sqlite_schema(url)


@pytest.mark.parametrize("state", list(SHIPPED))
def test_an_old_sqlite_database_upgrades_to_the_schema_of_a_fresh_one(
    state: str, tmp_path: Path, fresh_sqlite_schema: dict[str, Any]
) -> None:
    url = schema_history.load(state, tmp_path / "old.db")
    upgrade(url)
    assert _differences(url) == []
    assert _sqlite_schema(url) == fresh_sqlite_schema


@pytest.mark.parametrize("state", list(SHIPPED))
def test_an_old_sqlite_database_upgrades_and_serves_its_data(state: str, tmp_path: Path) -> None:
    url = schema_history.load(state, tmp_path / "old.db")
    upgrade(url)
    keys = json.loads((schema_history.OLD_DATABASES / "keys.json").read_text())
    db = Database(url, sqlite_synchronous="NORMAL")
    try:
        run_async(_serve_old_data, create_app(Settings(data_dir=tmp_path / "data"), db=db), keys["owner"])
    finally:
        db.dispose()


async def _serve_old_data(app: FastAPI, key: str) -> None:
    """The calls that answered 500 on upgraded databases: listings and export through the indexes
    the code names, a submit that completes a task, a task's responses."""
    headers = {"Authorization": f"Bearer {key}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:

        async def get(url: str, **params: Any) -> Any:
            response = await client.get(f"{API_PREFIX}{url}", params=params)
            assert response.status_code == 200, response.text
            return response.json() if "export" not in url else [json.loads(line) for line in response.text.splitlines()]

        [project] = (await get("/projects"))["items"]
        # migration 0005: the policy {"overlap": 2} is now the same fixed overlap, spelled out
        quality = project["quality"]
        assert (quality["min_overlap"], quality["max_overlap"], quality["target_confidence"]) == (2, 2, None)
        everything = (await get("/tasks", project_id=project["id"]))["items"]
        by_unique_id = {task["unique_id"]: task for task in everything}
        assert sorted(by_unique_id) == ["review-0", "review-1", "review-2", "review-3"]
        assert by_unique_id["review-0"]["status"] == "completed"
        assert by_unique_id["review-0"]["result"]["answer"] == {"sentiment": "positive"}
        pending = (await get("/tasks", project_id=project["id"], status="pending"))["items"]
        assert [t["unique_id"] for t in pending] == ["review-1", "review-2", "review-3"]
        batch_id = by_unique_id["review-0"]["batch_id"]
        assert [t["unique_id"] for t in (await get("/tasks", batch_id=batch_id))["items"]] == ["review-0", "review-1"]
        assert [t["unique_id"] for t in (await get("/tasks", batch_id=batch_id, status="pending"))["items"]] == [
            "review-1"
        ]
        assert [row["unique_id"] for row in await get(f"/projects/{project['id']}/export")] == ["review-0"]
        # review-2 has the annotator's answer: the owner's completes it
        task_id = by_unique_id["review-2"]["id"]
        answer = {"answer": {"sentiment": "negative"}}
        submitted = await client.post(f"{API_PREFIX}/tasks/{task_id}/responses", json=answer)
        assert submitted.status_code == 201, submitted.text
        assert submitted.json()["task"]["status"] == "completed"
        responses = await get(f"/tasks/{task_id}/responses")
        assert [r["answer"]["sentiment"] for r in responses] == ["positive", "negative"]
        exported = await get(f"/projects/{project['id']}/export")
        assert [row["unique_id"] for row in exported] == ["review-0", "review-2"]


@pytest.mark.postgres
@pytest.mark.parametrize("state", list(SHIPPED))
def test_an_old_postgres_database_upgrades_to_the_schema_of_a_fresh_one(
    state: str, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("fresh_postgres_url"))
    schema_history.build(url, state)
    assert _differences(url) != []  # the old schema really lacks something
    upgrade(url)
    assert _differences(url) == []
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert _current_revision(url) == head


# --- shipped migrations are never edited -----------------------------------------------------------

#: sha256 of every migration file as it shipped. A shipped migration is never edited: a database
#: that already ran it would never run the edit (0001 and 0003 were edited, and databases made
#: before the edits lacked indexes the code needs until 0004 repaired them). Fix a schema with a
#: NEW migration; add its checksum here when it lands. This list only grows.
SHIPPED_MIGRATIONS = {
    "0001_initial_schema.py": "20debe0fdb8a093c88a7d46b0e8d185c880cc3d4e4a65c8687ed72aef3407190",
    "0002_sessions.py": "e226b14b0cd261aef56c4cb09a053ac87278f2abb341cbc09e92a101779c3efe",
    "0003_queue_epoch.py": "cca0a921d5ab0c7e4b7d0eb2a559de3f84cd9be39174144367124c33bcda76dc",
    "0004_repair_edited_indexes.py": "9e06b9b0d9d59c68494916c794cd7540fbb70f92c2bf8f2e61d03c89e5787641",
    "0005_quality_in_the_loop.py": "c8b22e083fe802c1b4d70c72fc5eab9cc1be443d6e62d65e172a6a5662ce967b",
    "0006_imports.py": "a513941760170ec3ccc883d2662c3054b94fdae409b25426529b37ba4bde3707",
    "0007_task_browser.py": "9772f2275bfff1f9c0189b99f8a1d788dea1f93f70b639c71b322e07a5266ca4",
    "0008_webhooks.py": "d79602f52929e12c97501e13e36766a4abe4776893d974a046f36be3c7c5c571",
    "0009_scale.py": "856b4617c10a3ebcd66c58157db14ab6bde1956ae1b949194618ebea648f51ba",
    "0010_predictions.py": "8eba7159cc29e1aa2cd8f85bd946fd7b9bdc59b0f29e102079647efdfaaa06eb",
    "0011_dashboard.py": "6429feae012af481174fce1bc1a0543f0442456a11008d8af37f9d8f41783514",
    "0012_project_models.py": "11dc6289e3798da89fc59ae5424a7fd29c223ed596a06b8ad1affe167a42091f",
    "0013_auto_label.py": "aea807b45308bc9e3e1c5d42ac6cb4535d9f721fb01b96f7d9f479a1ece8bf4f",
    "0014_queue_rank.py": "14fe0f97735f8c9b50df8ee90e8e27651830a1aa250af28264d722d942055fba",
    "0015_delete_indexes.py": "487b7b23ff49e711af6257bfecf513257118de1dd33573c2eac910766caf1fb6",
    "0016_media_indexes.py": "3b175a4efd245cef53b22c9d6d7d88a630c9a480da5513fbfd9c9045273d4114",
    "0017_media_uploader.py": "e2178ccd83145bbcb98182c156723f7b352b8adfc504dfd1a17dcc3a9f32e6ba",
    "0018_fixes_stated_as_results.py": "f3136f1043203b53f374ec969f35f0b9feead2e11ebb6c7f2e2146dab3119ff7",
}


def test_shipped_migrations_are_never_edited() -> None:
    versions = MIGRATIONS / "versions"
    found = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in versions.glob("*.py")}
    edited = sorted(name for name, digest in SHIPPED_MIGRATIONS.items() if found.get(name) != digest)
    assert not edited, f"shipped migrations changed or removed: {edited}; write a new migration instead"
    new = sorted(set(found) - set(SHIPPED_MIGRATIONS))
    assert not new, f"add the sha256 of {new} to SHIPPED_MIGRATIONS: {[found[name] for name in new]}"


# --- data migrations ------------------------------------------------------------------------------

FIXED_BEFORE_0018 = {
    "answer": {
        "better": {"winner": 1, "strength": "much", "shown_order": [0, 1]},
        "grade": {"tone": {"score": 2, "comment": "curt"}},
        "note": "ok",
    },
    "questions": {
        "better": {"answer": {"winner": 1, "strength": "much", "shown_order": [0, 1]}, "method": "review_fix"},
        "grade": {"answer": {"tone": {"score": 2, "comment": "curt"}}, "method": "review_fix"},
        "order": {"answer": {"order": [2, [0, 1]], "shown_order": [0, 1, 2]}, "method": "review_fix"},
        "tied": {"answer": {"winner": "tie", "shown_order": [0, 1]}, "method": "review_fix"},
        "note": {"answer": "ok", "method": "review_fix"},
        "crowd": {"answer": {"winner": 0}, "method": "bradley_terry"},
    },
}


def test_0018_states_stored_fixes_as_results_state_answers(db_url: str) -> None:
    """A fix stored before 0018 kept the response's form: a ranking's ``{"winner", "shown_order"}``
    (the preference export failed on it), a rubric's comments. The upgrade restates them as the
    crowd's results state answers, and leaves every other answer alone."""
    upgrade(db_url, "0017")
    db = Database(db_url)
    try:
        created = accounts.init_organization(db, "Acme", "owner@acme.example")
        owner = accounts.authenticate(db, created["api_key"])
        spec = {
            "fields": [{"name": "text", "type": "text"}],
            "questions": [{"name": "s", "type": "label", "options": ["a", "b"]}],
        }
        project = projects.create_project(db, owner, ProjectCreate(name="p", spec=spec))
        task_ids = []
        for i, status in enumerate(("fixed", "rejected")):
            task = tasks.create_task(db, owner, project["id"], TaskCreate(data={"text": f"t{i}"}))
            with db.write() as conn:
                values = {"result": FIXED_BEFORE_0018, "review_status": status}
                conn.execute(update(t.tasks).where(t.tasks.c.id == task["id"]).values(**values))
            task_ids.append(task["id"])
    finally:
        db.dispose()
    upgrade(db_url)
    db = Database(db_url)
    try:
        with db.read() as conn:
            rows = dict(conn.execute(select(t.tasks.c.id, t.tasks.c.result).where(t.tasks.c.id.in_(task_ids))).all())
    finally:
        db.dispose()
    fixed, untouched = rows[task_ids[0]], rows[task_ids[1]]
    assert untouched == FIXED_BEFORE_0018  # a rejected task's result is not a fix's (and is cleared anyway)
    questions = fixed["questions"]
    assert fixed["answer"] == {"better": 1, "grade": {"tone": {"score": 2}}, "note": "ok"}
    assert questions["better"]["answer"] == 1 and questions["better"]["tie"] is False
    assert questions["better"]["details"] == {"votes": {"1": 1}, "strength": {"much": 1}}
    assert questions["grade"]["answer"] == {"tone": {"score": 2}}
    assert questions["order"]["answer"] == [2, [0, 1]]
    assert questions["tied"]["answer"] is None and questions["tied"]["tie"] == [0, 1]
    assert questions["note"] == FIXED_BEFORE_0018["questions"]["note"]
    assert questions["crowd"] == FIXED_BEFORE_0018["questions"]["crowd"]

"""Real ``truthset serve`` processes sharing one database, hammered by many simulated annotators.

PostgreSQL: TWO servers on one database (skipped unless ``TRUTHSET_TEST_POSTGRES_URL`` is set).
SQLite: one server (the embedded database is one process's). Each annotator is a member with its
own API key, runs in its own thread, and alternates between the servers: next -> submit (and now
and then a retried submit with the same Idempotency-Key, on the other server) until the queue says
nothing is left for it (a 503 ``busy`` lease is asked again, as clients do). Afterwards plain SQL
proves: no task has more responses than its overlap, no worker answered a task twice, every
acknowledged (2xx) response is in the database, and every task completed.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from truthset.schemas import ApiKeyCreate, MemberCreate, ProjectCreate
from truthset.services import accounts, projects, tasks
from truthset.storage import Database, upgrade
from truthset.storage import tables as t

from .support import serving

ANNOTATORS = 8
TASKS = 30
OVERLAP = 3
OPTIONS = ["cat", "dog", "bird"]


@contextmanager
def _serve(count: int, database_url: str, data_dir: Path) -> Iterator[list[str]]:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TRUTHSET_DATABASE_URL": database_url, "TRUTHSET_DATA_DIR": str(data_dir)}
    with ExitStack() as servers:
        yield [servers.enter_context(serving(env, data_dir / f"server-{n}.log")) for n in range(count)]


@pytest.fixture(params=["sqlite-one-server", pytest.param("postgres-two-servers", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    if request.param.startswith("postgres"):
        database_url = str(request.getfixturevalue("fresh_postgres_url"))
        servers = 2
    else:
        database_url = f"sqlite:///{tmp_path / 'data' / 'truthset.db'}"
        servers = 1
    upgrade(database_url)  # once, before the servers start (each would otherwise race to migrate)
    with _serve(servers, database_url, tmp_path / "data") as urls:
        yield database_url, urls


def _populate(database_url: str) -> tuple[str, list[str]]:
    db = Database(database_url)
    try:
        created = accounts.init_organization(db, "Crowd", "owner@crowd.example")
        owner = accounts.authenticate(db, created["api_key"])
        spec = {
            "fields": [{"name": "text", "type": "text"}],
            "questions": [{"name": "animal", "type": "label", "options": OPTIONS}],
        }
        project = projects.create_project(
            db, owner, ProjectCreate.model_validate({"name": "crowd", "spec": spec, "quality": {"overlap": OVERLAP}})
        )
        items = [(i + 1, {"data": {"text": f"item {i}"}, "unique_id": f"item-{i}"}) for i in range(TASKS)]
        report = tasks.import_tasks(db, owner, project["id"], items)
        assert report.created == TASKS
        keys = []
        for n in range(ANNOTATORS):
            member = accounts.add_member(db, owner, MemberCreate(email=f"a{n}@crowd.example", role="annotator"))
            keys.append(accounts.create_key(db, owner, ApiKeyCreate(member_id=member["member"]["id"]))["key"])
        return project["id"], keys
    finally:
        db.dispose()


class Annotator(threading.Thread):
    """Lease and answer until the queue has nothing for this worker, alternating servers."""

    def __init__(self, key: str, urls: list[str], project_id: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.clients = [httpx.Client(base_url=f"{u}/api/v1", headers={"Authorization": f"Bearer {key}"}) for u in urls]
        self.project_id = project_id
        self.random = random.Random(seed)
        self.acknowledged: dict[str, str] = {}  # response id -> task id
        self.unexpected: list[str] = []
        self.replays = 0

    def client(self) -> httpx.Client:
        return self.random.choice(self.clients)

    def run(self) -> None:
        try:
            self.work()
        except Exception as exc:  # reported by the test, which fails on it
            self.unexpected.append(repr(exc))
        finally:
            for client in self.clients:
                client.close()

    def work(self) -> None:
        for _ in range(TASKS * 4):
            leased = self.client().post(f"/projects/{self.project_id}/next", timeout=60)
            if leased.status_code == 204:
                return
            if leased.status_code == 503 and leased.json()["error"]["code"] == "busy":
                continue  # the tasks left for it were being written: nothing leased, ask again
            if leased.status_code != 200:
                self.unexpected.append(f"next: {leased.status_code} {leased.text}")
                return
            assignment = leased.json()
            task_id = assignment["task"]["id"]
            body = {"answer": {"animal": self.random.choice(OPTIONS)}, "assignment_id": assignment["id"]}
            headers = {"Idempotency-Key": f"submit-{assignment['id']}"}
            submitted = self.client().post(f"/tasks/{task_id}/responses", json=body, headers=headers, timeout=60)
            if submitted.status_code != 201:
                self.unexpected.append(f"submit: {submitted.status_code} {submitted.text}")
                continue
            response_id = submitted.json()["response"]["id"]
            self.acknowledged[response_id] = task_id
            if self.random.random() < 0.2:  # a client retry (lost reply): harmless, same response
                again = self.client().post(f"/tasks/{task_id}/responses", json=body, headers=headers, timeout=60)
                if again.status_code != 200 or again.headers.get("Idempotent-Replayed") != "true":
                    self.unexpected.append(f"replay: {again.status_code} {again.text}")
                elif again.json()["response"]["id"] != response_id:
                    self.unexpected.append("replay returned another response")
                else:
                    self.replays += 1
        self.unexpected.append("never ran out of tasks")


def test_many_annotators_on_real_servers_never_over_answer(setup: tuple[str, list[str]]) -> None:
    database_url, urls = setup
    project_id, keys = _populate(database_url)
    annotators = [Annotator(key, urls, project_id, seed) for seed, key in enumerate(keys)]
    for annotator in annotators:
        annotator.start()
    for annotator in annotators:
        annotator.join(timeout=120)
        assert not annotator.is_alive(), "an annotator thread hung"
    problems = [p for a in annotators for p in a.unexpected]
    assert not problems, problems
    acknowledged = {rid: tid for a in annotators for rid, tid in a.acknowledged.items()}
    assert len(acknowledged) == TASKS * OVERLAP  # every slot answered, each acknowledged once
    assert sum(a.replays for a in annotators) > 0

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            per_task = dict(
                conn.execute(select(t.responses.c.task_id, func.count()).group_by(t.responses.c.task_id)).all()
            )
            rows = conn.execute(
                select(
                    t.tasks.c.id,
                    t.tasks.c.status,
                    t.tasks.c.overlap,
                    t.tasks.c.response_count,
                    t.tasks.c.lease_count,
                    t.tasks.c.result,
                )
            ).all()
            twice = conn.execute(
                select(t.responses.c.task_id, t.responses.c.worker_id)
                .group_by(t.responses.c.task_id, t.responses.c.worker_id)
                .having(func.count() > 1)
            ).all()
            stored = {r.id: r.task_id for r in conn.execute(select(t.responses.c.id, t.responses.c.task_id))}
            active = conn.execute(select(func.count()).where(t.assignments.c.status == "active")).scalar_one()
    finally:
        engine.dispose()
    assert len(rows) == TASKS
    for task in rows:
        assert per_task.get(task.id, 0) <= task.overlap, f"task {task.id} has more responses than its overlap"
        assert per_task.get(task.id, 0) == task.response_count == task.overlap
        assert task.status == "completed" and task.result is not None, task
        assert task.lease_count == 0
    assert twice == [], "a worker answered a task twice"
    missing = {rid for rid in acknowledged if stored.get(rid) != acknowledged[rid]}
    assert not missing, f"acknowledged responses not in the database: {missing}"
    assert len(stored) == len(acknowledged)
    assert active == 0

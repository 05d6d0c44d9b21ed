"""PostgreSQL going away under a running server: every call answers 503 with Retry-After (never a
500 or a dropped connection), the pool reconnects by itself, and a retried submit stores nothing twice.

These tests stop, start and terminate the backends of a PostgreSQL cluster of their own (started
with scripts/start-postgres.sh, like the suite's), so the other tests' server is never disturbed.
They run where ``TRUTHSET_TEST_POSTGRES_URL`` says PostgreSQL is available.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from aio import run_async
from truthset.api import API_PREFIX, create_app
from truthset.config import Settings
from truthset.schemas import ProjectCreate, TaskCreate
from truthset.services import accounts, projects, tasks
from truthset.storage import Database, upgrade

pytestmark = pytest.mark.postgres

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "start-postgres.sh"
SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["positive", "negative"]}],
}
ANSWER = {"answer": {"sentiment": "positive"}}


class Cluster:
    """A throwaway PostgreSQL cluster that a test may stop and start again on the same port."""

    def __init__(self) -> None:
        started = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False, timeout=300)
        if started.returncode != 0:
            pytest.skip(f"cannot start a PostgreSQL cluster: {started.stderr.strip()[-300:]}")
        exports = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines())
        self.dir = Path(exports["PGTEST_DIR"])
        self.url = exports["TRUTHSET_TEST_POSTGRES_URL"]
        data = self.dir / "data"
        command = shlex.split((data / "postmaster.opts").read_text())
        self._pg_ctl = str(Path(command[0]).with_name("pg_ctl"))
        options = command[1:]
        at = options.index("-D")
        self._options = shlex.join(options[:at] + options[at + 2 :])
        owner = data.owner()
        self._as_owner = ["runuser", "-u", owner, "--"] if os.geteuid() == 0 and owner != "root" else []

    def _pg_ctl_run(self, *args: str) -> None:
        data = str(self.dir / "data")
        subprocess.run([*self._as_owner, self._pg_ctl, "-D", data, "-w", *args], check=True, capture_output=True)

    def stop(self) -> None:
        self._pg_ctl_run("-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl_run("-l", str(self.dir / "server.log"), "-o", self._options, "start")

    def remove(self) -> None:
        subprocess.run([str(SCRIPT), "stop", str(self.dir)], check=False, capture_output=True, timeout=300)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not os.environ.get("TRUTHSET_TEST_POSTGRES_URL"):
        pytest.skip("TRUTHSET_TEST_POSTGRES_URL is not set: no PostgreSQL here")
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


class World:
    """A migrated database on the cluster with an organization, a project of two pending tasks."""

    def __init__(self, url: str, data_dir: Path) -> None:
        upgrade(url)
        self.db = Database(url)
        created = accounts.init_organization(self.db, "Acme", "owner@acme.test")
        self.key = created["api_key"]
        owner = accounts.authenticate(self.db, self.key)
        project = ProjectCreate(name="reviews", spec=SPEC, quality={"overlap": 1})
        self.project = projects.create_project(self.db, owner, project, default_lease_seconds=600)
        self.tasks = [
            tasks.create_task(self.db, owner, self.project["id"], TaskCreate(data={"text": str(n)})) for n in range(2)
        ]
        self.app = create_app(Settings(data_dir=data_dir), db=self.db)

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)


@pytest.fixture
def world(cluster: Cluster, tmp_path: Path) -> Iterator[World]:
    world = World(cluster.url, tmp_path)
    try:
        yield world
    finally:
        world.db.dispose()


def _admin(url: str) -> Engine:
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=2, max_overflow=0)


async def _calls(world: World, idempotency_key: str) -> dict[str, httpx.Response]:
    """A read, a write, a lease (through the thread pool) and a submit."""
    api, project_id = API_PREFIX, world.project["id"]
    async with world.client() as client:
        return {
            "list": await client.get(f"{api}/tasks", params={"project_id": project_id}),
            "create": await client.post(f"{api}/projects/{project_id}/tasks", json={"data": {"text": "new"}}),
            "next": await client.post(f"{api}/projects/{project_id}/next"),
            "submit": await client.post(
                f"{api}/tasks/{world.tasks[1]['id']}/responses",
                json=ANSWER,
                headers={"Idempotency-Key": idempotency_key},
            ),
        }


async def _warm_up(world: World) -> None:
    async with world.client() as client:
        assert (await client.get(f"{API_PREFIX}/projects/{world.project['id']}")).status_code == 200


def _assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "busy", error
    assert int(response.headers["Retry-After"]) >= 1


def test_every_call_answers_503_while_postgresql_is_down_and_works_once_it_is_back(
    cluster: Cluster, world: World
) -> None:
    run_async(_warm_up, world)  # the pool holds live connections now
    cluster.stop()
    try:
        down = run_async(_calls, world, "the-submit")
    finally:
        cluster.start()
    for response in down.values():
        _assert_busy(response)

    up = run_async(_calls, world, "the-submit")
    assert {name: r.status_code for name, r in up.items()} == {"list": 200, "create": 201, "next": 200, "submit": 201}
    again = run_async(_calls, world, "the-submit")
    assert again["submit"].headers.get("Idempotent-Replayed") == "true"  # the retry stored nothing twice
    engine = _admin(cluster.url.rsplit("/", 1)[0] + "/" + make_url(world.db.engine.url).database)
    with engine.connect() as conn:
        count = "SELECT count(*) FROM responses WHERE task_id = :task"
        assert conn.execute(text(count), {"task": world.tasks[1]["id"]}).scalar() == 1
    engine.dispose()


async def _submit_while_its_backend_is_terminated(world: World, admin: Engine) -> httpx.Response:
    """Hold the task's row lock, let a submit wait for it, terminate that submit's backend."""
    task_id = world.tasks[0]["id"]
    with admin.connect().execution_options(isolation_level="READ COMMITTED") as holder:
        transaction = holder.begin()
        holder.execute(text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task_id})
        async with world.client() as client, anyio.create_task_group() as group:
            result: dict[str, httpx.Response] = {}

            async def submit() -> None:
                url = f"{API_PREFIX}/tasks/{task_id}/responses"
                result["submit"] = await client.post(url, json=ANSWER, headers={"Idempotency-Key": "k1"})

            group.start_soon(submit)
            waiting = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            with admin.connect() as watcher:
                for _ in range(2_000):  # bounded: until the submit waits on the lock
                    pids = watcher.execute(text(waiting)).scalars().all()
                    if pids:
                        break
                    await anyio.sleep(0.005)
                assert pids, f"the submit never waited for the row lock: {result}"
                watcher.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
        transaction.rollback()
    return result["submit"]


def test_a_submit_whose_connection_is_terminated_answers_503_and_its_retry_stores_once(world: World) -> None:
    admin = _admin(make_url(world.db.engine.url).render_as_string(hide_password=False))
    try:
        _assert_busy(run_async(_submit_while_its_backend_is_terminated, world, admin))

        async def retry() -> httpx.Response:
            async with world.client() as client:
                url = f"{API_PREFIX}/tasks/{world.tasks[0]['id']}/responses"
                return await client.post(url, json=ANSWER, headers={"Idempotency-Key": "k1"})

        assert run_async(retry).status_code == 201  # the pool replaced the terminated connection
        assert run_async(retry).headers.get("Idempotent-Replayed") == "true"
        with admin.connect() as conn:
            count = "SELECT count(*) FROM responses WHERE task_id = :task"
            assert conn.execute(text(count), {"task": world.tasks[0]["id"]}).scalar() == 1
    finally:
        admin.dispose()

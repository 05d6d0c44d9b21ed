"""Shared fixtures: a fresh database on every backend, and organizations with members, projects, tasks.

``db`` is parametrized over ``sqlite`` (always) and ``postgres`` (when ``TRUTHSET_TEST_POSTGRES_URL``
names a server whose user may create databases; `scripts/start-postgres.sh` starts one). Each test
gets its own database: a file under ``tmp_path`` for SQLite, a uniquely named database on the
PostgreSQL server per pytest-xdist worker, emptied before each test (``db_url`` gives a brand-new,
table-less database instead), so tests stay independent and workers never share a database.

Test modules take these as fixtures and import nothing from here at run time (``conftest`` is
not a unique module name across test directories); for annotations use
``if TYPE_CHECKING: from conftest import Org``.

Typical use::

    def test_something(db, make_org):
        org = make_org()
        project = org.make_project(overlap=3)
        tasks = org.make_tasks(project["id"], 10)
        annotator = org.principal_for("annotator")
"""

from __future__ import annotations

import copy
import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url

from truthset.domain import Principal, Role
from truthset.errors import Busy
from truthset.schemas import ApiKeyCreate, BatchCreate, MemberCreate, ProjectCreate, TaskCreate
from truthset.services import accounts, projects, tasks
from truthset.services.tasks import TaskFilter
from truthset.storage import Database
from truthset.storage.tables import metadata, task_events

POSTGRES_ENV = "TRUTHSET_TEST_POSTGRES_URL"

#: A small spec used by default: one text field, one required label question, one optional rating.
SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "sentiment", "type": "label", "options": ["positive", "negative", "neutral"]},
        {"name": "stars", "type": "rating", "min": 1, "max": 5, "required": False},
    ],
}

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


# --- speed ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, but with the smallest cost: the default takes ~150 ms per member."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


# --- databases -----------------------------------------------------------------------------------


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the test server, to create and drop databases."""
    url = postgres_url()
    if url is None:
        pytest.skip(f"{POSTGRES_ENV} is not set (scripts/start-postgres.sh starts a throwaway server)")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=2)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _new_postgres_database(admin: Engine, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}".lower()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url() or "").set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _xdist_worker() -> str:
    """``gw0``, ``gw1``... under pytest-xdist; ``main`` without it."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture
def fresh_postgres_url(postgres_admin: Engine) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (no tables), dropped after the test."""
    with _new_postgres_database(postgres_admin, f"ts_{_xdist_worker()}") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_worker_url(postgres_admin: Engine) -> Iterator[str]:
    """One database with every table per pytest-xdist worker; :func:`db` empties it for each test.

    Creating a PostgreSQL database costs ~0.5 s and creating the tables ~0.3 s, while emptying
    them takes ~30 ms, so each test gets a clean database without paying for a new one.
    """
    with _new_postgres_database(postgres_admin, f"ts_{_xdist_worker()}_tables") as url:
        database = Database(url)
        database.create_all()
        database.dispose()
        yield url


def _empty_all_tables(database: Database) -> None:
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with database.engine.begin() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '20s'"))  # fail, not hang, if a test leaked a lock
        conn.execute(text(f"TRUNCATE {names}"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``: parametrizes every test that uses a database."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database (no tables) on the test's backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'truthset.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with every table and no rows, on SQLite and (when configured) PostgreSQL."""
    if backend == "sqlite":
        # synchronous=NORMAL: the same locking and WAL as production, without an fsync per commit
        # (tests prove logic, not power-loss durability; the PostgreSQL test server runs fsync=off too)
        database = Database(f"sqlite:///{tmp_path / 'truthset.db'}", sqlite_synchronous="NORMAL")
        database.create_all()
    else:
        database = Database(str(request.getfixturevalue("postgres_worker_url")))
        _empty_all_tables(database)
    try:
        yield database
    finally:
        database.dispose()


# --- organizations, members, projects, tasks -----------------------------------------------------


@dataclass
class Actor:
    """A member as the tests use it: the stored member, who it acts as, and its secrets."""

    member: dict[str, Any]
    principal: Principal
    api_key: str
    password: str | None

    @property
    def id(self) -> str:
        return str(self.member["id"])

    @property
    def worker_id(self) -> str:
        return self.principal.worker_id


@dataclass
class Org:
    """An organization with its first owner, plus helpers that act as that owner."""

    db: Database
    organization: dict[str, Any]
    owner: Actor
    _by_role: dict[Role, Actor] = field(default_factory=dict)
    _counter: itertools.count = field(default_factory=itertools.count)
    _task_calls: itertools.count = field(default_factory=itertools.count)

    @property
    def id(self) -> str:
        return str(self.organization["id"])

    def add_member(self, role: Role | str = Role.ANNOTATOR, *, email: str | None = None, name: str = "") -> Actor:
        """A new member with ``role`` (added by the owner), with an API key of its own."""
        role = Role(role)
        email = email or f"{role}-{next(self._counter)}-{uuid.uuid4().hex[:6]}@{self.id}.example"
        added = accounts.add_member(self.db, self.owner.principal, MemberCreate(email=email, name=name, role=role))
        key = accounts.create_key(
            self.db, self.owner.principal, ApiKeyCreate(name=f"{role} key", member_id=added["member"]["id"])
        )
        principal = accounts.authenticate(self.db, key["key"])
        return Actor(member=added["member"], principal=principal, api_key=key["key"], password=added["password"])

    def task(self, task_id: str) -> dict[str, Any]:
        """A task as its owner reads it (status, result): the reply to an annotator's submit hides them."""
        return tasks.get_task(self.db, self.owner.principal, task_id)

    def actor(self, role: Role | str) -> Actor:
        """The one member of ``role`` for this org (the owner for ``owner``), created on first use."""
        role = Role(role)
        if role is Role.OWNER:
            return self.owner
        if role not in self._by_role:
            self._by_role[role] = self.add_member(role)
        return self._by_role[role]

    def principal_for(self, role: Role | str) -> Principal:
        return self.actor(role).principal

    def make_project(
        self,
        *,
        spec: dict[str, Any] | None = None,
        overlap: int = 1,
        lease_seconds: int | None = None,
        name: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        data = ProjectCreate.model_validate(
            {
                "name": name or f"project {next(self._counter)}",
                "spec": spec or copy.deepcopy(SPEC),
                "quality": extra.pop("quality", None) or {"overlap": overlap},
                "lease_seconds": lease_seconds,
                **extra,
            }
        )
        return projects.create_project(self.db, self.owner.principal, data)

    def make_batch(self, project_id: str, *, name: str | None = None, **metadata: Any) -> dict[str, Any]:
        data = BatchCreate(name=name or f"batch {next(self._counter)}", metadata=metadata)
        return projects.create_batch(self.db, self.owner.principal, project_id, data)

    def make_task(self, project_id: str, text_value: str = "hello", **fields: Any) -> dict[str, Any]:
        task = TaskCreate.model_validate({"data": {"text": text_value}, **fields})
        return tasks.create_task(self.db, self.owner.principal, project_id, task)

    def count_events(self, project_id: str, kind: str) -> int:
        """How many task events of ``kind`` the project's history has (e.g. ``refit_changed``)."""
        e = task_events.c
        with self.db.read() as conn:
            query = select(func.count()).where(e.project_id == project_id, e.kind == kind)
            return int(conn.execute(query).scalar_one())

    def all_tasks(self, filters: TaskFilter | None = None) -> list[dict[str, Any]]:
        """Every task matching ``filters`` (as the owner sees them), following the cursor to the end."""
        return list_all_tasks(self.db, self.owner.principal, filters or TaskFilter())

    def make_tasks(
        self, project_id: str, n: int, *, batch_id: str | None = None, **fields: Any
    ) -> list[dict[str, Any]]:
        """Import ``n`` tasks (data ``{"text": "item i"}``) in one go; return them in creation order.

        Later calls add `` #k`` to the text: a task without a unique_id is known by its content, so
        the same text again would be the same task (see docs/formats.md)."""
        call = next(self._task_calls)
        suffix = f" #{call}" if call else ""
        items = [(i + 1, {"data": {"text": f"item {i}{suffix}"}, **fields}) for i in range(n)]
        report = tasks.import_tasks(self.db, self.owner.principal, project_id, items, batch_id=batch_id)
        assert report.created == n, report
        return list_all_tasks(self.db, self.owner.principal, TaskFilter(project_id=project_id, batch_id=batch_id))


T = TypeVar("T")


def run_async(main: Callable[[], Any]) -> Any:
    """``anyio.run(main)`` on a thread of its own: the browser tests' session-wide Playwright keeps an
    event loop running on the test thread, where a second one may not start (whatever the order)."""
    import anyio

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, main).result()


def until_not_busy(call: Callable[[], T]) -> T:
    """Call again while the service says 503 ``busy`` (it lost a race and changed nothing), as every
    client does: a lease whose only free tasks are being written by other requests (PostgreSQL)."""
    while True:
        try:
            return call()
        except Busy:
            time.sleep(0.01)


def list_all_tasks(db: Database, principal: Principal, filters: TaskFilter, *, limit: int = 1000) -> list[dict]:
    """Every task matching ``filters``, following the keyset cursor to the end."""
    found: list[dict] = []
    cursor: str | None = None
    while True:
        page, cursor = tasks.list_tasks(db, principal, filters, cursor=cursor, limit=limit)
        found.extend(page)
        if cursor is None:
            return found


@pytest.fixture
def make_org(db: Database) -> Callable[..., Org]:
    """Factory: ``make_org(name="Acme", email=...)`` creates an organization with its owner."""
    counter = itertools.count()

    def make(name: str | None = None, email: str | None = None) -> Org:
        n = next(counter)
        created = accounts.init_organization(db, name or f"org {n}", email or f"owner{n}@org{n}.example")
        principal = accounts.authenticate(db, created["api_key"])
        owner = Actor(
            member=created["member"], principal=principal, api_key=created["api_key"], password=created["password"]
        )
        return Org(db=db, organization=created["organization"], owner=owner)

    return make


@pytest.fixture
def org(make_org: Callable[..., Org]) -> Org:
    """One organization (with an owner) in the test's database."""
    return make_org("Acme")


@pytest.fixture
def other_org(make_org: Callable[..., Org]) -> Org:
    """A second organization in the same database, for tenant-isolation tests."""
    return make_org("Globex")


@pytest.fixture
def principal_for(org: Org) -> Callable[[Role | str], Principal]:
    """``principal_for("annotator")``: the principal of the org's member with that role."""
    return org.principal_for


@pytest.fixture
def default_spec() -> dict[str, Any]:
    """A copy of :data:`SPEC`, the spec ``Org.make_project`` uses unless told otherwise."""
    return copy.deepcopy(SPEC)


@pytest.fixture
def project(org: Org) -> dict[str, Any]:
    """A project with :data:`SPEC` and overlap 1."""
    return org.make_project()

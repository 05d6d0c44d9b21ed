"""A real truthset server (uvicorn on a free 127.0.0.1 port, in a thread) for the SDK's tests.

The server uses a fresh SQLite data directory per test module; ``live`` hands out its URL and the
owner's API key, and ``client`` a :class:`truthset.Client` on it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import truthset
from truthset.api import create_app
from truthset.config import Settings
from truthset.jobs import runner_for
from truthset.services import accounts
from truthset.storage import Database, upgrade


@dataclass
class LiveServer:
    url: str
    api_key: str
    data_dir: Path

    def client(self, api_key: str | None = None, **options: object) -> truthset.Client:
        return truthset.Client(self.url, api_key or self.api_key, **options)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(settings: Settings, db: Database, kinds: list[str], name: str = "live") -> Iterator[str]:
    """A real server on a free 127.0.0.1 port (uvicorn in a thread) with an in-process job runner for
    ``kinds``; yields its URL, and stops both afterwards."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, db=db),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"truthset-{name}-server", daemon=True)
    thread.start()
    # uvicorn sets `started` once the socket listens; wait on it with a bounded number of checks.
    for _ in range(2000):
        if server.started or not thread.is_alive():
            break
        thread.join(0.005)
    if not server.started:
        raise RuntimeError("the test server did not start")
    runner = runner_for(db, settings, kinds=kinds, poll_seconds=0.02)
    runner.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        runner.stop()
        server.should_exit = True
        thread.join(10)


@contextmanager
def live_server(data_dir: Path, kinds: list[str], name: str, **settings: Any) -> Iterator[LiveServer]:
    """A fresh database with one organization behind :func:`serving` (job ``kinds`` run in process)."""
    configured = Settings(data_dir=data_dir, **settings)
    upgrade(configured.resolved_database_url)
    db = Database(configured.resolved_database_url)
    created = accounts.init_organization(db, "Acme", "owner@acme.example")
    try:
        with serving(configured, db, kinds, name) as url:
            yield LiveServer(url=url, api_key=created["api_key"], data_dir=data_dir)
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # the product's own job kinds run as `truthset serve` runs them (in process); the tests' own
    # kinds are left to the runners those tests start
    kinds = ["quality.refit", "export", "import", "model.train", "queue.rerank", "project.delete", "media.prune"]
    with live_server(tmp_path_factory.mktemp("live"), kinds, "live", max_body_bytes=64 * 1024) as server:
        yield server


@pytest.fixture
def client(live: LiveServer) -> Iterator[truthset.Client]:
    with live.client() as c:
        yield c


def project_with_texts(live: LiveServer, name: str, texts: list[str], *, spec: dict[str, Any]) -> tuple[str, list[str]]:
    """A project of ``spec`` with one task per text (field ``text``): its id and the tasks' ids, in order."""
    with live.client() as client:
        project = client.projects.create(name, spec=spec)
        return project.id, [client.tasks.create(project.id, {"text": text}).id for text in texts]

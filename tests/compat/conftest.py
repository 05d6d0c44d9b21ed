"""A real ``truthset serve`` process for the Scale client's tests, and a callback receiver.

Set-up, once per module: a temporary data directory with an organization (the owner's API key is
the Scale client's key) and an annotator with an API key (who answers through truthset's own API);
then the server, with job retries immediate so a failed callback is retried at once.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.support import serving


@dataclass
class Live:
    url: str
    owner_key: str
    annotator_key: str

    def api(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _set_up(data_dir: Path) -> tuple[str, str]:
    from truthset.config import Settings
    from truthset.schemas import ApiKeyCreate, MemberCreate
    from truthset.services import accounts
    from truthset.storage import Database, upgrade

    settings = Settings(data_dir=data_dir)
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    try:
        created = accounts.init_organization(db, "Scale migrants", "owner@example.com")
        owner = accounts.authenticate(db, created["api_key"])
        member = accounts.add_member(db, owner, MemberCreate(email="ann@example.com", role="annotator"))
        key = accounts.create_key(db, owner, ApiKeyCreate(name="ann", member_id=member["member"]["id"]))
        return created["api_key"], key["key"]
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("scale")
    owner_key, annotator_key = _set_up(data_dir)
    env = {
        **os.environ,
        "TRUTHSET_DATA_DIR": str(data_dir),
        "TRUTHSET_JOBS_RETRY_BASE_SECONDS": "0",  # a failed callback is retried at once
        "TRUTHSET_OUTBOUND_ALLOW": "127.0.0.1",  # the test's callback receiver (the guard refuses loopback)
        "TRUTHSET_JOBS_POLL_SECONDS": "0.1",
    }
    env.pop("TRUTHSET_DATABASE_URL", None)
    with serving(env, data_dir / "server.log") as url:
        yield Live(url=url, owner_key=owner_key, annotator_key=annotator_key)


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST; answers 500 to the first ``fail_first``."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: queue.Queue[dict[str, Any]] = queue.Queue()
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                failing = receiver.fail_first > 0
                receiver.fail_first -= 1 if failing else 0
                receiver.posts.put({"body": body, "auth": self.headers.get("scale-callback-auth"), "failed": failing})
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def next(self, timeout: float = 60) -> dict[str, Any]:
        return self.posts.get(timeout=timeout)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(fail_first=1)
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()

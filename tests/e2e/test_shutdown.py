"""Graceful shutdown of a real ``truthset serve``: SIGTERM ends it within a bound, in-flight or not.

A bulk import whose client sent one line and then went silent used to keep the server alive after
SIGTERM for as long as the client kept the connection open. Now uvicorn waits at most
``shutdown_timeout_seconds`` for requests in flight, then cancels them, and the app's shutdown
stops the database's threads after their current batch. What was acknowledged stays.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, func, select

from truthset.schemas import ProjectCreate
from truthset.services import accounts, projects
from truthset.storage import Database, upgrade
from truthset.storage import tables as t

from .support import _wait_healthy, free_port

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "s", "type": "label", "options": ["a", "b"]}],
}
EXIT_GUARD_S = 30  # a hang guard, not a timing assertion: the server is told to wait 2 s


def _stalled_import(port: int, key: str, project_id: str) -> socket.socket:
    """A chunked bulk import that the server has started to read: one line, then silence."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=EXIT_GUARD_S)
    head = (
        f"POST /api/v1/projects/{project_id}/tasks/bulk HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/x-ndjson\r\n"
        "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    )
    sock.sendall(head.encode())
    # uvicorn answers 100 Continue when the app first reads the body: the request is in flight
    assert sock.recv(100).startswith(b"HTTP/1.1 100")
    line = orjson.dumps({"data": {"text": "never finished"}}) + b"\n"
    sock.sendall(f"{len(line):x}\r\n".encode() + line + b"\r\n")
    return sock


def test_sigterm_ends_the_server_during_a_stalled_import(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'truthset.db'}"
    upgrade(url)
    db = Database(url)
    created = accounts.init_organization(db, "Shutdown", "owner@example.com")
    owner = accounts.authenticate(db, created["api_key"])
    project = projects.create_project(db, owner, ProjectCreate(name="p", spec=SPEC))
    db.dispose()
    port = free_port()
    env = {
        **os.environ,
        "TRUTHSET_DATA_DIR": str(tmp_path),
        "TRUTHSET_DATABASE_URL": url,
        "TRUTHSET_SHUTDOWN_TIMEOUT_SECONDS": "2",
    }
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-c", "from truthset.cli import main; main()", "serve", "--port", str(port)]
    with log_path.open("w") as log:
        server = subprocess.Popen([*command, "--host", "127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    sock = None
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", server, log_path)
        acknowledged = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/projects/{project['id']}/tasks",
            json={"data": {"text": "acknowledged"}, "unique_id": "kept"},
            headers={"Authorization": f"Bearer {created['api_key']}"},
        )
        assert acknowledged.status_code == 201
        sock = _stalled_import(port, created["api_key"], project["id"])
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=EXIT_GUARD_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after SIGTERM: {log_path.read_text()}") from None
    finally:
        if sock is not None:
            sock.close()
        if server.poll() is None:
            server.kill()
            server.wait()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(t.tasks.c.unique_id, func.count()).group_by(t.tasks.c.unique_id)).all()
    finally:
        engine.dispose()
    assert stored == [("kept", 1)]  # the acknowledged task; nothing of the unfinished import

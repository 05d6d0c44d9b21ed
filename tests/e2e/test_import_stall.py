"""A stalled bulk import must not stall anyone else: a real ``truthset serve`` on the embedded SQLite.

One organization's client starts a chunked JSONL import, sends one line and stops sending. While
it is still connected, another organization's annotator leases and answers a task. Before the
import was read in full before its first write, the import held the database's write lock while it
waited for the client, and the other organization's ``next`` waited with it.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from truthset.schemas import ApiKeyCreate, MemberCreate, ProjectCreate
from truthset.services import accounts, projects, tasks
from truthset.storage import Database, upgrade

from .support import serving

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "animal", "type": "label", "options": ["cat", "dog"]}],
}
#: How long a blocked call may take before the test calls it stalled: far beyond a normal answer.
PATIENCE_S = 60


def _organization(db: Database, name: str) -> dict[str, Any]:
    created = accounts.init_organization(db, name, f"owner@{name}.example")
    owner = accounts.authenticate(db, created["api_key"])
    project = projects.create_project(db, owner, ProjectCreate.model_validate({"name": name, "spec": SPEC}))
    member = accounts.add_member(db, owner, MemberCreate(email=f"annotator@{name}.example", role="annotator"))
    annotator_key = accounts.create_key(db, owner, ApiKeyCreate(member_id=member["member"]["id"]))["key"]
    return {"owner": owner, "owner_key": created["api_key"], "project": project, "annotator_key": annotator_key}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'truthset.db'}"
    upgrade(url)
    db = Database(url)
    try:
        attacker = _organization(db, "stalling")
        victim = _organization(db, "working")
        items = [(n + 1, {"data": {"text": f"item {n}"}}) for n in range(5)]
        assert tasks.import_tasks(db, victim["owner"], victim["project"]["id"], items).created == 5
    finally:
        db.dispose()
    env = {**os.environ, "TRUTHSET_DATA_DIR": str(data_dir)}
    env.pop("TRUTHSET_DATABASE_URL", None)
    with serving(env, tmp_path / "server.log") as base:
        yield base, attacker, victim


def _start_stalled_import(base: str, project_id: str, key: str) -> socket.socket:
    """A chunked JSONL import that sends its first line, then nothing: the connection stays open."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=PATIENCE_S)
    line = b'{"data": {"text": "the only line so far"}, "unique_id": "stalled-1"}\n'
    sock.sendall(
        f"POST /api/v1/projects/{project_id}/tasks/bulk HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + b"%x\r\n%s\r\n" % (len(line), line)
    )
    return sock


def _still_waiting(sock: socket.socket) -> bool:
    """The server has neither answered nor closed the stalled request's connection."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def test_a_stalled_import_does_not_stall_another_organization(world: tuple[str, dict, dict]) -> None:
    base, attacker, victim = world
    sock = _start_stalled_import(base, attacker["project"]["id"], attacker["owner_key"])
    try:
        headers = {"Authorization": f"Bearer {victim['annotator_key']}"}
        with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=PATIENCE_S) as client:
            for _ in range(3):  # the other organization's annotation loop goes on meanwhile
                leased = client.post(f"/projects/{victim['project']['id']}/next")
                assert leased.status_code == 200, leased.text
                task_id = leased.json()["task"]["id"]
                answered = client.post(f"/tasks/{task_id}/responses", json={"answer": {"animal": "cat"}})
                assert answered.status_code == 201, answered.text
        assert _still_waiting(sock)  # the import was still stalled the whole time
        # the stalled client finishes its body: the import goes through
        sock.sendall(b"0\r\n\r\n")
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        body = json.loads(reply.read())
        assert reply.status == 200, body
        assert body["created"] == 1 and body["stored"] is True
    finally:
        sock.close()

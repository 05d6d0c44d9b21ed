"""Shared by the e2e tests and their fixtures (conftest.py provides the fixtures)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANNOTATOR_EMAIL = "annotator@example.com"
ANNOTATOR_PASSWORD = "annotator-password-123"
STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(env: Mapping[str, str], log_path: Path, port: int | None = None) -> Iterator[str]:
    """A real `truthset serve` process on 127.0.0.1: yields its URL once /healthz answers, then stops it."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", "from truthset.cli import main; main()", "serve"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)], env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(url, process, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"truthset serve exited with {process.returncode}: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer /healthz within {STARTUP_TIMEOUT_S} s: {log_path.read_text()}")
        time.sleep(0.05)  # polling a starting process, bounded by the deadline: not timing a test


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class Server:
    url: str
    owner_email: str
    owner_password: str
    owner_key: str
    demo_project_id: str
    fields_project_id: str

    def api(self) -> httpx.Client:
        """An API client authenticated as the owner (an API key, as any integration would)."""
        return httpx.Client(
            base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {self.owner_key}"}, timeout=10
        )

    def responses(self, task_id: str) -> list[dict[str, Any]]:
        with self.api() as client:
            response = client.get(f"/tasks/{task_id}/responses")
            response.raise_for_status()
            return response.json()


@dataclass
class Tab:
    """A page in a fresh browser context, recording console errors and uncaught exceptions."""

    context: Any
    page: Any
    console_errors: list[str]
    page_errors: list[str]

    def script_errors(self, *, allow: tuple[str, ...] = ()) -> list[str]:
        """Console errors other than failed network loads (expected offline) and ``allow``ed ones."""
        return [
            message
            for message in self.console_errors + self.page_errors
            if "Failed to load resource" not in message and not any(a in message for a in allow)
        ]


def log_in(page: Any, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


@dataclass
class OutboundServer:
    """A server of its own whose outbound guard lets it reach 127.0.0.1 (a test's webhook receiver
    or model server): the shared one refuses loopback, as a real server should."""

    url: str
    owner_email: str
    password: str
    key: str

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {self.key}"}, timeout=10)


@contextmanager
def signed_in_page(browser: Any, server: OutboundServer) -> Iterator[Any]:
    """A page in a fresh browser context of ``server``, its owner signed in; closed on leaving."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        log_in(page, server.owner_email, server.password)
        yield page
    finally:
        context.close()


def new_project(api: httpx.Client, spec: dict[str, Any], tasks: list[dict[str, Any]] | None = None) -> str:
    """A project of ``spec`` (a random name) with ``tasks`` imported; returns its id."""
    made = api.post("/projects", json={"name": f"e2e {uuid.uuid4().hex[:8]}", "spec": spec})
    made.raise_for_status()
    project_id = str(made.json()["id"])
    if tasks:
        imported = api.post(f"/projects/{project_id}/tasks/bulk", json=tasks)
        assert imported.status_code in (200, 201), imported.text
    return project_id


@contextmanager
def outbound_server(
    data_dir: Path, owner_email: str, settings_env: Mapping[str, str] | None = None
) -> Iterator[OutboundServer]:
    """An organization (its owner ``owner_email``, and the annotator of ANNOTATOR_EMAIL), served
    with ``TRUTHSET_OUTBOUND_ALLOW=127.0.0.1`` and ``settings_env`` (more TRUTHSET_ settings)."""
    from truthset.config import Settings
    from truthset.schemas import MemberCreate
    from truthset.services import accounts
    from truthset.storage import Database, upgrade

    settings = Settings(data_dir=data_dir)
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    try:
        created = accounts.init_organization(db, "Outbound organization", owner_email)
        owner = accounts.authenticate(db, created["api_key"])
        member = MemberCreate(email=ANNOTATOR_EMAIL, name="Ann", role="annotator", password=ANNOTATOR_PASSWORD)
        accounts.add_member(db, owner, member)
    finally:
        db.dispose()
    env = {**os.environ, "TRUTHSET_DATA_DIR": str(data_dir), "TRUTHSET_OUTBOUND_ALLOW": "127.0.0.1"}
    env.update(settings_env or {})
    env.pop("TRUTHSET_DATABASE_URL", None)
    with serving(env, data_dir / "server.log") as url:
        yield OutboundServer(url=url, owner_email=owner_email, password=created["password"], key=created["api_key"])

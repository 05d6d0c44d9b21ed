"""End-to-end fixtures: a real ``truthset serve`` process on 127.0.0.1 and a real headless Chromium.

The browser is Debian's ``chromium`` package (``.ci/run`` installs it); Playwright only drives it
(``playwright install`` is never run). Without a chromium binary these tests skip, saying why.

Set-up, once per test session (per xdist worker): a temporary data directory; an organization made
with the services (so the owner's password is known), an annotator with a known password, the demo
project (``truthset demo --no-serve``) and a small project with every field type; then the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import (
    ANNOTATOR_EMAIL,
    ANNOTATOR_PASSWORD,
    CHROMIUM_ARGS,
    Server,
    Tab,
    chromium_path,
    free_port,
    serving,
)


def _truthset(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from truthset.cli import main; main()", *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=120)


def _set_up_data(data_dir: Path, env: dict[str, str], url: str) -> dict[str, Any]:
    from truthset.config import Settings
    from truthset.schemas import MemberCreate, ProjectCreate, TaskCreate
    from truthset.services import accounts, projects, tasks
    from truthset.storage import Database, upgrade

    settings = Settings(data_dir=data_dir)
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    try:
        created = accounts.init_organization(db, "E2E organization", "owner@example.com")
        owner = accounts.authenticate(db, created["api_key"])
        accounts.add_member(
            db,
            owner,
            MemberCreate(email=ANNOTATOR_EMAIL, name="Ann Otator", role="annotator", password=ANNOTATOR_PASSWORD),
        )
        _truthset("demo", "--no-serve", env=env)  # the demo project, in the organization made above
        demo = next(
            p for p in projects.list_projects(db, owner, cursor=None, limit=100)[0] if p["name"].startswith("Demo")
        )
        fields_project = projects.create_project(
            db,
            owner,
            ProjectCreate.model_validate(
                {
                    "name": "Every field type",
                    "instructions": "Look at *everything*.\n\n<script>alert('instructions')</script>",
                    "spec": {
                        "fields": [
                            {"name": "title", "type": "text", "label": "Title"},
                            {"name": "picture", "type": "image", "label": "Picture"},
                            {"name": "page", "type": "html", "label": "Page"},
                            {"name": "answers", "type": "responses", "label": "Model answers"},
                        ],
                        "questions": [
                            {
                                "name": "better",
                                "type": "label",
                                "options": ["A", "B"],
                                "prompt": "Which is **better**?",
                            },
                            {"name": "notes", "type": "text", "required": False, "multiline": True},
                        ],
                    },
                }
            ),
        )
        tasks.create_task(
            db,
            owner,
            fields_project["id"],
            TaskCreate.model_validate(
                {
                    "data": {
                        "title": "<img src=x onerror=alert(1)> & friends",
                        "picture": f"{url}/static/favicon.svg",
                        "page": "<h1>Hello</h1><script>parent.document.title='pwned'</script>",
                        "answers": [{"text": "Paris", "model": "model-a"}, "It is Paris."],
                    }
                }
            ),
        )
    finally:
        db.dispose()
    return {
        "owner_password": created["password"],
        "owner_key": created["api_key"],
        "demo_project_id": demo["id"],
        "fields_project_id": fields_project["id"],
    }


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("e2e-data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TRUTHSET_DATA_DIR": str(data_dir)}
    env.pop("TRUTHSET_DATABASE_URL", None)  # the embedded SQLite database in data_dir
    made = _set_up_data(data_dir, env, url)
    with serving(env, data_dir / "server.log", port=port):
        yield Server(url=url, owner_email="owner@example.com", **made)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium binary (apt-get install chromium; .ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Tab]:
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    console_errors: list[str] = []
    page_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        yield Tab(context=context, page=page, console_errors=console_errors, page_errors=page_errors)
    finally:
        context.close()

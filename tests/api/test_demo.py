"""`truthset demo` end to end: the projects it creates, served by the API, images included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import anyio.from_thread
import pytest
from typer.testing import CliRunner

from truthset import demo
from truthset.api import create_app
from truthset.cli import app
from truthset.config import Settings
from truthset.storage import Database

from .helpers import API, Api


def _run_demo() -> str:
    result = CliRunner().invoke(app, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps long lines


@pytest.fixture
def demo_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, str, str]]:
    """The demo set up in an empty data directory, and an API client on it with the owner's key."""
    monkeypatch.setenv("TRUTHSET_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TRUTHSET_DATABASE_URL", raising=False)
    output = _run_demo()
    key = re.search(r"API key (ts_\S+)", output).group(1)
    settings = Settings(data_dir=tmp_path)
    db = Database(settings.resolved_database_url)
    with anyio.from_thread.start_blocking_portal() as portal:
        client = Api(create_app(settings, db=db), portal)
        try:
            yield client, key, output
        finally:
            client.close()
            db.dispose()


def _projects(api: Api, key: str) -> dict[str, dict]:
    response = api.get(f"{API}/projects", auth=key, params={"limit": 100})
    assert response.status_code == 200, response.text
    return {p["name"]: p for p in response.json()["items"]}


def _tasks(api: Api, key: str, project_id: str) -> list[dict]:
    response = api.get(f"{API}/tasks", auth=key, params={"project_id": project_id, "limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_demo_creates_every_project_with_its_tasks_once(demo_run: tuple[Api, str, str]) -> None:
    api, key, first = demo_run
    projects = _projects(api, key)
    installed = demo.installed_types()
    for item in demo.PROJECTS:
        if item.missing_types(installed):
            assert f"Skipped demo project {item.name}" in first and item.name not in projects
            continue
        project = projects[item.name]
        assert project["instructions"] == item.instructions
        assert len(_tasks(api, key, project["id"])) == len(item.tasks())
        assert f"{item.name} ({project['id']}): {len(item.tasks())} tasks added, 0 already there" in first
    second = _run_demo()
    assert "API key" not in second and " tasks added" in second
    assert re.findall(r"(\d+) tasks added", second) == ["0"] * len(re.findall(r"tasks added", second))
    assert _projects(api, key).keys() == projects.keys()


def test_a_demo_image_task_serves_its_image(demo_run: tuple[Api, str, str]) -> None:
    api, key, _ = demo_run
    for name in ("Demo: objects in photos", "Demo: counting"):
        project = _projects(api, key)[name]
        task = _tasks(api, key, project["id"])[0]
        reference = task["data"]["photo"]
        assert reference.startswith("media:")
        image = api.get(f"{API}/media/{reference.removeprefix('media:')}", auth=key)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/jpeg"
        assert image.content == demo.data_file(task["metadata"]["file"])


def test_a_project_whose_type_is_not_installed_is_skipped_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUTHSET_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TRUTHSET_DATABASE_URL", raising=False)
    installed = demo.installed_types() - {"number"}
    monkeypatch.setattr(demo, "installed_types", lambda: installed)
    output = _run_demo()
    assert "Skipped demo project Demo: counting: question type number is not installed." in output
    assert "Demo project Demo: counting" not in output
    assert "Demo project Demo: objects in photos" in output  # the others are made all the same

"""The app's lifespan: startup freezes the long-lived heap; shutdown disposes a database it opened."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from pathlib import Path

import anyio
from fastapi import FastAPI

from conftest import run_async
from truthset.api import create_app
from truthset.config import Settings
from truthset.storage import Database, upgrade


def _run_lifespan(app: FastAPI, during: object) -> None:
    """Start the app as a server does, call ``during()``, then shut it down."""

    async def main() -> None:
        async with app.router.lifespan_context(app):
            await anyio.to_thread.run_sync(during)  # type: ignore[arg-type]

    run_async(main)


def _writer_threads() -> int:
    return sum(thread.name == "truthset-writer" for thread in threading.enumerate())


def test_startup_freezes_the_heap_and_shutdown_stops_the_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'truthset.db'}"
    upgrade(url)
    app = create_app(Settings(data_dir=str(tmp_path), database_url=url))
    before = _writer_threads()
    try:
        gc.unfreeze()

        def running() -> None:
            assert gc.get_freeze_count() > 0
            app.state.db.submit(lambda: None).result(timeout=10)  # starts the writer thread
            assert _writer_threads() == before + 1

        _run_lifespan(app, running)
        assert _writer_threads() == before  # the app opened the database, so it closed it
    finally:
        gc.unfreeze()


def test_a_database_given_to_the_app_stays_open(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'given.db'}")
    db.create_all()
    try:
        _run_lifespan(create_app(Settings(data_dir=str(tmp_path)), db=db), lambda: db.submit(lambda: None).result(10))
        assert db.submit(lambda: 7).result(timeout=10) == 7  # still usable: its owner disposes it
    finally:
        gc.unfreeze()
        db.dispose()


_FRESH_START = """
import sys
import anyio
from truthset.api import create_app
from truthset.config import Settings
from truthset.questions import _registry

app = create_app(Settings(data_dir=sys.argv[1], database_url=sys.argv[2]))
before = _registry._loaded

async def main() -> None:
    async with app.router.lifespan_context(app):
        print(before, _registry._loaded, "truthset.questions.label" in sys.modules)

anyio.run(main)
"""


def test_startup_loads_the_question_types_before_the_first_request(tmp_path: Path) -> None:
    """In a fresh process: the first task create used to import them (and SciPy) while its client waited."""
    url = f"sqlite:///{tmp_path / 'truthset.db'}"
    upgrade(url)
    out = subprocess.run(
        [sys.executable, "-c", _FRESH_START, str(tmp_path), url], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]

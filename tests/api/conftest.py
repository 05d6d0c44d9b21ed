"""API test fixtures: the app in-process with a synchronous client (see helpers.py).

``db``, ``make_org``, ``org`` and ``other_org`` come from tests/conftest.py (SQLite, and PostgreSQL when
``TRUTHSET_TEST_POSTGRES_URL`` is set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import anyio.from_thread
import pytest

from truthset.api import create_app
from truthset.config import Settings
from truthset.storage import Database

from .helpers import Api


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def make_api(db: Database) -> Iterator[Callable[..., Api]]:
    """Factory: ``make_api(max_body_bytes=2048)`` builds an app with those settings and a client."""
    clients: list[Api] = []
    with anyio.from_thread.start_blocking_portal() as portal:

        def make(settings: Settings) -> Api:
            client = Api(create_app(settings, db=db), portal)
            clients.append(client)
            return client

        try:
            yield make
        finally:
            for client in clients:
                client.close()


@pytest.fixture
def api(make_api: Callable[..., Api], settings: Settings) -> Api:
    return make_api(settings)

"""Proxy headers on a real ``truthset serve``: believed only from a proxy named in TRUSTED_PROXIES.

uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise, which let a local client
choose its own address and slip past the sign-in lockout (counted per client address). Here a
client on 127.0.0.1 sends a different ``X-Forwarded-For`` with each wrong password: the lockout must
still see one address, unless the setting names 127.0.0.1 as a proxy.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from truthset.api.session import CSRF_FIELD, LOGIN_CSRF_COOKIE
from truthset.config import Settings
from truthset.services.sessions import MAX_FAILURES_PER_EMAIL_AND_ADDRESS
from truthset.storage import Database
from truthset.storage import tables as t

from .support import serving


def _wrong_password(client: httpx.Client, n: int) -> int:
    """One failed sign-in (the login form's double-submit CSRF pair sent as cookie and field)."""
    response = client.post(
        "/login",
        data={"email": "victim@example.com", "password": f"guess-{n}", CSRF_FIELD: "csrf"},
        headers={"X-Forwarded-For": f"203.0.113.{n + 1}", "Cookie": f"{LOGIN_CSRF_COOKIE}=csrf"},
    )
    return response.status_code


@pytest.mark.parametrize(("trusted", "locked_out"), [("", True), ("127.0.0.1", False), ("10.0.0.0/8", True)])
def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path, trusted: str, locked_out: bool) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "TRUTHSET_DATA_DIR": str(data_dir), "TRUTHSET_TRUSTED_PROXIES": trusted}
    env.pop("TRUTHSET_DATABASE_URL", None)
    with serving(env, tmp_path / "server.log") as url, httpx.Client(base_url=url, timeout=30) as client:
        statuses = [_wrong_password(client, n) for n in range(MAX_FAILURES_PER_EMAIL_AND_ADDRESS + 1)]
    assert statuses[:-1] == [401] * MAX_FAILURES_PER_EMAIL_AND_ADDRESS
    assert statuses[-1] == (429 if locked_out else 401)
    db = Database(Settings(data_dir=data_dir).resolved_database_url)
    try:
        with db.read() as conn:
            addresses = set(conn.execute(select(t.login_failures.c.address)).scalars())
    finally:
        db.dispose()
    if locked_out:
        assert addresses == {"127.0.0.1"}
    else:
        assert addresses == {f"203.0.113.{n + 1}" for n in range(MAX_FAILURES_PER_EMAIL_AND_ADDRESS + 1)}


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings(trusted_proxies=" 127.0.0.1 , 10.0.0.0/8,::1 ").trusted_proxies == "127.0.0.1,10.0.0.0/8,::1"
    with pytest.raises(ValidationError, match=r"trusted_proxies: 'proxy\.local' is not an IP address"):
        Settings(trusted_proxies="127.0.0.1,proxy.local")

"""A server refuses to start on a database it cannot serve: one line on stderr, exit status 1.

Run as a user would: the installed ``truthset`` command in a subprocess (the check and its output
are the command's, not a function's).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, text

from truthset.storage import upgrade

TRUTHSET = str(Path(sys.executable).with_name("truthset"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRUTHSET_")} | env
    # the timeout only bounds a server that wrongly started; a refusal returns at once
    return subprocess.run([TRUTHSET, *args], env=environment, capture_output=True, text=True, timeout=120, check=False)


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run(env, "serve", "--host", "127.0.0.1", "--port", str(_free_port()))


def test_serve_refuses_a_file_that_is_not_a_sqlite_database(tmp_path: Path) -> None:
    (tmp_path / "truthset.db").write_bytes(b"these are not the bytes of a SQLite database " * 20)
    _refused(_serve({"TRUTHSET_DATA_DIR": str(tmp_path)}), "is not a SQLite database")


def test_serve_refuses_a_database_made_by_a_newer_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'truthset.db'}"
    upgrade(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    _refused(_serve({"TRUTHSET_DATA_DIR": str(tmp_path)}), "revision 9999", "newer")
    # and nothing was changed: the newer version still finds its own revision
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
    engine.dispose()


def test_serve_refuses_a_postgresql_server_that_cannot_be_reached(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://truthset:secret@127.0.0.1:{_free_port()}/truthset"  # nobody listens there
    result = _serve({"TRUTHSET_DATA_DIR": str(tmp_path), "TRUTHSET_DATABASE_URL": url})
    _refused(result, "cannot use the database", "127.0.0.1")
    assert "secret" not in result.stderr


@pytest.mark.parametrize("command", [("db", "upgrade"), ("keys", "list")])
def test_every_command_that_opens_the_database_refuses_alike(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "truthset.db").write_bytes(b"\x00" * 4096)
    _refused(_run({"TRUTHSET_DATA_DIR": str(tmp_path)}, *command), "is not a SQLite database")


def test_a_data_directory_open_to_other_users_is_warned_about(tmp_path: Path) -> None:
    """An earlier version made the data directory world-readable: say so, and how to close it."""
    data = tmp_path / "data"
    env = {"TRUTHSET_DATA_DIR": str(data)}
    fresh = _run(env, "db", "upgrade")
    assert fresh.returncode == 0, fresh
    assert "warning" not in fresh.stderr  # made owner-only: nothing to say
    data.chmod(0o755)
    (data / "truthset.db").chmod(0o644)
    opened = _run(env, "db", "upgrade")
    assert opened.returncode == 0, opened
    warnings = [line for line in opened.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and "mode 755" in warnings[0] and "mode 644" in warnings[1]
    assert f"chmod -R go= {data}" in warnings[0]


def test_a_restore_is_refused_while_a_worker_runs_on_the_data_directory(tmp_path: Path) -> None:
    """`truthset worker` (and `serve`) hold the data directory while they run; `db restore` says so
    and writes nothing; once the worker has stopped the restore goes through."""
    import time

    from truthset.storage.files import data_dir_in_use

    data = tmp_path / "data"
    env = {"TRUTHSET_DATA_DIR": str(data)}
    assert _run(env, "db", "upgrade").returncode == 0
    assert _run(env, "db", "backup", str(tmp_path / "backup")).returncode == 0
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRUTHSET_")} | env
    worker = subprocess.Popen([TRUTHSET, "worker"], env=environment, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not data_dir_in_use(data):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        _refused(_run(env, "db", "restore", str(tmp_path / "backup"), "--force"), "a truthset server or worker")
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert not data_dir_in_use(data)
    restored = _run(env, "db", "restore", str(tmp_path / "backup"), "--force")
    assert restored.returncode == 0, restored

"""The administration commands, run as a user would, on a temporary data directory."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from truthset.cli import app, main
from truthset.config import Settings
from truthset.errors import Unauthenticated
from truthset.services import accounts
from truthset.storage import Database

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUTHSET_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TRUTHSET_DATABASE_URL", raising=False)
    return tmp_path


def _db(data_dir: Path) -> Database:
    return Database(Settings(data_dir=data_dir).resolved_database_url)


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _flat(output: str) -> str:
    """Rich wraps long lines at the terminal width; compare text, not layout."""
    return " ".join(output.split())


def test_init_prints_working_one_time_credentials_and_refuses_twice(data_dir: Path) -> None:
    output = _invoke("init", "--org-name", "Acme", "--email", "Boss@Acme.test")
    key = re.search(r"API key\s+(ts_\S+)", output).group(1)
    password = re.search(r"Password\s+(\S+)", output).group(1)
    db = _db(data_dir)
    principal = accounts.authenticate(db, key)
    assert principal.role == "owner"
    member = accounts.login(db, principal.organization_id, "boss@acme.test", password)
    assert member["password_hash"].startswith("$argon2")
    assert key not in (data_dir / "truthset.db").read_bytes().decode("latin-1")

    again = runner.invoke(app, ["init"])
    assert again.exit_code == 1
    assert "already initialised" in again.output


def test_users_and_keys_commands(data_dir: Path) -> None:
    _invoke("init", "--email", "owner@acme.test")
    added = _invoke("users", "add", "ann@acme.test", "--role", "annotator", "--name", "Ann")
    member_id = re.search(r"id (\w+)", added).group(1)
    assert "one-time password:" in added
    assert "ann@acme.test" in _invoke("users", "list")

    assert "is now reviewer" in _invoke("users", "set-role", member_id, "reviewer")
    created = _invoke("keys", "create", "--member", member_id, "--name", "ann laptop")
    key = created.strip().splitlines()[-1]
    key_id = re.search(r"key (\w+)", created).group(1)
    db = _db(data_dir)
    assert accounts.authenticate(db, key).member_id == member_id
    assert "ann laptop" in _invoke("keys", "list")

    _invoke("keys", "revoke", key_id)
    with pytest.raises(Unauthenticated):  # a server process that had not seen the key
        accounts.authenticate(_db(data_dir), key)

    _invoke("users", "disable", member_id)
    other = _invoke("keys", "create", "--name", "owner key 2").strip().splitlines()[-1]
    assert accounts.authenticate(db, other).role == "owner"


def test_bad_role_is_a_clear_error(data_dir: Path) -> None:
    _invoke("init")
    result = runner.invoke(app, ["users", "add", "x@acme.test", "--role", "emperor"])
    assert result.exit_code != 0
    assert "emperor" in result.output


def test_demo_setup_is_idempotent(data_dir: Path) -> None:
    first = _flat(_invoke("demo", "--no-serve"))
    assert "30 tasks added, 0 already there" in first and "API key" in first
    second = _flat(_invoke("demo", "--no-serve"))
    assert "0 tasks added, 30 already there" in second
    assert "API key" not in second


def test_db_upgrade_is_repeatable(data_dir: Path) -> None:
    assert "up to date" in _invoke("db", "upgrade")
    assert "up to date" in _invoke("db", "upgrade")


def test_db_backup_and_restore(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the operator types: a backup while data is there, a refused restore over it (one line,
    exit status 1, nothing written), a forced one, and a restore into a new data directory."""
    _invoke("init", "--email", "owner@acme.test")
    output = _flat(_invoke("db", "backup", str(tmp_path / "nightly")))
    assert "backup written to" in output and "schema 0" in output
    assert "1 organizations, 1 members, 0 projects, 0 tasks" in output
    assert "webhook key none yet" in output

    _invoke("users", "add", "ann@acme.test", "--role", "annotator")
    code, err = _main(monkeypatch, capsys, "db", "restore", str(tmp_path / "nightly"))
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err
    assert "holds data (1 organizations, 2 members): stop the server, then pass --force" in _flat(err)
    assert "ann@acme.test" in _invoke("users", "list")  # refused: nothing was written

    restored = _flat(_invoke("db", "restore", str(tmp_path / "nightly"), "--force"))
    assert "1 organizations, 1 members" in restored
    assert "ann@acme.test" not in _invoke("users", "list")

    monkeypatch.setenv("TRUTHSET_DATA_DIR", str(tmp_path / "new-machine"))
    _invoke("db", "restore", str(tmp_path / "nightly"))
    assert "owner@acme.test" in _invoke("users", "list")

    code, err = _main(monkeypatch, capsys, "db", "backup", str(tmp_path / "nightly"))
    assert code == 1 and "already exists: name a new directory for the backup" in _flat(err)


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The console script itself (``main``: a domain error is one line on stderr), its exit status and stderr."""
    monkeypatch.setattr(sys, "argv", ["truthset", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main()
    return int(exit_.value.code or 0), capsys.readouterr().err

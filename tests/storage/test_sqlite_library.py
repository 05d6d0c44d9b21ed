"""SQLite's memory statistics, turned off by a process's first Database (storage/sqlite_library.py).

Each case runs in a fresh interpreter: the setting is per process and this one has used SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import ctypes, sqlite3, sys, _sqlite3
from truthset.storage import Database
if sys.argv[2] == "busy":
    held = sqlite3.connect(":memory:")  # SQLite already in use: nothing may be shut down under it
    held.execute("CREATE TABLE kept (x)")
db = Database(f"sqlite:///{sys.argv[1]}", sqlite_synchronous="NORMAL")
db.create_all()
with db.read() as conn:
    conn.exec_driver_sql("SELECT count(*) FROM tasks").scalar_one()
    library = ctypes.CDLL(_sqlite3.__file__)
    library.sqlite3_memory_used.restype = ctypes.c_int64
    print(library.sqlite3_memory_used())  # 0 while counting is off, though connections are open
if sys.argv[2] == "busy":
    print(held.execute("SELECT count(*) FROM kept").fetchone()[0])
db.dispose()
"""


def test_the_first_database_of_a_process_turns_memory_statistics_off(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "a.db"), "fresh"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"]


def test_with_sqlite_already_in_use_they_stay_on_and_nothing_breaks(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "b.db"), "busy"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    used, kept = out.stdout.split()
    assert int(used) > 0 and kept == "0"

"""docs/sdk.md is executable: every ``python`` block runs, in order, against a live server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import LiveServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def test_sdk_doc_examples_run(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write files (exports) where they run
    monkeypatch.setenv("TRUTHSET_URL", live.url)
    monkeypatch.setenv("TRUTHSET_API_KEY", live.api_key)
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 10
    namespace: dict[str, object] = {"__name__": "sdk_doc"}
    for number, code in enumerate(blocks, 1):
        try:
            exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"docs/sdk.md python block {number} failed: {exc!r}\n{code}") from exc
    printed = capsys.readouterr().out
    assert "404 not_found" in printed and "{'field': 'name'}" in printed
    assert "2 data.text is required" in printed

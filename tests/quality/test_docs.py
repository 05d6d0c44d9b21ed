"""The Python examples in docs/quality.md run and their assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "quality.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_doc_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_doc_example_runs(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {})


def test_every_public_name_is_documented() -> None:
    import truthset.quality as quality

    text = DOC.read_text()
    internal = {"Answers", "factorize_answers", "DEFAULT_METHOD", "METHODS"}
    missing = [name for name in quality.__all__ if name not in internal and name not in text]
    assert not missing, f"undocumented in docs/quality.md: {missing}"

"""Small shared helpers of the domain module."""

from __future__ import annotations

import pytest

from truthset.domain import readable_size


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (44_326, "43.3 KiB"), (1 << 20, "1.0 MiB"),
     (3 * (1 << 30) // 2, "1.5 GiB"), (5 << 40, "5120.0 GiB")],
)  # fmt: skip
def test_readable_size(size: int, text: str) -> None:
    assert readable_size(size) == text

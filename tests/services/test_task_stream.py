"""Import bodies as streams: JSONL lines (linear, bounded per line) and JSON array items."""

from __future__ import annotations

import pytest

from truthset.errors import InvalidInput, TooLarge
from truthset.services.task_stream import Item, LineSplitter, TooLong, json_array_items, jsonl_items


def _pieces(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_lines_are_the_same_however_the_body_is_cut(size: int) -> None:
    body = b'{"a": 1}\n\n  \n{"b": 2}\r\n' + b"y" * 40 + b'\n{"c": 3}'
    lines = list(jsonl_items(_pieces(body, size), max_line=30))
    assert lines == [(1, b'{"a": 1}'), (4, b'{"b": 2}\r'), (5, TooLong(30)), (6, b'{"c": 3}')]


def test_a_body_ending_in_a_newline_has_no_extra_line_and_a_too_long_last_line_is_reported() -> None:
    assert list(jsonl_items([b"{}\n"], max_line=10)) == [(1, b"{}")]
    assert list(jsonl_items([b"{}\n", b"z" * 11], max_line=10)) == [(1, b"{}"), (2, TooLong(10))]
    assert list(jsonl_items([], max_line=10)) == []


class _Counted(bytes):
    """A chunk that counts the bytes searched for newlines in it."""

    searched = 0

    def split(self, *args: object, **kwargs: object) -> list[bytes]:  # type: ignore[override]
        _Counted.searched += len(self)
        return super().split(*args, **kwargs)  # type: ignore[arg-type]

    def find(self, *args: object, **kwargs: object) -> int:  # type: ignore[override]
        raise AssertionError("split once, not searched piecewise")


def test_a_long_line_is_searched_once_not_once_per_chunk() -> None:
    """Linear: each byte is searched for a newline once, however many chunks a long line spans.

    The old splitter appended each chunk to the pending bytes and split them all again: for a line
    of n chunks it searched about n*n/2 chunks' worth of bytes (and copied as much).
    """
    _Counted.searched = 0
    splitter = LineSplitter(max_line=8 << 20)
    piece = _Counted(b"x" * 4096)
    for _ in range(1024):  # a 4 MiB line in 4 KiB chunks
        assert splitter.feed(piece) == []
    assert splitter.feed(_Counted(b"\n")) == [(1, b"x" * 4096 * 1024)]
    assert _Counted.searched == 4096 * 1024 + 1


def test_an_over_long_line_is_dropped_as_it_arrives() -> None:
    splitter = LineSplitter(max_line=100)
    for _ in range(1000):
        splitter.feed(b"x" * 1000)
        assert len(splitter._pending) == 0  # nothing of it is kept
    assert splitter.feed(b'x\n{"ok": 1}\n') == [(1, TooLong(100)), (2, b'{"ok": 1}')]


def test_json_array_items_keep_integers_exact_and_number_the_items() -> None:
    body = b' [ {"n": 1180591620717411303424}, 2.5, "s", [1], {"deep": [[[]]]} ] '
    for size in (1, 5, 1000):
        items = list(json_array_items(_pieces(body, size), max_item=1000))
        assert [number for number, _ in items] == [1, 2, 3, 4, 5]
        assert all(isinstance(item, Item) for _, item in items)
        values = [item.value for _, item in items]
        assert values[0] == {"n": 1180591620717411303424} and float(values[1]) == 2.5
        assert values[2:] == ["s", [1], {"deep": [[[]]]}]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b'{"a": 1}', InvalidInput, "must be an array"),
        (b"", InvalidInput, "must be an array"),
        (b"[1, 2", InvalidInput, "not valid JSON"),
        (b"[1] 2", InvalidInput, "not valid JSON"),
        (b'[1, "' + b"x" * 300_000 + b'"]', TooLarge, "item 2 of the JSON array is longer than 1000 bytes"),
    ],
)
def test_json_array_errors(body: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        list(json_array_items(_pieces(body, 4096), max_item=1000))

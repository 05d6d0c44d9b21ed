"""Ids sort by creation time and are unique, also across threads."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from truthset.storage.ids import new_id, new_ids, utcnow


def test_ids_are_24_hex_and_increase() -> None:
    ids = [new_id() for _ in range(2000)] + new_ids(5000) + [new_id() for _ in range(10)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_from_many_threads_are_unique() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(pool.map(lambda _: [new_id() for _ in range(500)] + new_ids(500), range(8)))
    every = [i for batch in batches for i in batch]
    assert len(set(every)) == len(every) == 8000
    assert all(batch[:500] == sorted(batch[:500]) for batch in batches)


def test_ids_start_with_the_time() -> None:
    before = int(datetime.now(UTC).timestamp() * 1000)
    stamp = int(new_id()[:12], 16)
    assert before <= stamp <= before + 60_000


def test_utcnow_is_naive_utc() -> None:
    now = utcnow()
    assert now.tzinfo is None
    assert abs((datetime.now(UTC).replace(tzinfo=None) - now).total_seconds()) < 60


def test_tails_are_random_across_the_pool_and_a_forked_child_draws_its_own() -> None:
    """The tails come from a pool of OS random bytes: refills keep them varied, and a forked child
    must not hand out the parent's remaining bytes (same millisecond and counter: the same ids)."""
    import os

    tails = [i[18:] for i in new_ids(3000)]  # 9,000 bytes: more than two pools
    assert len(set(tails)) > 2900  # 3-byte tails: a few collisions at most, never a repeated pool
    new_id()  # a fresh pool, nearly whole: what the parent would go on handing out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next tails, to the parent
        os.close(read)
        os.write(write, "".join(i[18:] for i in new_ids(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = "".join(i[18:] for i in new_ids(50))
    assert len(child) == len(parent) == 300 and child != parent

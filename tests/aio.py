"""Run a coroutine function from a synchronous test, whatever loop the test's thread already has.

``anyio.run`` refuses to start when an event loop is running in the calling thread, and one can be:
Playwright's synchronous API keeps an asyncio loop in the main thread of a pytest worker for as long
as its session-scoped browser lives. A blocking portal runs the coroutine on a loop of its own thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.from_thread

T = TypeVar("T")


def run_async(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    with anyio.from_thread.start_blocking_portal() as portal:
        return portal.call(function, *args)

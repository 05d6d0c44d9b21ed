"""A real small HTTP server on 127.0.0.1 in a thread, for the network guard and webhook tests.

Every request is recorded (method, path, headers, body); ``answer`` decides the reply, by default
200. Tests wait for requests with :meth:`Receiver.wait_for` (a condition with a deadline), never by
sleeping. An answer may hold the connection (``Receiver.hold``) until the receiver closes, to test
time limits without timing anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEADLINE_S = 30.0


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] | None = None
    content_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    hold_before_body: bool = False  # send the headers, then wait until the receiver closes


Answer = Callable[[Request, int], Reply]  # (request, its number from 1) -> reply


class Receiver:
    def __init__(self, answer: Answer | None = None) -> None:
        self.answer: Answer = answer or (lambda request, n: Reply())
        self.requests: list[Request] = []
        self._changed = threading.Condition()
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._changed:
                    receiver.requests.append(request)
                    number = len(receiver.requests)
                    receiver._changed.notify_all()
                reply = receiver.answer(request, number)
                self.send_response(reply.status)
                for name, value in (reply.headers or {}).items():
                    self.send_header(name, value)
                if reply.content_length:
                    self.send_header("Content-Length", str(len(reply.body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if reply.hold_before_body:
                    self.wfile.flush()
                    receiver.released.wait(DEADLINE_S)
                    return
                self.wfile.write(reply.body)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        serve = self.server.serve_forever
        self.thread = threading.Thread(target=serve, args=(0.05,), name="test-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = DEADLINE_S) -> list[Request]:
        """The first ``count`` requests, once they have arrived (AssertionError past ``timeout``)."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.requests) >= count, timeout)
            assert arrived, f"the receiver got {len(self.requests)} requests, not {count}, within {timeout} s"
            return list(self.requests[:count])

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def running(answer: Answer | None = None) -> Iterator[Receiver]:
    receiver = Receiver(answer)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.close()

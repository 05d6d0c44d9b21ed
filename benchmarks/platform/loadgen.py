"""Load generator for the annotation loop, run as its own process by ``run.py``.

Simulates N annotators, each with its own API key and one keep-alive HTTP/1.1 connection, looping
"lease the next task, submit a response" as fast as the server answers (no think time) for a fixed
number of seconds. It speaks HTTP over asyncio streams directly, so the load generator costs a
fraction of what the server does and the measurement is of the server, not of an HTTP client.

Input (a JSON file path as argv[1]): {"host", "port", "project_id", "keys": [...], "seconds",
"answer"} and optionally "request_timeout" (seconds; a call that takes longer counts as an error
and its connection is reopened). Output (stdout): one JSON object with counts, the status codes
seen (``status_counts``, ``server_errors`` = 5xx), and per-call latencies in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from typing import Any

import orjson


class Connection:
    """One keep-alive HTTP/1.1 connection: just enough protocol for this API's JSON answers."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host = host
        self.port = port
        self.auth = f"Bearer {key}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()

    async def request(self, method: str, path: str, body: bytes = b"", headers: str = "") -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            return status, b"".join(parts)
        return status, await self.reader.readexactly(length) if length else b""


async def call(
    conn: Connection, spec: dict[str, Any], stats: dict[str, Any], *args: Any
) -> tuple[int, bytes]:
    """One request; a timeout (``request_timeout``) counts as status 0 and reopens the connection."""
    timeout = spec.get("request_timeout")
    try:
        status, body = await asyncio.wait_for(conn.request(*args), timeout)
    except TimeoutError:
        await conn.close()
        await conn.open()
        status, body = 0, b"timeout"
    stats["status_counts"][status] = stats["status_counts"].get(status, 0) + 1
    return status, body


async def annotator(spec: dict[str, Any], key: str, deadline: float, stats: dict[str, Any]) -> None:
    conn = Connection(spec["host"], spec["port"], key)
    await conn.open()
    next_path = f"/api/v1/projects/{spec['project_id']}/next"
    answer = spec["answer"]
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, body = await call(conn, spec, stats, "POST", next_path)
            stats["next"].append(time.perf_counter() - started)
            if status == 204:
                stats["empty"] += 1
                break
            if status == 503 and b'"busy"' in body:
                stats["busy"] = stats.get("busy", 0) + 1  # lost a race, nothing leased: ask again
                continue
            if status != 200:
                stats["errors"].append(f"next {status} {body[:200]!r}")
                continue
            assignment = orjson.loads(body)
            payload = orjson.dumps({"answer": answer, "assignment_id": assignment["id"], "duration_ms": 1000})
            started = time.perf_counter()
            status, body = await call(
                conn,
                spec,
                stats,
                "POST",
                f"/api/v1/tasks/{assignment['task']['id']}/responses",
                payload,
                f"Idempotency-Key: {uuid.uuid4()}\r\n",
            )
            stats["submit"].append(time.perf_counter() - started)
            if status not in (200, 201):
                stats["errors"].append(f"submit {status} {body[:200]!r}")
                continue
            stats["responses"] += 1
    finally:
        await conn.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"count": 0}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "count": len(ordered),
        "mean": round(sum(ordered) / len(ordered) * 1000, 2),
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 2),
    }


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    stats: dict[str, Any] = {"next": [], "submit": [], "responses": 0, "empty": 0, "errors": [], "status_counts": {}}
    started = time.perf_counter()
    deadline = started + float(spec["seconds"])
    cpu_before = time.process_time()
    await asyncio.gather(*(annotator(spec, key, deadline, stats) for key in spec["keys"]))
    elapsed = time.perf_counter() - started
    return {
        "annotators": len(spec["keys"]),
        "seconds": round(elapsed, 3),
        "responses": stats["responses"],
        "responses_per_second": round(stats["responses"] / elapsed, 1),
        "queue_emptied": stats["empty"],
        "errors": len(stats["errors"]),
        "server_errors": sum(n for status, n in stats["status_counts"].items() if status >= 500),
        "status_counts": {str(status): n for status, n in sorted(stats["status_counts"].items())},
        "first_errors": stats["errors"][:5],
        "latency_ms": {"next": percentiles(stats["next"]), "submit": percentiles(stats["submit"])},
        "loadgen_cpu_seconds": round(time.process_time() - cpu_before, 2),
    }


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as handle:
        config = orjson.loads(handle.read())
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    sys.stdout.write(orjson.dumps(asyncio.run(main(config))).decode() + "\n")

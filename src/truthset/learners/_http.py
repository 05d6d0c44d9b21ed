"""How a learner talks HTTP: one ``send`` callable, bounded replies, retries with backoff.

Learners may not import the service layer, so they never pick their own network rules: whoever
builds a client passes a :class:`Send`. The service layer passes one that goes through its network
guard (``services.netguard``: address rules, DNS pinning, size and time limits); :class:`HttpxSend`
is a plain httpx sender that takes a ``check_url`` callable for that purpose, and that tests use
against their own servers on 127.0.0.1.

Retries are a short loop here rather than a library: the policy is small (5xx, 429 and connection
errors; exponential backoff with jitter; ``Retry-After`` honoured up to a cap) and the sender, not
the retry library, must decide what a failure is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

#: The largest reply read by default (a model server or LLM answering a batch): 10 MiB.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    timeout: float = 30.0  # seconds for the whole exchange
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    content: bytes


class SendError(Exception):
    """The exchange failed: no connection, a timeout, a reply over the size limit, a refused URL.

    ``retryable`` says whether trying again may help (a connection or a timeout: yes; a reply too
    big or a URL the rules refuse: no).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Send(Protocol):
    def __call__(self, request: HttpRequest) -> HttpReply:
        """Send one request; return the reply whatever its status, or raise :class:`SendError`."""


class HttpxSend:
    """A :class:`Send` over httpx: no proxies from the environment, no redirects, replies read in
    chunks and cut at ``max_bytes``.

    ``check_url(url)`` runs before each request and raises (any exception, reported as a refused
    URL) for a URL the caller's rules refuse; None means no check, for tests and tools only.
    """

    def __init__(self, check_url: Callable[[str], Any] | None, *, transport: httpx.BaseTransport | None = None) -> None:
        self._check_url = check_url
        self._client = httpx.Client(follow_redirects=False, trust_env=False, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __call__(self, request: HttpRequest) -> HttpReply:
        if self._check_url is not None:
            try:
                self._check_url(request.url)
            except Exception as exc:
                raise SendError(f"url refused: {exc}", retryable=False) from None
        deadline = time.monotonic() + request.timeout
        try:
            with self._client.stream(
                request.method,
                request.url,
                headers=dict(request.headers),
                content=request.content,
                timeout=httpx.Timeout(request.timeout),
            ) as response:
                body = _read_limited(response, request.max_bytes, deadline, request.timeout)
                return HttpReply(response.status_code, dict(response.headers), body)
        except httpx.TimeoutException as exc:
            raise SendError(f"timed out after {request.timeout:g} s ({type(exc).__name__})", retryable=True) from None
        except httpx.HTTPError as exc:
            raise SendError(f"could not reach the server: {exc}", retryable=True) from None


def _read_limited(response: httpx.Response, limit: int, deadline: float, timeout: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise SendError(f"the reply is {declared} bytes, more than the {limit} allowed", retryable=False)
    body = bytearray()
    for chunk in response.iter_bytes(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise SendError(f"the reply is more than the {limit} bytes allowed", retryable=False)
        if time.monotonic() > deadline:
            raise SendError(f"timed out after {timeout:g} s reading the reply", retryable=True)
    return bytes(body)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff: wait ``base * 2**n`` (with up to 50% jitter, at most ``cap``) before retry n+1."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), self.cap)
        wait = self.base * 2**attempt
        return min(wait * (1 + random.random() / 2), self.cap)


class ServerError(Exception):
    """The server did not give a usable reply (after any retries); the message says why.

    ``status`` is the HTTP status of a refused request (a 4xx), else None.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


#: Statuses worth another attempt: the server is busy, restarting or behind a failing proxy.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def send_json(
    send: Send,
    request: HttpRequest,
    retry: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[HttpReply, Any]:
    """Send with retries; return the 2xx reply and its JSON body, or raise :class:`ServerError`.

    A 4xx other than 429 is not retried: the request itself is wrong, and the error carries the
    server's words (the caller may act on them, e.g. drop ``response_format``).
    """
    last = "no attempt made"
    for attempt in range(retry.attempts):
        retry_after = None
        try:
            reply = send(request)
        except SendError as exc:
            if not exc.retryable:
                raise ServerError(str(exc)) from None
            last = str(exc)
        else:
            if 200 <= reply.status < 300:
                return reply, _json(reply)
            last = f"the server answered {reply.status}: {_excerpt(reply.content)}"
            if reply.status not in RETRY_STATUSES:
                raise ServerError(last, status=reply.status)
            retry_after = {k.lower(): v for k, v in reply.headers.items()}.get("retry-after")
        if attempt + 1 < retry.attempts:
            sleep(retry.delay(attempt, retry_after))
    raise ServerError(f"gave up after {retry.attempts} attempts: {last}")


def _json(reply: HttpReply) -> Any:
    try:
        return orjson.loads(reply.content)
    except orjson.JSONDecodeError as exc:
        raise ServerError(f"the reply is not JSON ({exc}): {_excerpt(reply.content)}") from None


def _excerpt(content: bytes, limit: int = 300) -> str:
    text = content[:limit].decode("utf-8", "replace")
    return text + ("..." if len(content) > limit else "")


def json_request(method: str, url: str, body: Any, **options: Any) -> HttpRequest:
    headers = {"Content-Type": "application/json", "Accept": "application/json", **options.pop("headers", {})}
    content = None if body is None else orjson.dumps(body)
    return HttpRequest(method, url, headers, content, **options)

"""Security headers on every response of the server: API JSON, errors, media, the docs and the UI.

One middleware, installed outermost (outside even Starlette's 500 handler), so nothing answers
without them: not a 401/413/422 sent by the guards in ``limits.py``, not a 500.

- HTML (the UI's pages): a strict Content-Security-Policy. No inline script or style is allowed
  anywhere: pages pass data to their modules in a ``<script type="application/json">`` block (never
  executed) or in data-* attributes. The html field of a task is shown in an
  ``<iframe sandbox="" srcdoc=...>``: no scripts, a unique origin, and it inherits this policy, so it
  cannot load scripts or styles from elsewhere either. HTML is never cached.
- Everything else (API JSON, errors, static files): ``default-src 'none'``; nothing it could be
  turned into may run or load anything.
- A response that sets its own policy keeps it: media (a sandbox) and the API docs (only 'self').
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: http: data:",
        "media-src 'self' https: http:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src 'self' about:",
        "child-src 'self' about:",
        "worker-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)

#: API JSON, errors and files: nothing may run, load or frame it.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

#: Uploaded media, shown as a page of its own: sandboxed (no script, a unique origin), loads nothing.
MEDIA_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"

#: The API docs page: its vendored Swagger UI, from this server only (images in its CSS are data: URIs).
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)

_CSP = b"content-security-policy"

HEADERS: dict[bytes, bytes] = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
    b"cross-origin-opener-policy": b"same-origin",
    b"permissions-policy": b"camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


class SecurityHeadersMiddleware:
    """Adds :data:`HEADERS` and a Content-Security-Policy to every HTTP response (see the module)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": secure_headers(message.get("headers", []))}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with :data:`HEADERS` and a policy by content type (unless one is set already)."""
    names = {k.lower() for k, _ in headers}
    secured = [(k, v) for k, v in headers if k.lower() not in HEADERS]
    secured.extend(HEADERS.items())
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    html = content_type.startswith(b"text/html")
    if _CSP not in names:
        secured.append((_CSP, (PAGE_CSP if html else STRICT_CSP).encode()))
    if html and b"cache-control" not in names:
        secured.append((b"cache-control", b"no-store"))
    return secured

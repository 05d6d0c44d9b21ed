"""The network guard: every URL truthset fetches or posts to on a user's behalf goes through here.

A URL import or a webhook names a URL; without a guard it could reach what only the server can
(``http://127.0.0.1:5432``, the cloud metadata service at ``169.254.169.254``, an admin page on the
office network). So, for every request and every redirect hop:

- only ``http`` and ``https``;
- the host is resolved once here, and every address it resolves to must pass the rules (loopback,
  private, link-local, multicast, reserved, unspecified and other non-global addresses are refused,
  IPv4 and IPv6 alike, and an IPv4 address inside an IPv6 one, ``::ffff:127.0.0.1``, is checked as
  the IPv4 address it carries) unless the settings allow it (``outbound_allow_private``, or the
  ``outbound_allow`` list of hosts and networks);
- the connection goes to the address that was checked (the URL is rewritten to it, with the
  ``Host`` header and the TLS server name set to the real host, so the certificate is still
  checked against the host name): a DNS answer that changes between the check and the connect
  (DNS rebinding) cannot send the request elsewhere;
- redirects are followed here, each hop checked again, at most ``outbound_max_redirects``;
- the body is streamed and the request stops past ``max_bytes``; connect, read and total times are
  bounded; proxies from the environment are ignored (a proxy would connect on our behalf to an
  address we never checked).

Why ours: httpx has no hook between resolving and connecting, and the SSRF-filter packages we know
(advocate, for requests) are unmaintained; the rules themselves are the standard library's
``ipaddress`` properties.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from urllib.parse import urljoin

import httpx

from truthset.config import Settings
from truthset.errors import InvalidInput

__all__ = [
    "FetchFailed",
    "Fetched",
    "Guard",
    "OutboundRefused",
    "Resolver",
    "check_url",
    "fetch_image",
    "request",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port) -> addresses``; tests pass their own (the default asks the system's DNS).
Resolver = Callable[[str, int], list[str]]

#: Image formats a URL import accepts (as Pillow names them), and the content type each is stored as.
IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


class OutboundRefused(InvalidInput):
    """The URL, or a redirect, names something the guard refuses: a scheme, or an address by a rule."""

    code = "url_refused"


class FetchFailed(InvalidInput):
    """The request was allowed but did not succeed: connection, time or size limit, bad content."""

    code = "fetch_failed"


@dataclass(frozen=True)
class Guard:
    """The rules and limits, usually from :class:`~truthset.config.Settings` (:meth:`from_settings`)."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0
    max_redirects: int = 5
    max_bytes: int = 50 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Guard:
        networks, hosts = [], set()
        for entry in settings.outbound_allow_list:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        options: dict[str, Any] = {
            "allow_private": settings.outbound_allow_private,
            "allowed_networks": tuple(networks),
            "allowed_hosts": frozenset(hosts),
            "connect_timeout": settings.outbound_connect_timeout_seconds,
            "read_timeout": settings.outbound_read_timeout_seconds,
            "total_timeout": settings.outbound_total_timeout_seconds,
            "max_redirects": settings.outbound_max_redirects,
            "max_bytes": settings.outbound_max_bytes,
        }
        return cls(**{**options, **overrides})


# --- the rules -------------------------------------------------------------------------------------

#: (rule, test) in the order an error names them; an address failing any is refused.
_RULES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("private", lambda ip: ip.is_private),
    ("reserved", lambda ip: ip.is_reserved),
    ("not globally reachable", lambda ip: not ip.is_global),  # shared (CGNAT), benchmarking, NAT64...
)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped ``::ffff:a.b.c.d``, 6to4, Teredo), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    return ip.teredo[1] if ip.teredo is not None else None


def refused_by(ip: IPAddress) -> str | None:
    """The first rule that refuses ``ip`` (an IPv4 address inside an IPv6 one is judged as itself)."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        rule = refused_by(inner)
        return f"{rule} (IPv4 {inner} inside IPv6)" if rule else None
    return next((name for name, test in _RULES if test(ip)), None)


def _check_address(guard: Guard, host: str, ip: IPAddress) -> None:
    if guard.allow_private or host in guard.allowed_hosts:
        return
    inner = _embedded_ipv4(ip)
    if any(ip in network or (inner is not None and inner in network) for network in guard.allowed_networks):
        return
    rule = refused_by(ip)
    if rule is not None:
        where = host if host == str(ip) else f"{host} ({ip})"
        raise OutboundRefused(
            f"url: {where} is a {rule} address; outbound requests to it are refused "
            "(allow it with TRUTHSET_OUTBOUND_ALLOW or TRUTHSET_OUTBOUND_ALLOW_PRIVATE)",
            details={"field": "url", "host": host, "address": str(ip), "rule": rule.split(" (")[0]},
        )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system's resolver gives for ``host`` (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# --- checking a URL --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: httpx.URL
    host: str
    address: IPAddress

    def pinned(self) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """The URL rewritten to the checked address, its ``Host`` header and the TLS server name."""
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address is bracketed
        host_header = host if self.url.port is None else f"{host}:{self.url.port}"
        extensions = {"sni_hostname": self.host} if self.url.scheme == "https" else {}
        return self.url.copy_with(host=str(self.address)), {"Host": host_header}, extensions


def check_url(url: str | httpx.URL, guard: Guard, resolver: Resolver | None = None) -> Target:
    """Resolve ``url``'s host and check every address; raise :class:`OutboundRefused` naming the rule."""
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OutboundRefused(f"url: not a valid URL ({exc})", details={"field": "url"}) from None
    if parsed.scheme not in ("http", "https"):
        raise OutboundRefused(
            f"url: the scheme must be http or https, not {parsed.scheme or 'none'!r}",
            details={"field": "url", "rule": "scheme"},
        )
    host = parsed.host.lower().rstrip(".")
    if not host:
        raise OutboundRefused("url: names no host", details={"field": "url"})
    if parsed.userinfo:
        raise OutboundRefused("url: must not carry a user name or password", details={"field": "url"})
    addresses = _resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80), resolver)
    for address in addresses:  # all of them: the system could connect to any
        _check_address(guard, host, address)
    return Target(parsed, host, addresses[0])


def _resolve(host: str, port: int, resolver: Resolver | None) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = (resolver or system_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise FetchFailed(f"url: the host {host} does not resolve ({exc})", details={"field": "url"}) from None
    if not found:
        raise FetchFailed(f"url: the host {host} does not resolve", details={"field": "url"})
    return [ipaddress.ip_address(address.split("%")[0]) for address in found]


# --- requests --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str  # the last URL (after redirects), as named, not as connected to
    address: str  # the address connected to


def request(
    method: str,
    url: str,
    guard: Guard,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    follow_redirects: bool = True,
    max_bytes: int | None = None,
    resolver: Resolver | None = None,
) -> Fetched:
    """Send one request through the guard (see the module docstring); any status is returned.

    Raises :class:`OutboundRefused` (a URL or redirect the rules refuse) or :class:`FetchFailed`
    (no connection, a time limit, a body over ``max_bytes`` or ``guard.max_bytes``, too many redirects).
    """
    limit = guard.max_bytes if max_bytes is None else max_bytes
    deadline = time.monotonic() + guard.total_timeout
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for _hop in range(guard.max_redirects + 1):
            target = check_url(url, guard, resolver)
            fetched = _send(client, method, target, headers, content, limit, deadline, guard)
            location = fetched.headers.get("location")
            if not follow_redirects or fetched.status_code not in _REDIRECTS or not location:
                return fetched
            url = urljoin(str(target.url), location)
            if fetched.status_code == 303 or (fetched.status_code in (301, 302) and method == "POST"):
                method, content = "GET", None
    raise FetchFailed(f"url: more than {guard.max_redirects} redirects", details={"field": "url"})


def _send(
    client: httpx.Client,
    method: str,
    target: Target,
    headers: Mapping[str, str] | None,
    content: bytes | None,
    limit: int,
    deadline: float,
    guard: Guard,
) -> Fetched:
    pinned_url, host_header, extensions = target.pinned()
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed(f"url: took longer than {guard.total_timeout:g} s in all", details={"field": "url"})
    timeout = httpx.Timeout(min(guard.read_timeout, left), connect=min(guard.connect_timeout, left))
    built = client.build_request(
        method,
        pinned_url,
        headers={**(headers or {}), **host_header},
        content=content,
        timeout=timeout,
        extensions=extensions,
    )
    try:
        response = client.send(built, stream=True)
        try:
            body = _read_limited(response, limit, deadline, guard)
        finally:
            response.close()
    except httpx.TimeoutException as exc:
        raise FetchFailed(f"url: {target.host} timed out ({type(exc).__name__})", details={"field": "url"}) from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"url: could not reach {target.host}: {exc}", details={"field": "url"}) from None
    return Fetched(response.status_code, response.headers, body, str(target.url), str(target.address))


def _read_limited(response: httpx.Response, limit: int, deadline: float, guard: Guard) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise FetchFailed(f"url: the body is {declared} bytes, more than the {limit} allowed", details={"field": "url"})
    body = bytearray()
    for chunk in response.iter_bytes(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise FetchFailed(f"url: the body is more than the {limit} bytes allowed", details={"field": "url"})
        if time.monotonic() > deadline:
            raise FetchFailed(f"url: took longer than {guard.total_timeout:g} s in all", details={"field": "url"})
    return bytes(body)


# --- images ----------------------------------------------------------------------------------------


def fetch_image(
    url: str, settings: Settings, *, resolver: Resolver | None = None, guard: Guard | None = None
) -> tuple[bytes, str, int, int]:
    """GET an image through the guard: ``(bytes, content_type, width, height)``.

    The content type is what Pillow decoded (one of :data:`IMAGE_TYPES`), not what the server
    claimed; the image is decoded in full (a truncated or corrupt file is refused), at most
    ``max_image_pixels`` pixels (a decompression bomb is refused before it is decoded).
    """
    from PIL import Image, UnidentifiedImageError  # imported on use: only URL imports need Pillow

    guard = guard or Guard.from_settings(settings, max_bytes=settings.max_upload_bytes)
    fetched = request("GET", url, guard, headers={"Accept": "image/*"}, resolver=resolver)
    if not 200 <= fetched.status_code < 300:
        raise FetchFailed(f"url: the server answered {fetched.status_code}", details={"field": "url"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(fetched.content)) as image:
                image_format, (width, height) = image.format, image.size
                if image_format not in IMAGE_TYPES:
                    raise FetchFailed(
                        f"url: {image_format} images are not accepted (accepted: {', '.join(IMAGE_TYPES)})",
                        details={"field": "url"},
                    )
                if width * height > settings.max_image_pixels:
                    raise FetchFailed(
                        f"url: the image has {width}x{height} pixels, more than the "
                        f"{settings.max_image_pixels} allowed",
                        details={"field": "url"},
                    )
                image.load()  # decodes every pixel: a truncated or corrupt file fails here
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FetchFailed(f"url: not an image Pillow can read ({exc})", details={"field": "url"}) from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's errors for a damaged file
        raise FetchFailed(f"url: the image is damaged ({exc})", details={"field": "url"}) from None
    return fetched.content, IMAGE_TYPES[image_format], width, height

"""The network guard: which addresses it refuses and why, redirects, pinning, size and time limits,
what the settings allow, and ``fetch_image`` decoding with Pillow. A real HTTP server on 127.0.0.1
answers (tests/receiver.py); nothing leaves this machine."""

from __future__ import annotations

import ipaddress
import random
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from receiver import Reply, running
from truthset.config import Settings
from truthset.services import netguard
from truthset.services.netguard import FetchFailed, Guard, OutboundRefused, check_url, fetch_image, refused_by, request

LOCAL = Guard(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not globally reachable"),  # carrier-grade NAT
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (IPv4 127.0.0.1 inside IPv6)"),
        ("::ffff:10.0.0.1", "private (IPv4 10.0.0.1 inside IPv6)"),
        ("2002:7f00:1::", "loopback (IPv4 127.0.0.1 inside IPv6)"),  # 6to4
    ],
)
def test_non_public_addresses_are_refused_by_a_named_rule(address: str, rule: str) -> None:
    assert refused_by(ipaddress.ip_address(address)) == rule
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(OutboundRefused) as caught:
        check_url(f"http://{host}:8080/hook", Guard())
    shown = str(ipaddress.ip_address(address))  # Python writes ::ffff:127.0.0.1 as ::ffff:7f00:1
    assert caught.value.details["address"] == shown
    assert caught.value.details["rule"] == rule.split(" (")[0]
    assert rule.split(" (")[0] in caught.value.message and shown in caught.value.message


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refused_by(ipaddress.ip_address(address)) is None
    host = f"[{address}]" if ":" in address else address
    assert check_url(f"https://{host}/x", Guard()).address == ipaddress.ip_address(address)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com", "//x/y"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(OutboundRefused, match="scheme must be http or https"):
        check_url(url, Guard())


def test_a_url_with_credentials_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="user name or password"):
        check_url("https://user:secret@8.8.8.8/", Guard())


def test_a_name_is_refused_if_any_of_its_addresses_is() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["8.8.8.8", "10.0.0.7"]

    with pytest.raises(OutboundRefused) as caught:
        check_url("https://mixed.example/", Guard(), resolver)
    assert caught.value.details == {"field": "url", "host": "mixed.example", "address": "10.0.0.7", "rule": "private"}
    assert "mixed.example (10.0.0.7) is a private address" in caught.value.message


def test_localhost_by_name_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="loopback"):
        check_url("http://localhost:9/", Guard())


def test_a_host_that_does_not_resolve_is_a_clear_error() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(FetchFailed, match="does not resolve"):
        check_url("https://nowhere.invalid/", Guard(), resolver)


def test_settings_allow_networks_hosts_or_everything() -> None:
    settings = Settings(outbound_allow="127.0.0.1/32,hooks.internal")
    guard = Guard.from_settings(settings)
    assert str(check_url("http://127.0.0.1:1/", guard).address) == "127.0.0.1"
    assert str(check_url("http://hooks.internal/", guard, lambda h, p: ["10.9.9.9"]).address) == "10.9.9.9"
    with pytest.raises(OutboundRefused, match="loopback"):
        check_url("http://127.0.0.2/", guard)
    everything = Guard.from_settings(Settings(outbound_allow_private=True))
    assert str(check_url("http://[fe80::1]/", everything).address) == "fe80::1"
    with pytest.raises(ValueError, match="not a CIDR network"):
        Settings(outbound_allow="10.0.0.0/99")


def test_a_refused_request_never_connects() -> None:
    with running() as receiver:
        with pytest.raises(OutboundRefused, match="loopback"):
            request("GET", receiver.url, Guard())
        assert receiver.requests == []


# --- requests through a real server ----------------------------------------------------------------


def test_the_connection_goes_to_the_checked_address_with_the_real_host_header() -> None:
    """Pinning: the name is resolved once per hop, and the request carries the name, not the address."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a rebinding DNS: a private address the second time
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    with running() as receiver:
        fetched = request("GET", f"http://hooks.test:{receiver.port}/path?q=1", LOCAL, resolver=rebinding)
        [seen] = receiver.wait_for(1)
    assert fetched.status_code == 200 and fetched.content == b"ok" and fetched.address == "127.0.0.1"
    assert calls == ["hooks.test"]
    assert seen.headers["host"] == f"hooks.test:{receiver.port}"
    assert seen.path == "/path?q=1"


def test_redirects_are_followed_and_each_hop_is_checked() -> None:
    def answer(req, n):  # type: ignore[no-untyped-def]
        if req.path == "/start":
            return Reply(302, b"", {"Location": "/next"})
        if req.path == "/next":
            return Reply(307, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        return Reply(200, b"end")

    with running(answer) as receiver:
        with pytest.raises(OutboundRefused) as caught:
            request("GET", f"{receiver.url}/start", LOCAL)
        assert [r.path for r in receiver.requests] == ["/start", "/next"]
    assert caught.value.details["rule"] == "link-local"
    assert caught.value.details["address"] == "169.254.169.254"


def test_the_pinned_request_names_the_host_as_the_url_does() -> None:
    url, headers, extensions = check_url("https://[2606:4700:4700::1111]:8443/x", Guard()).pinned()
    assert (str(url), headers) == ("https://[2606:4700:4700::1111]:8443/x", {"Host": "[2606:4700:4700::1111]:8443"})
    url, headers, extensions = check_url("https://hooks.test/x", Guard(), lambda h, p: ["8.8.8.8"]).pinned()
    assert (str(url), headers) == ("https://8.8.8.8/x", {"Host": "hooks.test"})
    assert extensions == {"sni_hostname": "hooks.test"}  # the certificate is checked against the name


def test_a_redirect_within_the_rules_is_followed_but_not_for_ever() -> None:
    def answer(req, n):  # type: ignore[no-untyped-def]
        return Reply(302, b"", {"Location": f"/hop{n}"}) if n <= 3 else Reply(200, b"there")

    with running(answer) as receiver:
        assert request("GET", f"{receiver.url}/", LOCAL).content == b"there"
    with running(lambda req, n: Reply(302, b"", {"Location": "/again"})) as receiver:
        with pytest.raises(FetchFailed, match="more than 2 redirects"):
            request("GET", f"{receiver.url}/", Guard(**{**LOCAL.__dict__, "max_redirects": 2}))
        assert len(receiver.requests) == 3


def test_a_post_is_not_redirected_when_told_not_to() -> None:
    with running(lambda req, n: Reply(301, b"", {"Location": "/elsewhere"})) as receiver:
        fetched = request("POST", receiver.url, LOCAL, content=b"{}", follow_redirects=False)
        assert fetched.status_code == 301 and len(receiver.requests) == 1


def test_the_body_stops_at_the_size_limit() -> None:
    big = b"x" * 300_000
    streamed = Reply(200, big, content_length=False)  # no length: read until the limit
    with running(lambda req, n: streamed) as receiver, pytest.raises(FetchFailed, match="more than the 100000 bytes"):
        request("GET", receiver.url, LOCAL, max_bytes=100_000)
    with running(lambda req, n: Reply(200, big)) as receiver:  # a declared length: refused before reading
        with pytest.raises(FetchFailed, match="300000 bytes, more than the 100000"):
            request("GET", receiver.url, LOCAL, max_bytes=100_000)
        assert request("GET", receiver.url, LOCAL, max_bytes=300_000).content == big


def test_a_server_that_stops_answering_hits_the_read_limit() -> None:
    with running(lambda req, n: Reply(200, b"never", hold_before_body=True)) as receiver:
        guard = Guard(**{**LOCAL.__dict__, "read_timeout": 0.2})
        with pytest.raises(FetchFailed, match="timed out"):
            request("GET", receiver.url, guard)


def test_a_closed_port_is_a_clear_error(tmp_path: Path) -> None:
    with running() as receiver:
        port = receiver.port
    with pytest.raises(FetchFailed, match=r"could not reach 127\.0\.0\.1"):
        request("GET", f"http://127.0.0.1:{port}/", LOCAL)


def test_proxies_from_the_environment_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:3128")
    with running() as receiver:
        assert request("GET", receiver.url, LOCAL).content == b"ok"


# --- fetch_image ----------------------------------------------------------------------------------


def _image(kind: str, size: tuple[int, int] = (7, 5)) -> bytes:
    out = BytesIO()
    noise = random.Random(7).randbytes(size[0] * size[1] * 3)  # noise: the file is as big as its pixels
    Image.frombytes("RGB", size, noise).save(out, format=kind)
    return out.getvalue()


ALLOW_LOCAL = Settings(outbound_allow="127.0.0.1")


def test_fetch_image_decodes_and_reports_type_and_size() -> None:
    png, jpeg = _image("PNG"), _image("JPEG", (16, 9))

    def answer(req, n):  # type: ignore[no-untyped-def]
        # the JPEG claims to be a PNG: the decoded type is what counts
        return Reply(200, png if req.path == "/a.png" else jpeg, {"Content-Type": "image/png"})

    with running(answer) as receiver:
        assert fetch_image(f"{receiver.url}/a.png", ALLOW_LOCAL) == (png, "image/png", 7, 5)
        assert fetch_image(f"{receiver.url}/b.png", ALLOW_LOCAL) == (jpeg, "image/jpeg", 16, 9)
        assert receiver.requests[0].headers["accept"] == "image/*"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>not an image</html>", "not an image Pillow can read"),
        (_image("PNG", (64, 64))[:-40], "damaged"),
    ],
)
def test_fetch_image_refuses_what_does_not_decode(body: bytes, message: str) -> None:
    reply = Reply(200, body, {"Content-Type": "image/png"})
    with running(lambda req, n: reply) as receiver, pytest.raises(FetchFailed, match=message):
        fetch_image(receiver.url, ALLOW_LOCAL)


def test_fetch_image_limits_pixels_bytes_and_status() -> None:
    image = _image("PNG", (40, 40))
    with running(lambda req, n: Reply(200, image)) as receiver:
        with pytest.raises(FetchFailed, match="40x40 pixels, more than the 1000"):
            fetch_image(receiver.url, Settings(outbound_allow="127.0.0.1", max_image_pixels=1000))
        with pytest.raises(FetchFailed, match="more than the 1024 allowed"):
            fetch_image(receiver.url, Settings(outbound_allow="127.0.0.1", max_upload_bytes=1024))
    with running(lambda req, n: Reply(404, b"gone")) as receiver, pytest.raises(FetchFailed, match="answered 404"):
        fetch_image(receiver.url, ALLOW_LOCAL)


def test_fetch_image_goes_through_the_guard() -> None:
    with running(lambda req, n: Reply(200, _image("PNG"))) as receiver:
        with pytest.raises(OutboundRefused, match="loopback"):
            fetch_image(receiver.url, Settings())
        assert receiver.requests == []
    assert netguard.IMAGE_TYPES["PNG"] == "image/png"

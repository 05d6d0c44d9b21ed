"""Security headers on every kind of response, and the API docs served from this server only.

Pages get the UI's strict policy; API JSON (and every error, including those the guards in
``api/limits.py`` send before the app runs, and a 500) gets ``default-src 'none'``; media a
sandbox; the docs page a policy of 'self' only, and it references no other origin.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from conftest import run_async
from truthset.api.headers import DOCS_CSP, HEADERS, MEDIA_CSP, PAGE_CSP, STRICT_CSP
from truthset.config import Settings

from .helpers import API, PNG, Api, Org, assert_error


def assert_secure(response: httpx.Response, csp: str) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name.decode()) == value.decode(), (response.request.url, name)
    assert response.headers.get("content-security-policy") == csp, response.request.url
    assert "frame-ancestors 'none'" in csp


def test_api_json_pages_static_files_and_openapi(api: Api, org: Org) -> None:
    assert_secure(api.get(f"{API}/me", auth=org.owner), STRICT_CSP)
    assert_secure(api.get("/healthz"), STRICT_CSP)
    assert_secure(api.get(f"{API}/openapi.json"), STRICT_CSP)
    assert_secure(api.get("/login"), PAGE_CSP)
    assert_secure(api.get("/static/app.css"), STRICT_CSP)


def test_errors_from_the_app_and_from_the_guards(make_api: Callable[..., Api], org: Org, settings: Settings) -> None:
    api = make_api(settings.model_copy(update={"max_body_bytes": 2048}))
    cases = [
        (api.get(f"{API}/tasks/{'0' * 24}", auth=org.owner), 404),  # the app's error handler
        (api.post(f"{API}/projects", auth=org.owner, json={"name": 1}), 422),  # validation
        (api.get(f"{API}/me"), 401),  # AnonymousGuardMiddleware, before the app
        (api.get(f"{API}/me", params={"x": "a\x00b"}, auth=org.owner), 422),  # NulGuardMiddleware
        (api.post(f"{API}/projects", auth=org.owner, content=b"x" * 4096), 413),  # BodyLimitMiddleware
        (api.get("/no/such/path"), 404),  # the router
    ]
    for response, status in cases:
        assert_error(response, status)
        assert_secure(response, STRICT_CSP)


def test_a_500_carries_the_headers_too(api: Api) -> None:
    app: FastAPI = api.app

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug, on purpose")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/boom")

    response = run_async(call)
    assert_error(response, 500, "internal_error")
    assert_secure(response, STRICT_CSP)


def test_media_keeps_a_sandbox(api: Api, org: Org) -> None:
    uploaded = api.post(f"{API}/media", auth=org.owner, files={"file": ("dot.png", PNG, "image/png")})
    assert_secure(uploaded, STRICT_CSP)
    image = api.get(f"{API}/media/{uploaded.json()['id']}", auth=org.owner)
    assert image.status_code == 200 and image.content == PNG
    assert_secure(image, MEDIA_CSP)
    assert "sandbox" in MEDIA_CSP.split("; ") and image.headers["x-content-type-options"] == "nosniff"


def test_the_docs_page_loads_only_vendored_files_from_this_server(api: Api) -> None:
    page = api.get(f"{API}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_secure(page, DOCS_CSP)
    assert "'unsafe" not in DOCS_CSP and "http" not in DOCS_CSP
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert len(scripts) == 2 and all('src="' in attrs and not body.strip() for attrs, body in scripts), scripts
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references and all(ref.startswith("/") and not ref.startswith("//") for ref in references)
    assert "http:" not in page.text and "https:" not in page.text
    for ref in references:
        asset = api.get(ref)
        assert asset.status_code == 200, ref
        assert_secure(asset, STRICT_CSP)
    assert "swagger-ui-bundle.js" in page.text and "/static/api-docs.js" in page.text


@pytest.mark.parametrize("name", ["LICENSE", "NOTICE", "VERSION"])
def test_the_vendored_swagger_ui_keeps_its_license_and_pin(api: Api, name: str) -> None:
    response = api.get(f"/static/vendor/swagger-ui/{name}")
    assert response.status_code == 200 and response.text.strip()

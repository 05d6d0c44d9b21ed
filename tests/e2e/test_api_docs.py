"""The API docs page renders in Chromium from vendored files, under its strict policy, from nowhere else."""

from __future__ import annotations

from .support import Server, Tab


def test_the_api_docs_render_without_other_origins_or_policy_violations(tab: Tab, server: Server) -> None:
    from playwright.sync_api import expect

    page = tab.page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto("/api/v1/docs")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("truthset")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/me").first).to_be_visible()
    page.locator(".opblock-summary-path", has_text="/api/v1/me").first.click()  # an operation opens
    expect(page.locator(".opblock.is-open").first).to_be_visible()
    assert requested and all(url.startswith(server.url + "/") for url in requested), requested
    assert tab.script_errors() == []  # a policy violation is a console error ("Refused to ...")

"""The API's interactive documentation: Swagger UI, vendored (scripts/vendor.sh), from this server only.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script, which a strict
Content-Security-Policy forbids; this page loads the vendored files and starts Swagger UI from a
module file (``ui/static/api-docs.js``) that reads the OpenAPI address from a data attribute.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from truthset.api.headers import DOCS_CSP

router = APIRouter(include_in_schema=False)

VENDOR = "/static/vendor/swagger-ui"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>truthset API</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{vendor}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{vendor}/swagger-ui-bundle.js"></script>
<script type="module" src="/static/api-docs.js"></script>
</body>
</html>
"""


@router.get("/docs")
def api_docs(request: Request) -> HTMLResponse:
    page = _PAGE.format(vendor=VENDOR, openapi_url=request.app.openapi_url)
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

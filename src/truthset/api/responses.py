"""JSON bodies of the annotation loop's endpoints, serialised without a second thread hop.

FastAPI validates and serialises what a plain ``def`` endpoint returns in the thread pool, so each
call costs two hops between the event loop and a worker thread, which for ``next`` and ``submit``
cost more CPU than their database work. Those endpoints are ``async``: they hand the service call
to ``Database.submit`` (the SQLite writer thread, or a pool on PostgreSQL) and serialise the result
here, on the loop, with the same model that their ``response_model`` names (so OpenAPI documents
it and the body is what FastAPI would send).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from fastapi import Response
from pydantic import TypeAdapter


@functools.cache
def _adapter(model: Any) -> TypeAdapter:
    return TypeAdapter(model)


def model_response(
    model: Any, value: Any, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``value`` validated against ``model`` and rendered as its JSON body."""
    adapter = _adapter(model)
    body = adapter.dump_json(adapter.validate_python(value))
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")

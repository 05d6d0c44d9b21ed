"""truthset: a self-hosted data engine for AI training data.

The public entry point for integrators is :class:`truthset.Client` (the Python SDK).
It is imported lazily so that ``import truthset.quality`` stays free of httpx.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Client", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Client":
        from truthset.client import Client

        return Client
    raise AttributeError(name)

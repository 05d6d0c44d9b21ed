"""The layer order of DESIGN.md: each layer imports only the layers above it.

Two checks per layer: import it (and every module in it) in a fresh interpreter and look at
``sys.modules``; and read every ``import`` statement in its source, function-level ones included,
since a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import truthset

SRC = Path(truthset.__file__).parent

# Top to bottom. Modules on one line are one layer (they may import each other).
LAYERS: list[tuple[str, ...]] = [
    ("truthset.quality",),
    ("truthset.questions",),
    ("truthset.learners",),  # models that answer questions; pure: no database, no web framework
    ("truthset.domain", "truthset.errors"),
    ("truthset.schemas",),
    ("truthset.config",),
    ("truthset.storage",),
    ("truthset.services",),
    ("truthset.jobs",),
    ("truthset.api",),
    ("truthset.compat",),
    ("truthset.ui",),
    ("truthset.client",),
    ("truthset.demo",),  # the demo project's data, for `truthset demo`
    ("truthset.cli",),
]
RANK = {name: rank for rank, group in enumerate(LAYERS) for name in group}

# Never, whatever the order says.
FORBIDDEN_LAYERS = {"truthset.client": {"truthset.storage", "truthset.services", "truthset.api"}}
_SERVER = {"sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn"}
FORBIDDEN_PACKAGES = {
    "truthset.quality": _SERVER | {"httpx", "pydantic"},
    "truthset.questions": _SERVER | {"httpx"},
    "truthset.learners": _SERVER,  # httpx (model servers, LLMs), scikit-learn and skops allowed
    "truthset.domain": _SERVER | {"httpx"},
    "truthset.errors": _SERVER | {"httpx"},
    "truthset.schemas": _SERVER | {"httpx"},
    "truthset.client": _SERVER,
}

_PROBE = """
import importlib, json, pkgutil, sys
name = sys.argv[1]
try:
    module = importlib.import_module(name)
except ModuleNotFoundError as exc:
    if exc.name == name:
        print(json.dumps({"missing": True}))
        raise SystemExit(0)
    raise
for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
    if not info.name.startswith("truthset.storage.migrations"):  # alembic scripts run on import
        importlib.import_module(info.name)
print(json.dumps({"missing": False, "modules": sorted(sys.modules)}))
"""


def layer_of(module: str) -> str | None:
    """The layer a ``truthset`` module belongs to (None for the package root itself)."""
    matches = [name for name in RANK if module == name or module.startswith(name + ".")]
    return max(matches, key=len) if matches else None


def _violations(layer: str, imported: set[str]) -> list[str]:
    bad = []
    for module in sorted(imported):
        target = layer_of(module)
        if target is None:
            continue
        if RANK[target] > RANK[layer]:
            bad.append(f"{module} (layer {target} is below {layer})")
        elif target in FORBIDDEN_LAYERS.get(layer, ()):
            bad.append(f"{module} ({layer} must never import {target})")
    return bad


LAYER_NAMES = [name for group in LAYERS for name in group]


@pytest.mark.parametrize("layer", LAYER_NAMES)
def test_importing_a_layer_loads_nothing_below_it(layer: str) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, layer], capture_output=True, text=True, timeout=120, check=False
    )
    assert probe.returncode == 0, f"importing {layer} failed:\n{probe.stderr}"
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    if result["missing"]:
        pytest.skip(f"{layer} does not exist yet")
    loaded = set(result["modules"])
    assert _violations(layer, {m for m in loaded if m.startswith("truthset.")}) == []
    packages = {m.split(".")[0] for m in loaded}
    assert sorted(packages & FORBIDDEN_PACKAGES.get(layer, set())) == []


def _source_files(layer: str) -> list[Path]:
    relative = Path(*layer.split(".")[1:])
    if (SRC / relative).is_dir():
        return sorted(p for p in (SRC / relative).rglob("*.py") if "migrations" not in p.parts)
    single = SRC / relative.with_suffix(".py")
    return [single] if single.exists() else []


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, at any depth, with relative imports resolved."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from truthset import demo`
    return found


@pytest.mark.parametrize("layer", LAYER_NAMES)
def test_no_import_statement_reaches_a_layer_below(layer: str) -> None:
    files = _source_files(layer)
    if not files:
        pytest.skip(f"{layer} does not exist yet")
    bad: list[str] = []
    for path in files:
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = _imports(path, module)
        own = {m for m in imported if m.startswith("truthset.") and layer_of(m) is not None}
        bad.extend(f"{path.relative_to(SRC)}: {v}" for v in _violations(layer, own))
        roots = {m.split(".")[0] for m in imported if m}
        bad.extend(
            f"{path.relative_to(SRC)}: imports {p}" for p in sorted(roots & FORBIDDEN_PACKAGES.get(layer, set()))
        )
    assert bad == []


def test_every_module_has_a_layer() -> None:
    tops = {p.stem for p in SRC.glob("*.py") if p.name != "__init__.py"}
    tops |= {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert sorted(f"truthset.{name}" for name in tops if f"truthset.{name}" not in RANK) == []


def test_the_layer_check_catches_a_violation() -> None:
    assert _violations("truthset.storage", {"truthset.services.queue"}) != []
    assert _violations("truthset.client", {"truthset.storage.tables"}) != []
    assert _violations("truthset.api", {"truthset.services.queue", "truthset.domain"}) == []
    assert layer_of("truthset.storage.repositories") == "truthset.storage"
    assert layer_of("truthset") is None

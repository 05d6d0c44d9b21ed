"""CSV input/output and the method registry behind ``truthset aggregate`` (no pandas needed)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CATEGORICAL_METHODS",
    "DEFAULT_METHOD",
    "DEFAULT_NUMERIC_METHOD",
    "METHODS",
    "NUMERIC_METHODS",
    "make_aggregator",
    "read_answers_csv",
    "read_truth_csv",
    "write_results_csv",
]

ProgressCallback = Callable[[int], None]  # called with the number of bytes read since the last call

DEFAULT_METHOD = "ds"
# Numbers: the plain mean. BiasVarianceModel estimates its priors from the answers, but a worker's
# offset from the consensus is not always an offset from the truth (on the emotion ratings it is
# not: MAE 12.90 vs 12.02), so it is opt-in (see docs/quality.md).
DEFAULT_NUMERIC_METHOD = "mean"


def _registry() -> dict[str, Callable[[], Any]]:
    from ._dawid_skene import DawidSkene, OneCoinDawidSkene
    from ._glad import GLAD
    from ._mace import MACE
    from ._numeric import BiasVarianceModel, Mean, Median
    from ._voting import MajorityVote, Wawa

    return {
        "mv": MajorityVote,
        "wawa": Wawa,
        "ds": DawidSkene,
        "ods": OneCoinDawidSkene,
        "glad": GLAD,
        "mace": MACE,
        "mean": Mean,
        "median": Median,
        "bias": BiasVarianceModel,
    }


CATEGORICAL_METHODS = ("mv", "wawa", "ds", "ods", "glad", "mace")
NUMERIC_METHODS = ("mean", "median", "bias")
METHODS = CATEGORICAL_METHODS + NUMERIC_METHODS


def make_aggregator(method: str = DEFAULT_METHOD) -> Any:
    """A fresh estimator for a method name (see ``METHODS``)."""
    registry = _registry()
    if method not in registry:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return registry[method]()


def _typed(values: list[str]) -> np.ndarray:
    """Integers if every value is an integer, else floats if all parse, else the strings."""
    for kind in (np.int64, np.float64):
        try:
            return np.array(values, dtype=kind)
        except ValueError:
            continue
    return np.array(values, dtype=object)


def read_answers_csv(
    path: str | Path, progress: ProgressCallback | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a crowd CSV with header ``task,worker,label`` into three arrays (extra columns ignored).

    ``progress`` is called with byte counts as the file is read, for a progress bar.
    """
    tasks: list[str] = []
    workers: list[str] = []
    labels: list[str] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        try:
            ti, wi, li = (header.index(c) for c in ("task", "worker", "label"))
        except ValueError:
            raise ValueError(f"{path}: header must contain task, worker, label (got {header})") from None
        done = 0
        for row in reader:
            if not row:
                continue
            tasks.append(row[ti])
            workers.append(row[wi])
            labels.append(row[li])
            if progress is not None and len(tasks) % 50_000 == 0:
                pos = handle.buffer.tell() if hasattr(handle, "buffer") else 0
                progress(pos - done)
                done = pos
    return _typed(tasks), _typed(workers), _typed(labels)


def read_truth_csv(path: str | Path) -> dict[Any, Any]:
    """Read ``task,label`` truth into a dict, typed like :func:`read_answers_csv` output."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r]
    if rows and not {"task", "label"} <= set(rows[0]):
        raise ValueError(f"{path}: header must contain task, label")
    tasks = _typed([r["task"] for r in rows]).tolist()
    labels = _typed([r["label"] for r in rows]).tolist()
    return dict(zip(tasks, labels, strict=True))


def write_results_csv(path: str | Path, labels: dict[Any, Any], probas: dict[Any, dict[Any, float]] | None) -> int:
    """Write ``task,label,confidence`` (confidence = probability of the chosen label, if known)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["task", "label", "confidence"])
        for task, label in labels.items():
            conf = "" if probas is None else f"{probas[task][label]:.6f}"
            out.writerow([task, label, conf])
    return len(labels)

"""Calibration metrics and the accuracy/ECE evaluation used by the CLI and the benchmark."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Evaluation", "evaluate", "expected_calibration_error"]


def expected_calibration_error(
    confidence: np.ndarray | list[float], correct: np.ndarray | list[bool], n_bins: int = 10
) -> float:
    """Top-label expected calibration error with equal-width confidence bins.

    ``ECE = sum_b (n_b / n) * |accuracy_b - mean confidence_b|``: the average gap between how sure
    the aggregate says it is and how often it is right.

    Reference: M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining Well Calibrated
    Probabilities Using Bayesian Binning", AAAI 2015, https://doi.org/10.1609/aaai.v29i1.9602; and
    C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return 0.0
    # bin b holds confidences in (b/n, (b+1)/n]; a confidence of exactly 1 goes to the last bin
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    gap = np.bincount(bins, weights=hit, minlength=n_bins) - np.bincount(bins, weights=conf, minlength=n_bins)
    return float(np.abs(gap).sum() / conf.size)


@dataclass(frozen=True)
class Evaluation:
    """Accuracy, calibration and coverage of an aggregate against known truth."""

    n_evaluated: int  # tasks with both an aggregate and a truth label
    accuracy: float
    ece: float | None  # None when no probabilities were given
    mean_confidence: float | None
    mae: float | None = None  # numeric aggregates only

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n_evaluated,
            "accuracy": self.accuracy,
            "ece": self.ece,
            "mean_confidence": self.mean_confidence,
            "mae": self.mae,
        }


def _to_dict(mapping: Any) -> dict[Any, Any]:
    """Accept a dict or a pandas Series / DataFrame (without importing pandas)."""
    if isinstance(mapping, Mapping):
        return dict(mapping)
    if hasattr(mapping, "to_dict") and hasattr(mapping, "columns"):
        return mapping.to_dict(orient="index")
    if hasattr(mapping, "to_dict"):
        return mapping.to_dict()
    raise TypeError("expected a dict or a pandas object")


def evaluate(labels: Any, probas: Any | None, truth: Any) -> Evaluation:
    """Compare aggregated ``labels`` (task -> label) and ``probas`` (task -> {label: p}) to ``truth``.

    Only tasks present in both the aggregate and the truth count. Labels are compared as strings
    when the types differ (a CSV truth file gives strings; an aggregate may give integers).
    """
    lab, tru = _to_dict(labels), _to_dict(truth)
    tasks = [t for t in lab if t in tru]
    if not tasks:
        return Evaluation(0, float("nan"), None, None)
    pred = [lab[t] for t in tasks]
    gold = [tru[t] for t in tasks]
    correct = np.array([_same(p, g) for p, g in zip(pred, gold, strict=True)])
    ece = conf_mean = None
    if probas is not None:
        prob = _to_dict(probas)
        conf = np.array([prob[t][lab[t]] for t in tasks], dtype=np.float64)
        ece = expected_calibration_error(conf, correct)
        conf_mean = float(conf.mean())
    return Evaluation(len(tasks), float(correct.mean()), ece, conf_mean)


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def evaluate_numeric(values: Any, truth: Any) -> Evaluation:
    """Mean absolute error (and exact-match rate) of numeric aggregates against numeric truth."""
    val, tru = _to_dict(values), _to_dict(truth)
    tasks = [t for t in val if t in tru]
    if not tasks:
        return Evaluation(0, float("nan"), None, None, None)
    pred = np.array([float(val[t]) for t in tasks])
    gold = np.array([float(tru[t]) for t in tasks])
    return Evaluation(len(tasks), float((pred == gold).mean()), None, None, float(np.abs(pred - gold).mean()))

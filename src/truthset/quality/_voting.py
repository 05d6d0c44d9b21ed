"""Majority vote and Wawa (worker agreement with aggregate)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import CategoricalAggregator, agreement_with, normalize_rows, vote_table
from ._input import Answers

__all__ = ["MajorityVote", "Wawa", "vote_shares"]


def vote_shares(labels: Sequence[Any], weights: Sequence[float] | None = None) -> dict[Any, float]:
    """Majority vote for ONE task: each label's (weighted) share of the votes, in sorted label order.

    The same shares as ``MajorityVote().fit(...).probas_`` for that task, and the winner is the
    first maximum of this dict (ties to the smallest label, as there). For incremental use: the
    platform completes a task the moment its last answer arrives, with a handful of answers, where
    NumPy's per-call overhead would cost a hundred times the arithmetic.
    """
    totals: dict[Any, float] = {}
    for index, label in enumerate(labels):
        totals[label] = totals.get(label, 0.0) + (1.0 if weights is None else float(weights[index]))
    grand = sum(totals.values())
    ordered = sorted(totals)
    if grand <= 0:
        return {label: 1.0 / len(ordered) for label in ordered}
    return {label: totals[label] / grand for label in ordered}


class MajorityVote(CategoricalAggregator):
    """Majority vote: the most frequent label per task; ``probas_`` are vote shares.

    Ties break deterministically towards the smallest label in sorted order. ``skills_`` is each
    worker's agreement with the majority label.

    The classic baseline of crowdsourcing; see e.g. V. C. Raykar et al., "Learning From Crowds",
    Journal of Machine Learning Research 11, 2010 (section 1), and crowd-kit's ``MajorityVote``.
    """

    def _fit(self, data: Answers) -> np.ndarray:
        probas = normalize_rows(vote_table(data))
        self.skills_ = self._worker_series(data, agreement_with(data, probas.argmax(axis=1)), "skill")
        return probas


class Wawa(CategoricalAggregator):
    """Worker Agreement With Aggregate: majority vote weighted by each worker's agreement with it.

    First a plain majority vote; each worker's skill is the share of their answers that agree with it;
    then a vote weighted by those skills. ``probas_`` are the weighted vote shares.

    Reference: the "Wawa" heuristic from Appen / CrowdFlower, as implemented in crowd-kit:
    D. Ustalov, N. Pavlichenko, B. Tseitlin, "Learning from Crowds with Crowd-Kit",
    Journal of Open Source Software 9(96), 6227, 2024, https://doi.org/10.21105/joss.06227.
    """

    def _fit(self, data: Answers) -> np.ndarray:
        mv = vote_table(data).argmax(axis=1) if data.n_tasks else np.zeros(0, dtype=np.int64)
        skills = agreement_with(data, mv)
        probas = normalize_rows(vote_table(data, weights=skills[data.worker]))
        self.skills_ = self._worker_series(data, skills, "skill")
        return probas

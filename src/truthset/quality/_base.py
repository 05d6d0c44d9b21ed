"""Shared pieces of the categorical aggregators: vote tables and the fitted-state contract."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ._input import Answers
from ._output import as_labels, as_probas, as_vector

__all__ = ["CategoricalAggregator", "agreement_with", "normalize_rows", "vote_table"]


def vote_table(data: Answers, weights: np.ndarray | None = None) -> np.ndarray:
    """Task x label matrix of (weighted) vote counts, in one ``np.bincount``."""
    n_t, n_l = data.n_tasks, data.n_labels
    flat = np.bincount(data.task * n_l + data.label, weights=weights, minlength=n_t * n_l)
    return flat.reshape(n_t, n_l).astype(np.float64, copy=False)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to one; an all-zero row becomes uniform (no evidence, no preference)."""
    totals = matrix.sum(axis=1, keepdims=True)
    n_cols = matrix.shape[1] if matrix.ndim == 2 else 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(totals > 0, matrix / np.where(totals > 0, totals, 1.0), 1.0 / max(n_cols, 1))
    return out


class CategoricalAggregator:
    """Base of the categorical estimators: ``fit(answers)`` returns self, fitted state ends in ``_``.

    Subclasses implement ``_fit(data) -> probas`` on integer codes; this class turns the task x label
    probability matrix into ``labels_`` (argmax; ties go to the smallest label because labels are
    sorted and ``argmax`` returns the first maximum) and ``probas_``.
    """

    skills_: Any

    def fit(self, answers: Any) -> CategoricalAggregator:
        from ._input import factorize_answers

        data = factorize_answers(answers)
        probas = self._fit(data)
        self._set_results(data, probas)
        return self

    def fit_predict(self, answers: Any) -> Any:
        return self.fit(answers).labels_

    def fit_predict_proba(self, answers: Any) -> Any:
        return self.fit(answers).probas_

    def _fit(self, data: Answers) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_results(self, data: Answers, probas: np.ndarray) -> None:
        self.data_ = data
        self.probas_array_ = probas
        self.label_codes_ = probas.argmax(axis=1) if probas.size else np.zeros(0, dtype=np.int64)
        for name in ("labels_", "probas_"):  # a refit of the same estimator builds them afresh
            self.__dict__.pop(name, None)

    # ``labels_`` and ``probas_`` (keyed by the caller's task ids, in the caller's container) are
    # built on first use: the platform's refits read only the arrays, and building a dict of every
    # task's probabilities was a tenth of a Dawid-Skene fit.
    @cached_property
    def labels_(self) -> Any:
        return as_labels(self.data_.labels[self.label_codes_], self.data_.tasks, self.data_.frame)

    @cached_property
    def probas_(self) -> Any:
        return as_probas(self.probas_array_, self.data_.tasks, self.data_.labels, self.data_.frame)

    def _worker_series(self, data: Answers, values: np.ndarray, name: str) -> Any:
        return as_vector(values, data.workers, data.frame, index_name="worker", name=name)


def agreement_with(data: Answers, label_codes: np.ndarray) -> np.ndarray:
    """Per worker: the share of their answers equal to the aggregate label of the task."""
    hits = (data.label == label_codes[data.task]).astype(np.float64)
    n = np.bincount(data.worker, minlength=data.n_workers)
    agree = np.bincount(data.worker, weights=hits, minlength=data.n_workers)
    return np.divide(agree, n, out=np.zeros(data.n_workers), where=n > 0)

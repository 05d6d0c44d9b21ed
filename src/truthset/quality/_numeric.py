"""Numeric and ordinal aggregation: mean, median, and a worker bias/variance model."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._input import Answers, AnswersLike, factorize_answers
from ._output import as_labels, as_vector

__all__ = ["BiasVarianceModel", "Mean", "Median", "numeric_answers"]


def numeric_answers(answers: AnswersLike) -> tuple[Answers, np.ndarray]:
    """Factorise tasks and workers; return the answers' numeric values as float64 (N,)."""
    data = factorize_answers(answers)
    values = np.asarray(data.labels, dtype=np.float64)[data.label]
    return data, values


class _NumericAggregator:
    """``fit(answers)`` with numeric labels; ``labels_`` maps task -> aggregated number."""

    labels_: Any

    def fit(self, answers: AnswersLike) -> _NumericAggregator:
        data, values = numeric_answers(answers)
        self.data_ = data
        self.values_array_ = self._aggregate(data, values)
        self.labels_ = as_labels(self.values_array_, data.tasks, data.frame)
        return self

    def fit_predict(self, answers: AnswersLike) -> Any:
        return self.fit(answers).labels_

    def _aggregate(self, data: Answers, values: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class Mean(_NumericAggregator):
    """Arithmetic mean of the answers per task (the least-squares estimate; sensitive to outliers)."""

    def _aggregate(self, data: Answers, values: np.ndarray) -> np.ndarray:
        n = np.bincount(data.task, minlength=data.n_tasks)
        return np.bincount(data.task, weights=values, minlength=data.n_tasks) / np.maximum(n, 1)


class Median(_NumericAggregator):
    """Median of the answers per task (robust to a minority of outliers); for ordinal ratings
    the lower median is taken so the result is always a value someone actually gave."""

    def __init__(self, ordinal: bool = False) -> None:
        self.ordinal = ordinal

    def _aggregate(self, data: Answers, values: np.ndarray) -> np.ndarray:
        order = np.lexsort((values, data.task))  # sort by task, then value: one pass, no loop
        sorted_vals = values[order]
        n = np.bincount(data.task, minlength=data.n_tasks)
        start = np.concatenate([[0], np.cumsum(n)[:-1]])
        lo = start + (n - 1) // 2
        hi = start + n // 2
        if self.ordinal:
            return sorted_vals[lo]
        return 0.5 * (sorted_vals[lo] + sorted_vals[hi])


class BiasVarianceModel(_NumericAggregator):
    """Each worker reports ``truth_j + bias_w + noise`` with noise variance ``sigma_w^2``.

    Alternating maximum a-posteriori updates: the task value is the precision-weighted mean of
    de-biased answers; a worker's bias is the shrunken mean of their residuals; their variance the
    shrunken mean squared residual (an inverse-gamma prior worth ``prior_strength`` answers at the
    pooled variance), so a worker with three answers keeps an average variance. Bias is centred to
    mean zero over workers (the model only identifies relative bias).

    References: V. C. Raykar, S. Yu, L. H. Zhao, G. H. Valadez, C. Florin, L. Bogoni and L. Moy,
    "Learning From Crowds", JMLR 11:1297-1322, 2010 (section 3, regression with annotator
    precision); P. Welinder and P. Perona, "Online crowdsourcing: rating annotators and obtaining
    cost-effective labels", CVPR Workshops 2010, https://doi.org/10.1109/CVPRW.2010.5543189.

    Fitted: ``labels_`` (task values), ``stderr_`` (posterior standard error per task),
    ``bias_`` and ``variance_`` per worker, ``skills_`` (precision, 1 / variance).
    """

    def __init__(self, n_iter: int = 50, tol: float = 1e-8, prior_strength: float = 3.0) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.prior_strength = prior_strength

    def _aggregate(self, data: Answers, values: np.ndarray) -> np.ndarray:
        t, w = data.task, data.worker
        n_w = np.bincount(w, minlength=data.n_workers)
        est = Median()._aggregate(data, values)  # robust start
        bias = np.zeros(data.n_workers)
        var = np.full(data.n_workers, max(float(np.var(values - est[t])), 1e-9))
        s = self.prior_strength
        for _ in range(self.n_iter):
            prec = 1.0 / var[w]
            num = np.bincount(t, weights=(values - bias[w]) * prec, minlength=data.n_tasks)
            den = np.bincount(t, weights=prec, minlength=data.n_tasks)
            new_est = num / den
            resid = values - new_est[t]
            bias = np.bincount(w, weights=resid, minlength=data.n_workers) / (n_w + s)  # shrunk to 0
            bias -= bias.mean()
            sq = (resid - bias[w]) ** 2
            pooled = max(float(sq.mean()), 1e-9)
            var = (np.bincount(w, weights=sq, minlength=data.n_workers) + s * pooled) / (n_w + s)
            done = np.max(np.abs(new_est - est)) < self.tol
            est = new_est
            if done:
                break
        self.bias_ = as_vector(bias, data.workers, data.frame, "worker", "bias")
        self.variance_ = as_vector(var, data.workers, data.frame, "worker", "variance")
        self.skills_ = as_vector(1.0 / var, data.workers, data.frame, "worker", "skill")
        self.stderr_ = as_labels(1.0 / np.sqrt(den), data.tasks, data.frame, name="stderr")
        return est

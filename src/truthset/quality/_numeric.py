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
    de-biased answers; a worker's bias and variance are posterior estimates under priors whose
    strength is *estimated from the answers* (empirical Bayes), not a constant:

    * bias ``b_w ~ N(0, tau^2)``: the posterior mean is ``sum(residuals) / (n_w + sigma_w^2 / tau^2)``,
      with ``tau^2`` the between-worker variance of the raw mean residuals minus their sampling
      variance (the method-of-moments random-effects estimate of R. DerSimonian and N. Laird,
      "Meta-analysis in clinical trials", Controlled Clinical Trials 7(3), 1986,
      https://doi.org/10.1016/0197-2456(86)90046-2). If workers' offsets are no larger than chance,
      ``tau^2 = 0`` and no bias is applied.
    * variance ``sigma_w^2 ~ scaled-inverse-chi^2(d0, s0^2)``: the posterior is
      ``(d0 s0^2 + n_w s_w^2) / (d0 + n_w)``, with ``(d0, s0^2)`` maximising the marginal likelihood
      of the workers' mean squared residuals (``s_w^2 / s0^2 ~ F(n_w, d0)``), the moderated
      variances of G. K. Smyth, "Linear models and empirical Bayes methods for assessing
      differential expression in microarray experiments", Stat. Appl. Genet. Mol. Biol. 3(1), 2004,
      https://doi.org/10.2202/1544-6115.1027. If workers are equally noisy, ``d0`` is large and
      the model weighs them equally.

    With both priors collapsed (no bias, equal noise) the model is the plain mean; it departs from
    the mean only as far as the answers show workers differing. Pass ``prior_strength`` to use a
    fixed strength (pseudo-answers, for both priors) instead. Bias is centred to mean zero over
    workers (the model only identifies relative bias). Note that an answer-based fit cannot tell a
    worker's additive bias from a different use of the scale: on the emotion ratings of Snow et al.
    (2008) workers' offsets from the consensus are real but do not transfer to the expert truth,
    and ``Mean`` is more accurate there; ``Mean`` is therefore the numeric default
    (see docs/quality.md).

    References: V. C. Raykar, S. Yu, L. H. Zhao, G. H. Valadez, C. Florin, L. Bogoni and L. Moy,
    "Learning From Crowds", JMLR 11:1297-1322, 2010 (section 3, regression with annotator
    precision); P. Welinder and P. Perona, "Online crowdsourcing: rating annotators and obtaining
    cost-effective labels", CVPR Workshops 2010, https://doi.org/10.1109/CVPRW.2010.5543189.

    Fitted: ``labels_`` (task values), ``stderr_`` (posterior standard error per task),
    ``bias_`` and ``variance_`` per worker, ``skills_`` (precision, 1 / variance),
    ``bias_prior_variance_`` (``tau^2``), ``variance_prior_`` (``(d0, s0^2)``).
    """

    def __init__(self, n_iter: int = 50, tol: float = 1e-8, prior_strength: float | None = None) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.prior_strength = prior_strength

    def _aggregate(self, data: Answers, values: np.ndarray) -> np.ndarray:
        t, w = data.task, data.worker
        n_w = np.bincount(w, minlength=data.n_workers).astype(np.float64)
        est = Median()._aggregate(data, values)  # robust start
        bias = np.zeros(data.n_workers)
        var = np.full(data.n_workers, max(float(np.var(values - est[t])), 1e-9))
        fixed = self.prior_strength
        tau2, d0, s02 = np.inf, np.inf, float(var[0])
        den = np.ones(data.n_tasks)
        for _ in range(self.n_iter):
            prec = 1.0 / var[w]
            num = np.bincount(t, weights=(values - bias[w]) * prec, minlength=data.n_tasks)
            den = np.bincount(t, weights=prec, minlength=data.n_tasks)
            new_est = num / den
            resid = values - new_est[t]
            raw_sum = np.bincount(w, weights=resid, minlength=data.n_workers)
            if fixed is not None:
                bias = raw_sum / (n_w + fixed)
            else:
                tau2 = _between_worker_variance(raw_sum / n_w, var / n_w)
                bias = raw_sum / (n_w + var / tau2) if tau2 > 0 else np.zeros(data.n_workers)
            bias -= bias.mean()
            sq = np.bincount(w, weights=(resid - bias[w]) ** 2, minlength=data.n_workers)
            if fixed is not None:
                pooled = max(float(sq.sum() / n_w.sum()), 1e-9)
                d0, s02 = fixed, pooled
            else:
                d0, s02 = _variance_prior(np.maximum(sq / n_w, 1e-12), n_w)
            var = (sq + d0 * s02) / (n_w + d0) if np.isfinite(d0) else np.full(data.n_workers, s02)
            done = np.max(np.abs(new_est - est)) < self.tol
            est = new_est
            if done:
                break
        self.bias_prior_variance_ = tau2
        self.variance_prior_ = (d0, s02)
        self.bias_ = as_vector(bias, data.workers, data.frame, "worker", "bias")
        self.variance_ = as_vector(var, data.workers, data.frame, "worker", "variance")
        self.skills_ = as_vector(1.0 / var, data.workers, data.frame, "worker", "skill")
        self.stderr_ = as_labels(1.0 / np.sqrt(den), data.tasks, data.frame, name="stderr")
        return est


def _between_worker_variance(raw_bias: np.ndarray, sampling_var: np.ndarray) -> float:
    """Method-of-moments variance of the true worker offsets (DerSimonian-Laird, unweighted form):
    the spread of the raw mean residuals beyond what their own sampling noise explains."""
    if len(raw_bias) < 2:
        return 0.0
    spread = float(np.var(raw_bias, ddof=1))
    return max(spread - float(sampling_var.mean()), 0.0)


def _variance_prior(s2: np.ndarray, dof: np.ndarray) -> tuple[float, float]:
    """Type-II maximum likelihood ``(d0, s0^2)`` of a scaled-inverse-chi^2 prior on worker variances.

    Given ``sigma_w^2``, ``s_w^2`` is ``sigma_w^2 chi^2_{n_w} / n_w``; integrating ``sigma_w^2`` out
    gives ``s_w^2 / s0^2 ~ F(n_w, d0)`` (Smyth 2004). ``d0 = inf`` (returned when the evidence keeps
    growing with ``d0``) means every worker has the pooled variance ``s0^2``.
    """
    from scipy.optimize import minimize
    from scipy.stats import f as f_dist

    pooled = float((s2 * dof).sum() / dof.sum())
    if len(s2) < 2:
        return np.inf, pooled

    def neg_marginal(theta: np.ndarray) -> float:
        d0, s02 = np.exp(theta)
        return -float((f_dist.logpdf(s2 / s02, dof, d0) - np.log(s02)).sum())

    start = np.array([np.log(10.0), np.log(pooled)])
    bounds = [(np.log(0.1), np.log(1e6)), (np.log(pooled) - 5, np.log(pooled) + 5)]
    res = minimize(neg_marginal, start, method="L-BFGS-B", bounds=bounds)
    d0, s02 = np.exp(res.x)
    if d0 >= 0.999e6:  # no evidence that workers differ in noise
        return np.inf, pooled
    return float(d0), float(s02)

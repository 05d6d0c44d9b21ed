"""Dawid-Skene (full confusion matrices), one-coin Dawid-Skene, and the single-task posterior."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import CategoricalAggregator, normalize_rows, vote_table
from ._em import (
    Design,
    EMResult,
    StrengthDraws,
    StrengthHyperprior,
    anchored_class_priors,
    average_worker,
    calibration_sample,
    class_priors,
    corroborated,
    fit_confusion_em,
    fit_prior_strength,
    fit_temperature,
    loo_confusion_log_errors,
    loo_log_prior,
    moment_class_priors,
    take_rows,
    tempered,
)
from ._input import Answers
from ._output import as_matrix

__all__ = ["DawidSkene", "OneCoinDawidSkene", "task_posterior"]

# Bounds for the empirical-Bayes Dirichlet concentration, in pseudo-answers per true class.
_STRENGTH_BOUNDS = (0.5, 1e4)
# The strength is re-estimated each M-step until it has changed by under 0.1% twice in a row; after
# that the EM posteriors it depends on move too little to matter, and it is kept.
_STRENGTH_SETTLED_LOG_CHANGE = 1e-3
_STRENGTH_SETTLED_STEPS = 2
#: The strength's hyperprior (center, sd of log s): see StrengthHyperprior in _em.py. Without it, on
#: small crowds (6 workers, 120 tasks x 3) the strength drifted to its upper bound from half of the
#: starts: a random clicker weighed as much as a careful worker, and the class prior then flipped 2-1
#: votes, below majority vote. 5 is about the strength fitted to the true labels of the synthetic
#: crowds of benchmarks/quality/synthetic.py; an sd of 1.5 lets the evidence move it by a factor of
#: 4.5 per sd, and with many workers the evidence outweighs it.
_STRENGTH_HYPERPRIOR = (5.0, 1.5)


def task_posterior(
    worker_ids: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    errors: np.ndarray,
    priors: np.ndarray,
    temperature: float = 1.0,
) -> np.ndarray:
    """Posterior over the true class of ONE task from its answers and fitted worker models.

    ``worker_ids`` and ``labels`` are integer codes (rows of ``errors`` and label columns),
    ``errors`` is the (W, K, L) array of confusion matrices ``P(answer l | true k, worker w)``
    (``DawidSkene().fit(...).errors_array_``) and ``priors`` the (K,) class priors. This is the
    Dawid-Skene E-step for a single task, for incremental use: when an answer arrives the platform
    re-scores that task in microseconds without refitting. For a task that was not part of the fit it
    is also the honest, out-of-sample posterior. ``temperature`` is the fitted ``temperature_``:
    with it the result matches ``probas_`` (calibrated); with 1.0 the raw EM posterior.
    """
    w = np.asarray(worker_ids, dtype=np.intp)
    lab = np.asarray(labels, dtype=np.intp)
    scores = temperature * (np.log(priors) + np.log(errors[w, :, lab]).sum(axis=0))
    scores = np.exp(scores - scores.max())
    return scores / scores.sum()


class _ConfusionModel(CategoricalAggregator):
    """Shared fit of the EM confusion-matrix models; subclasses supply the M-step projection."""

    def __init__(self, n_iter: int = 100, tol: float = 1e-6, patience: int = 3, calibrate: bool = True) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.patience = patience
        self.calibrate = calibrate

    def _project(  # pragma: no cover
        self, counts: np.ndarray, pooled: np.ndarray, posteriors: np.ndarray
    ) -> np.ndarray:
        raise NotImplementedError

    def _prepare(self, data: Answers) -> None:
        """Per-fit state the projection needs (none by default)."""

    def _count_design(self, data: Answers, design: Design) -> Design:
        """The answers whose expected counts make the confusion matrices (all of them by default)."""
        return design

    def _priors_of(self, data: Answers, init: np.ndarray) -> Any:
        """How the M-step estimates class priors from posteriors (None: the engine's Laplace mean)."""
        return None

    def _fit(self, data: Answers) -> np.ndarray:
        self._s_prev: float | None = None
        self.temperature_ = 1.0
        if len(data) == 0:
            return self._empty(data)
        design = Design.from_answers(data)
        self._prepare(data)
        init = normalize_rows(vote_table(data))
        res = fit_confusion_em(
            design,
            init,
            self._project,
            n_iter=self.n_iter,
            tol=self.tol,
            patience=self.patience,
            count_design=self._count_design(data, design),
            priors_of=self._priors_of(data, init),
        )
        self._store(data, res)
        if not self.calibrate:
            return res.posteriors
        self.temperature_ = self._fit_temperature(data, res)
        if self.temperature_ == 1.0:
            return res.posteriors
        # The temperature reshapes the full-data logits, so labels_ (their argmax) do not move.
        return tempered(res.logits, self.temperature_)

    def _fit_temperature(self, data: Answers, res: EMResult) -> float:
        """One temperature learnt by cross-fitting on a fixed-seed sample of tasks.

        Worker models are refitted without each sampled task (exact leave-one-task-out counts), the
        sampled tasks' answers are scored with them, and :func:`fit_temperature` picks the exponent
        under which those cross-fitted posteriors best predict each held-out answer. The exponent
        is then applied to the full-data logits: calibration reshapes ``probas_`` only, it never
        changes a label.
        """
        sample = calibration_sample(data)
        if len(sample) == 0:
            return 1.0
        per_answer = self._loo_log_errors(sample, res)
        return fit_temperature(sample, per_answer, loo_log_prior(res.count_posteriors, sample.task))

    def _loo_log_errors(self, data: Answers, res: EMResult) -> np.ndarray:
        """(N, K) log P(answer | class) under the worker's model refitted without the answer's task.

        ``data`` may be a subset of the fitted answers (original codes, whole tasks).
        """
        return loo_confusion_log_errors(data, res.count_posteriors, res.counts, self.prior_counts_)

    def _empty(self, data: Answers) -> np.ndarray:
        n_w, n_l = data.n_workers, data.n_labels
        self._store(
            data,
            EMResult(np.zeros((0, n_l)), np.zeros((n_w, n_l, n_l)), np.ones(n_l), np.zeros((n_w, n_l, n_l)), 0, []),
        )
        return np.zeros((0, n_l))

    def _store(self, data: Answers, res: EMResult) -> None:
        self.errors_array_ = res.errors
        self.priors_array_ = res.priors
        self.n_iter_ = res.n_iter
        self.loss_history_ = res.log_likelihood
        self.em_posteriors_ = res.posteriors  # the uncalibrated, in-sample EM posteriors
        self.errors_ = _errors_output(res.errors, data)
        self.priors_ = dict(zip(data.labels.tolist(), res.priors.tolist(), strict=True))
        if data.frame:
            import pandas as pd

            self.priors_ = pd.Series(res.priors, index=pd.Index(data.labels, name="label"), name="prior")
        skills = np.einsum("k,wkk->w", res.priors, res.errors) if res.errors.size else np.zeros(0)
        self.skills_ = self._worker_series(data, skills, "skill")
        self._worker_codes = {w: i for i, w in enumerate(data.workers.tolist())}
        self._label_codes = {lab: i for i, lab in enumerate(data.labels.tolist())}

    def task_posterior(self, workers: Sequence[Any], labels: Sequence[Any]) -> dict[Any, float]:
        """Posterior of one task given raw worker ids and labels, from the fitted worker models.

        An unknown worker is scored with the average worker's confusion matrix (the prior mean).
        The fitted temperature is applied, so for a fitted task this equals its ``probas_`` row.
        """
        errors = self.errors_array_
        codes = [self._worker_codes.get(w, -1) for w in workers]
        if -1 in codes:  # append the average worker as an extra row for unseen workers
            errors = np.concatenate([errors, self.mean_errors_[None]], axis=0)
            codes = [c if c >= 0 else len(errors) - 1 for c in codes]
        lab = [self._label_codes[x] for x in labels]
        post = task_posterior(codes, lab, errors, self.priors_array_, self.temperature_)
        return dict(zip(self._label_codes, post.tolist(), strict=True))


def _errors_output(errors: np.ndarray, data: Answers) -> Any:
    """crowd-kit's layout: rows (worker, observed label), columns true label; or nested dicts."""
    n_w, n_k, n_l = errors.shape
    if data.frame:
        import pandas as pd

        index = pd.MultiIndex.from_product([data.workers, data.labels], names=["worker", "label"])
        flat = errors.transpose(0, 2, 1).reshape(n_w * n_l, n_k)
        return as_matrix(flat, np.arange(n_w * n_l), data.labels, True, "row", "true").set_axis(index, axis=0)
    labels = data.labels.tolist()
    return {
        w: {t: dict(zip(labels, row, strict=True)) for t, row in zip(labels, mat, strict=True)}
        for w, mat in zip(data.workers.tolist(), errors.tolist(), strict=True)
    }


class DawidSkene(_ConfusionModel):
    """Dawid-Skene: each worker has a full confusion matrix; EM over latent true labels.

    Reference: A. P. Dawid and A. M. Skene, "Maximum Likelihood Estimation of Observer Error-Rates
    Using the EM Algorithm", Journal of the Royal Statistical Society, Series C (Applied Statistics)
    28(1):20-28, 1979, https://doi.org/10.2307/2346806.

    Departures from the 1979 maximum-likelihood version, for calibrated probabilities:

    * each worker's confusion rows get a Dirichlet prior centred on the pooled (average worker)
      confusion matrix, with a concentration fitted by type-II maximum likelihood every M-step
      (T. Minka, "Estimating a Dirichlet distribution", 2000; the hierarchical view of
      H.-C. Kim and Z. Ghahramani, "Bayesian Classifier Combination", AISTATS 2012). The evidence
      is averaged over draws of the true labels from the current posteriors (a Monte Carlo
      variational EM step for the strength), not evaluated at the expected counts, which are
      biased towards "all workers alike" on sparse crowds; see ``StrengthDraws`` in ``_em.py``. A
      worker with three answers is thus close to the average worker, not a confident 0/1 matrix.
      Pass ``prior_strength`` to fix the concentration instead.
    * few answers per task (where dynamic overlap lives) get three safeguards, each because EM
      without it flipped answers on subsampled real crowds (``benchmarks/quality/subsample.py``):
      only *corroborated* answers (tasks someone else answered too) make the confusion counts, a
      lone answer says nothing about its worker's errors (``_count_design``); the average worker
      has a "workers beat chance" hyperprior (``average_worker`` in ``_em.py``: two pseudo-answers
      per class of a worker who knows the answer half the time, else guesses with the class
      frequencies; MACE's generative story, Hovy et al. 2013), so with no corroborated answers at
      all every label is its answer; and the class priors have a Dirichlet prior centred on a
      one-coin method-of-moments estimate (``moment_class_priors``, ``anchored_class_priors``),
      because with two answers per task EM's class priors are not identified and slid towards
      one class. A worker with no corroborated answers is scored as ``mean_errors_``.
    * ``adaptive=True`` is for answers collected adaptively, where whether a task got another answer
      depended on the answers it had (dynamic overlap). Then the data are missing at random given
      what was observed, so the full likelihood is still the right one to maximise, but any estimate
      from a subset chosen by the number of answers is biased (D. B. Rubin, "Inference and Missing
      Data", Biometrika 63(3):581-592, 1976, https://doi.org/10.1093/biomet/63.3.581): the first and
      third safeguards, which select corroborated tasks and pairs, are off, and every answer counts.
      Replayed through dynamic overlap (``benchmarks/replay``) they fed back on themselves: a lone
      minority answer was overruled, so it was never corroborated, so the next refit overruled it
      more, until every task of a 12%-positive crowd was answered negative.
    * ``labels_`` are the argmax of the full-data EM posterior. ``probas_`` are that posterior
      tempered by one exponent ``temperature_`` in (0, 1] learnt by cross-fitting (worker models
      refitted without each task of a fixed-seed sample, scored on held-out answers; see
      ``_fit_temperature``). Tempering the same logits never changes their argmax, so calibration
      reshapes the probabilities and leaves every label alone. ``calibrate=False`` skips it;
      the untempered posteriors are always in ``em_posteriors_``.
    * convergence needs ``patience`` consecutive small changes, not one.

    Fitted: ``labels_``, ``probas_``, ``errors_`` (rows (worker, observed label), columns true
    label), ``errors_array_`` (W, K, L), ``priors_`` / ``priors_array_``, ``mean_errors_`` (K, L:
    the average worker, for unseen workers), ``skills_`` (expected accuracy per worker),
    ``prior_strength_``, ``temperature_``, ``n_iter_``. To re-score one task incrementally store
    ``errors_array_``, ``priors_array_``, ``temperature_`` (and ``mean_errors_`` for unseen
    workers) and call :func:`task_posterior` (or the method of the same name).
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-6,
        patience: int = 3,
        calibrate: bool = True,
        prior_strength: float | None = None,
        adaptive: bool = False,
    ) -> None:
        super().__init__(n_iter=n_iter, tol=tol, patience=patience, calibrate=calibrate)
        self.prior_strength = prior_strength
        self.adaptive = adaptive

    def _count_design(self, data: Answers, design: Design) -> Design:
        """Only corroborated answers (tasks someone else answered too) inform confusion matrices.

        Not with ``adaptive=True``: see the class docstring.

        The answer on a task nobody else answered is scored, but says nothing about its worker's
        errors: its posterior comes from that very answer, so counting it only confirms the worker
        (and fits each worker's answer *marginals* with their confusion rows, which is how EM on one
        answer per task drifted into flipping answers). Its likelihood depends on the confusion
        matrix only through ``sum_k prior_k e_w[k, l]``, which is not identified.
        """
        if self.adaptive:
            return design
        sub = corroborated(data)
        return design if sub is data else Design.from_answers(sub)

    def _priors_of(self, data: Answers, init: np.ndarray) -> Any:
        return None if self.adaptive else self._class_priors_of

    def _prepare(self, data: Answers) -> None:
        anchor = moment_class_priors(data)

        def class_priors_of(totals: np.ndarray, n_t: int) -> np.ndarray:
            # the engine asks once per iteration, for the posteriors the next M-step counts: the
            # projection reuses the answer for the average worker's hyperprior
            self._last_priors = anchored_class_priors(totals, n_t, anchor)
            return self._last_priors

        self._class_priors_of = class_priors_of
        counted = data if self.adaptive else corroborated(data)
        self._draws = StrengthDraws.from_answers(counted) if self.prior_strength is None else None
        # counted once per label draw, as the evidence it joins sums over the draws
        draws = len(self._draws.uniforms) if self._draws is not None else 1
        self._hyperprior = StrengthHyperprior(*_STRENGTH_HYPERPRIOR, weight=draws)
        self._s_settled = 0  # consecutive M-steps in which the estimated strength barely moved

    def _project(self, counts: np.ndarray, pooled: np.ndarray, posteriors: np.ndarray) -> np.ndarray:
        # the average worker: all workers' counts plus the "beats chance" hyperprior (see class doc)
        priors = class_priors(posteriors) if self.adaptive else self._last_priors
        pooled = average_worker(counts, priors)
        s = self.prior_strength
        if s is None and self._s_settled >= _STRENGTH_SETTLED_STEPS:
            s = self._s_prev  # settled: re-estimating it every M-step cost a fifth of the fit
        elif s is None:
            # evidence of hard counts under label draws, not of the expected counts (see StrengthDraws)
            counts_drawn = self._draws.counts(posteriors)
            s = fit_prior_strength(
                counts_drawn, pooled, _STRENGTH_BOUNDS, start=self._s_prev, hyperprior=self._hyperprior
            )
            moved = self._s_prev is None or abs(np.log(s / self._s_prev)) > _STRENGTH_SETTLED_LOG_CHANGE
            self._s_settled = 0 if moved else self._s_settled + 1
            self._s_prev = s
        self.prior_strength_ = s
        self.prior_counts_ = s * pooled
        self.mean_errors_ = pooled
        return (counts + self.prior_counts_) / (counts.sum(axis=2, keepdims=True) + s)


class OneCoinDawidSkene(_ConfusionModel):
    """One-coin Dawid-Skene: each worker is right with probability ``p_w``, else uniformly wrong.

    The confusion matrix is ``p_w`` on the diagonal and ``(1 - p_w) / (K - 1)`` elsewhere, which needs
    far fewer answers per worker than a full matrix. ``p_w`` has a Beta prior centred on the pooled
    accuracy with ``prior_strength`` pseudo-answers (default 2).

    References: A. P. Dawid and A. M. Skene, "Maximum Likelihood Estimation of Observer Error-Rates
    Using the EM Algorithm", JRSS C 28(1), 1979, https://doi.org/10.2307/2346806; the one-coin
    model as analysed by Y. Zhang, X. Chen, D. Zhou and M. I. Jordan, "Spectral Methods Meet EM: A
    Provably Optimal Algorithm for Crowdsourcing", NeurIPS 2014 / JMLR 17(102), 2016.
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-6,
        patience: int = 3,
        calibrate: bool = True,
        prior_strength: float = 2.0,
    ) -> None:
        super().__init__(n_iter=n_iter, tol=tol, patience=patience, calibrate=calibrate)
        self.prior_strength = prior_strength

    def _project(self, counts: np.ndarray, pooled: np.ndarray, posteriors: np.ndarray) -> np.ndarray:
        n_k = counts.shape[1]
        correct = np.einsum("wkk->w", counts)
        total = counts.sum(axis=(1, 2))
        mean_acc = float(np.clip(correct.sum() / max(total.sum(), 1e-12), 1e-3, 1 - 1e-3))
        s = self.prior_strength
        acc = (correct + s * mean_acc) / (total + s)
        errors = _one_coin(acc, n_k)
        self.mean_errors_ = _one_coin(np.array([mean_acc]), n_k)[0]
        self.mean_accuracy_ = mean_acc
        return errors

    def _loo_log_errors(self, data: Answers, res: EMResult) -> np.ndarray:
        """Leave-one-task-out accuracy per answer: drop the task's own expected correct mass."""
        n_k = res.counts.shape[1]
        correct = np.einsum("wkk->w", res.counts)[data.worker]
        total = res.counts.sum(axis=(1, 2))[data.worker]
        own = take_rows(res.count_posteriors, data.task)  # (N, K)
        s = self.prior_strength
        own_correct = own[np.arange(len(data)), data.label]
        acc = (correct - own_correct + s * self.mean_accuracy_) / (total - 1.0 + s)
        acc = np.clip(acc, 1e-9, 1 - 1e-9)
        out = np.repeat(np.log((1.0 - acc) / max(n_k - 1, 1))[:, None], n_k, axis=1)
        out[np.arange(len(data)), data.label] = np.log(acc)
        return out


def _one_coin(acc: np.ndarray, n_k: int) -> np.ndarray:
    off = (1.0 - acc) / max(n_k - 1, 1)
    errors = np.repeat(off[:, None, None], n_k, axis=1).repeat(n_k, axis=2)
    idx = np.arange(n_k)
    errors[:, idx, idx] = acc[:, None]
    return errors

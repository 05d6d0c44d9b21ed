"""Fitted worker models of one numeric question (a rating, a number), stored and reused like
:class:`WorkerModel` is for categorical ones.

Each worker answers ``truth + noise`` with a noise variance of their own: a careful rater's answers
weigh more than a random clicker's. A task's estimate is the precision-weighted mean of its answers,
with a standard deviation that shrinks as answers come in. Its confidence, the probability that the
truth lies within the question's tolerance of the answer given, is read from the *measured*
distribution of standardised errors, not from a normal curve: real errors are heavy-tailed (many
exact agreements, a few far off), and a normal curve states 0.99 where 0.77 is right.

Hand-written because it is the product's core (what a numeric result and its confidence are), and
no maintained library fits per-worker noise with leave-one-out residuals and a split-conformal
calibration on gold.

References: V. C. Raykar et al., "Learning From Crowds", JMLR 11, 2010 (annotator precision in
regression); G. K. Smyth, Stat. Appl. Genet. Mol. Biol. 3(1), 2004 (moderated variances); J. Lei,
M. G'Sell, A. Rinaldo, R. J. Tibshirani and L. Wasserman, "Distribution-Free Predictive Inference
for Regression", JASA 113, 2018 (split conformal prediction with normalised residuals).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NumericWorkerModel"]

#: The method name a fitted numeric model gives its results.
NUMERIC_METHOD = "worker_variance"
#: Pseudo-answers at the pooled variance added to each worker's own: a worker with few answers is
#: about average until the answers show otherwise (the moderation of Smyth 2004, with a fixed strength:
#: leave-one-out residuals are not chi-squared, so its fitted strength does not apply).
PRIOR_ANSWERS = 5.0
#: No worker's variance goes below this share of the pooled one (the moment estimate can be negative
#: for a worker who agreed more often than the others' noise allows): at most 100 times an average
#: worker's weight.
VARIANCE_FLOOR = 0.01
#: Standardised errors kept for the confidence (quantiles of all of them when there are more).
KEPT_SCORES = 2_001
ITERATIONS = 30


@dataclass(frozen=True)
class NumericWorkerModel:
    """Noise variances of known workers, the variance for others, and the measured error distribution.

    ``scores`` are sorted standardised absolute errors ``|truth - estimate| / sd`` (from gold tasks
    once calibrated on them, else from each answer against the others' estimate), ``n_scores`` how many
    they summarise; ``shared_variance`` is the error every task keeps however many answer it (crowds
    share errors; only gold can see them: until then it is assumed to be the median worker's variance),
    ``gold_tasks`` how many gold tasks measured it (0: none).
    """

    method: str
    workers: tuple[str, ...]
    variances: np.ndarray
    mean_variance: float
    scores: np.ndarray
    n_scores: int
    shared_variance: float = 0.0
    gold_tasks: int = 0
    _worker_codes: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_worker_codes", {w: i for i, w in enumerate(self.workers)})

    @classmethod
    def fit(
        cls, tasks: Sequence[str], workers: Sequence[str], values: Sequence[float], method: str = NUMERIC_METHOD
    ) -> NumericWorkerModel:
        """Fit per-worker noise from every answer of a project (raises ValueError when no task has two).

        A worker's variance is measured on leave-one-out residuals: each answer against the estimate of
        the *other* answers to its task, less that estimate's own variance. In-sample residuals would
        shrink toward zero on tasks with two or three answers, which is most of them under dynamic
        overlap.
        """
        task_codes, task_ids = _codes(tasks)
        worker_codes, worker_ids = _codes(workers)
        x = np.asarray(values, dtype=np.float64)
        n_tasks, n_workers = len(task_ids), len(worker_ids)
        if np.bincount(task_codes, minlength=n_tasks).max(initial=0) < 2:
            raise ValueError("no task has two answers: a worker's noise cannot be measured yet")
        var = np.full(n_workers, max(float(np.var(x)), 1e-12))
        pooled = float(var[0])
        for _ in range(ITERATIONS):
            residual, other_var, answer = _leave_one_out(task_codes, worker_codes, x, var, n_tasks)
            excess = residual**2 - other_var  # unbiased for the worker's variance
            count = np.bincount(worker_codes[answer], minlength=n_workers).astype(np.float64)
            total = np.bincount(worker_codes[answer], weights=excess, minlength=n_workers)
            pooled = max(float(total.sum() / count.sum()), 1e-12)
            var = np.maximum((total + PRIOR_ANSWERS * pooled) / (count + PRIOR_ANSWERS), VARIANCE_FLOOR * pooled)
        residual, other_var, answer = _leave_one_out(task_codes, worker_codes, x, var, n_tasks)
        scores = np.abs(residual) / np.sqrt(var[worker_codes[answer]] + other_var)
        kept, n = _summarised(scores)
        # a worker none of whose answers met another is not known: it counts as the pooled average
        # if a person, and a model's prediction then counts for nothing (it has earned no weight)
        measured = np.bincount(worker_codes[answer], minlength=n_workers) > 0
        worker_ids = [w for w, m in zip(worker_ids, measured, strict=True) if m]
        var = var[measured]
        # until gold measures it, the error the crowd shares is assumed as large as the median
        # worker's noise: answers alone cannot see it, and assuming none stated 0.99 for 0.77 on the
        # emotion ratings. The median, not the pooled variance, which spammers inflate (a crowd with
        # 30% of them was stated 0.39 sure where every answer was right)
        shared = float(np.median(var)) if len(var) else pooled
        return cls(method, tuple(worker_ids), var, pooled, kept, n, shared_variance=shared)

    def worker_index(self, worker_id: str) -> int | None:
        """The worker's place in ``workers`` and ``variances``, or None when the fit does not know them."""
        return self._worker_codes.get(worker_id)

    def variances_of(self, workers: Sequence[str]) -> np.ndarray:
        """Each worker's noise variance (the pooled one for workers the fit never saw)."""
        return np.array([self._variance(w) for w in workers], dtype=np.float64)

    def _variance(self, worker: str) -> float:
        code = self.worker_index(worker)
        return self.mean_variance if code is None else float(self.variances[code])

    def estimate(self, workers: Sequence[str], values: Sequence[float]) -> tuple[float, float]:
        """One task's precision-weighted mean and its standard deviation (shared error included)."""
        _precision, mean, sd = self.weigh(workers, values)
        return mean, sd

    def weigh(self, workers: Sequence[str], values: Sequence[float]) -> tuple[np.ndarray, float, float]:
        """One task's answers weighed: each answer's precision, their precision-weighted mean, and its
        standard deviation (shared error included)."""
        precision, mean, noise = self._weighted(workers, values)
        return precision, mean, float(np.sqrt(noise + self.shared_variance))

    def _weighted(self, workers: Sequence[str], values: Sequence[float]) -> tuple[np.ndarray, float, float]:
        """Each answer's precision, the precision-weighted mean, and that mean's variance from the
        answers' noise alone."""
        precision = 1.0 / self.variances_of(workers)
        total = float(precision.sum())
        return precision, float(np.dot(precision, np.asarray(values, dtype=np.float64)) / total), 1.0 / total

    def probability_within(self, value: float, mean: float, sd: float, tolerance: float) -> float:
        """P(|truth - value| <= tolerance) when truth is ``mean + sd * Z``, Z symmetric with the measured
        ``|Z|`` distribution; smoothed as Laplace's rule, so never exactly 0 or 1."""
        if sd <= 0:
            inside = float(abs(value - mean) <= tolerance)
        else:
            inside = _symmetric_cdf(self.scores, (value + tolerance - mean) / sd)
            inside -= _symmetric_cdf(self.scores, (value - tolerance - mean) / sd)
        return float((inside * self.n_scores + 1.0) / (self.n_scores + 2.0))

    def calibrated_on(
        self, tasks: Sequence[tuple[Sequence[str], Sequence[float]]], truths: Sequence[float]
    ) -> NumericWorkerModel:
        """This model with its shared error and error distribution measured on tasks whose truth is
        known (gold): split-conformal calibration with normalised residuals (Lei et al. 2018).

        The shared variance is the gold tasks' squared error beyond what their answers' noise explains
        (method of moments); the scores are their errors standardised by the resulting sd. Answers
        alone cannot see an error the crowd shares (it looks like agreement); gold can.
        """
        estimates = [self._weighted(workers, values) for workers, values in tasks]
        mean = np.array([m for _, m, _ in estimates])
        noise = np.array([v for _, _, v in estimates])
        error = np.asarray(truths, dtype=np.float64) - mean
        shared = max(float(np.mean(error**2 - noise)), 0.0)
        kept, n = _summarised(np.abs(error) / np.sqrt(noise + shared))
        return NumericWorkerModel(
            self.method, self.workers, self.variances, self.mean_variance, kept, n, shared, len(estimates)
        )

    def to_bytes(self) -> bytes:
        """An ``.npz`` archive of plain arrays (no pickles: loading never runs code), marked numeric."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            kind=np.array("numeric"),
            method=np.array(self.method),
            workers=np.array(self.workers, dtype=str),
            variances=self.variances,
            mean_variance=np.array(self.mean_variance),
            scores=self.scores,
            n_scores=np.array(self.n_scores),
            shared_variance=np.array(self.shared_variance),
            gold_tasks=np.array(self.gold_tasks),
        )
        return buffer.getvalue()

    @classmethod
    def from_archive(cls, archive: np.lib.npyio.NpzFile) -> NumericWorkerModel:
        return cls(
            str(archive["method"]),
            tuple(archive["workers"].tolist()),
            archive["variances"],
            float(archive["mean_variance"]),
            archive["scores"],
            int(archive["n_scores"]),
            float(archive["shared_variance"]),
            int(archive["gold_tasks"]),
        )


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> tuple[float, float] | float:
    """The weighted median of ``values``; a pair (the two values on either side) when exactly half
    the weight lies at or below one of them, which a single answer cannot settle (a tie)."""
    order = np.argsort(np.asarray(values, dtype=np.float64), kind="stable")
    x = np.asarray(values, dtype=np.float64)[order]
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    half = cumulative[-1] / 2
    i = int(np.searchsorted(cumulative, half * (1 - 1e-12)))
    if abs(cumulative[i] - half) <= 1e-9 * cumulative[-1] and i + 1 < len(x) and x[i + 1] != x[i]:
        return float(x[i]), float(x[i + 1])
    return float(x[i])


def _codes(ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    unique, inverse = np.unique(np.asarray(ids, dtype=object).astype(str), return_inverse=True)
    return inverse.astype(np.intp), unique.tolist()


def _leave_one_out(
    tasks: np.ndarray, workers: np.ndarray, x: np.ndarray, var: np.ndarray, n_tasks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each answer on a task with others: its residual against the precision-weighted mean of the
    others, that mean's variance, and which answers those are (a boolean mask over all answers)."""
    precision = 1.0 / var[workers]
    total = np.bincount(tasks, weights=precision, minlength=n_tasks)
    weighted = np.bincount(tasks, weights=precision * x, minlength=n_tasks)
    others = total[tasks] - precision
    answer = others > 1e-12 * total[tasks]
    mean_of_others = (weighted[tasks][answer] - precision[answer] * x[answer]) / others[answer]
    return x[answer] - mean_of_others, 1.0 / others[answer], answer


def _summarised(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Sorted scores, or ``KEPT_SCORES`` evenly spaced quantiles of them: a stored model stays small."""
    ordered = np.sort(scores)
    if len(ordered) <= KEPT_SCORES:
        return ordered, len(ordered)
    return np.quantile(ordered, np.linspace(0, 1, KEPT_SCORES)), len(ordered)


def _symmetric_cdf(scores: np.ndarray, z: float) -> float:
    """P(Z <= z) for a Z symmetric about 0 whose |Z| has the empirical distribution ``scores``."""
    if not len(scores):
        return 0.5
    below = float(np.searchsorted(scores, abs(z), side="right")) / len(scores)
    # |Z| <= |z| holds `below` of the mass, split evenly around 0
    return 0.5 + 0.5 * below if z >= 0 else 0.5 - 0.5 * below

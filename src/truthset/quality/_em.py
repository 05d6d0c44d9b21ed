"""A shared, vectorised EM engine for confusion-matrix models (Dawid-Skene and its constrained kin).

The answers become one sparse indicator matrix ``A`` (tasks x (worker, label) pairs). Then both EM
steps are a single sparse-dense product each:

* E-step: ``log p(task = k) = log prior_k + (A @ logE)[task, k]`` with ``logE[(w, l), k] = log e_w[k, l]``;
* M-step: expected counts ``C[(w, l), k] = (A.T @ T)[(w, l), k]`` where ``T`` holds task posteriors.

Models differ only in how they turn the expected counts into confusion matrices (the "M-step
projection"): full matrices, one coin per worker, MACE's spammer mixture. Everything is O(n_answers)
per iteration with no Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import digamma, gammaln

from ._input import Answers

__all__ = [
    "Design",
    "EMResult",
    "StrengthDraws",
    "anchored_class_priors",
    "average_worker",
    "calibration_sample",
    "corroborated",
    "fit_confusion_em",
    "fit_temperature",
    "loo_confusion_log_errors",
    "loo_log_prior",
    "moment_class_priors",
    "softmax_rows",
    "take_rows",
    "tempered",
]

# Answers used to fit the calibration temperature (whole tasks, drawn with a fixed seed).
CALIBRATION_ANSWERS = 100_000

# Answers (at most) whose tasks' labels are drawn to fit the Dirichlet strength, and the total number
# of drawn answers per M-step (spread over several draws on small inputs); see StrengthDraws.
STRENGTH_ANSWERS = 100_000
STRENGTH_DRAWN_ANSWERS = 100_000
STRENGTH_MAX_DRAWS = 16

# An M-step projection: (counts (W, K, L), pooled prior (K, L), the posteriors (T, K) the counts came
# from) -> confusion matrices e (W, K, L).
Projection = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Design:
    """Sparse design matrices of the answers, built once per fit."""

    A: sp.csr_matrix  # tasks x (worker * L + label), entries = number of such answers
    # Its transpose as a CSC *view* of A (no copy). The M-step product then walks the tasks in
    # order, reading the posteriors sequentially and scattering into the small (W * L, K) result,
    # which stays in cache; a CSR transpose would instead gather posterior rows at random (~5x
    # slower at 10^6 answers). Both sum each output row in ascending task order: identical results.
    At: sp.csc_matrix
    n_workers: int
    n_labels: int

    @classmethod
    def from_answers(cls, data: Answers) -> Design:
        n_l = data.n_labels
        cols = data.worker * n_l + data.label
        ones = np.ones(len(data), dtype=np.float64)
        shape = (data.n_tasks, data.n_workers * n_l)
        A = sp.csr_matrix((ones, (data.task, cols)), shape=shape)
        return cls(A=A, At=A.T, n_workers=data.n_workers, n_labels=n_l)

    def counts(self, posteriors: np.ndarray) -> np.ndarray:
        """Expected confusion counts C[w, k, l] = sum over w's answers l of P(task = k)."""
        flat = self.At @ posteriors  # (W * L, K)
        return flat.reshape(self.n_workers, self.n_labels, -1).transpose(0, 2, 1)

    def log_likelihood(self, log_errors: np.ndarray) -> np.ndarray:
        """Per task and class: sum over the task's answers of log e_w[k, l]."""
        table = log_errors.transpose(0, 2, 1).reshape(self.n_workers * self.n_labels, -1)
        return np.asarray(self.A @ table)


def softmax_rows(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise softmax and log-normaliser of an (n, K) array.

    Works on the transposed (K, n) copy: numpy reduces a short inner axis slowly, while reducing
    across K contiguous rows is a plain element-wise loop (about 5x faster for n = 10^6, K = 4).
    """
    cols = np.array(scores.T, dtype=np.float64, order="C")
    top = cols.max(axis=0)
    cols -= top
    np.exp(cols, out=cols)
    total = cols.sum(axis=0)
    cols /= total
    return cols.T, np.log(total) + top


def pooled_confusion(counts: np.ndarray) -> np.ndarray:
    """The average worker's confusion matrix: all workers' counts pooled, rows normalised."""
    n_l = counts.shape[2]
    pooled = counts.sum(axis=0) + 1.0 / n_l  # a tiny uniform pseudo-count keeps empty rows defined
    return pooled / pooled.sum(axis=1, keepdims=True)


@dataclass
class StrengthDraws:
    """Draws of the true labels of a fixed task sample: the data for the Dirichlet strength's evidence.

    The strength ``s`` of the Dirichlet prior on confusion rows is chosen by type-II maximum
    likelihood. Plugging the *expected* counts of the E-step into the Dirichlet-multinomial evidence
    (``log DM(E[C_w]; s)``) is biased towards "all workers alike": where posteriors are uncertain,
    the soft counts smear every worker's rows towards the pooled matrix, the evidence then prefers a
    huge ``s``, and EM stays at that fixed point (every worker scored as the average worker). On
    sparse crowds (3 answers per task, 10-15 per worker) it ran to the upper bound and gave up to
    15% more wrong labels than the same model with a moderate ``s``.

    The variational EM step for ``s`` maximises the expectation instead, ``E_q[log DM(C_w(z); s)]``
    over the current task posteriors ``q(z)``: the confusion matrices are integrated out (collapsed)
    and ``log p(answers, z | s)`` is averaged over the labels, which is a lower bound on the marginal
    likelihood of the answers for any ``q`` (H.-C. Kim and Z. Ghahramani, "Bayesian Classifier
    Combination", AISTATS 2012, treat the hyper-parameters of this hierarchy the same way). The
    expectation is a Monte Carlo average over label draws, as in Monte Carlo EM (G. C. G. Wei and
    M. A. Tanner, "A Monte Carlo Implementation of the EM Algorithm and the Poor Man's Data
    Augmentation Algorithms", JASA 85(411):699-704, 1990, https://doi.org/10.1080/01621459.1990.10474930).
    On synthetic crowds it recovers the strength fitted to the true labels (about 5 for
    ``benchmarks/quality/synthetic.py``) where the soft-count estimate ran to 10^4.

    Determinism and cost: the tasks (all of them up to ``STRENGTH_ANSWERS`` answers, else a random
    subset with a fixed seed; a worker's counts on a random subset of tasks are Dirichlet-multinomial
    with the same ``s``) and the uniforms of the inverse-CDF draws are fixed once per fit (common
    random numbers), so the draws move only as the posteriors move and a fit is reproducible. About
    ``STRENGTH_DRAWN_ANSWERS`` answers are drawn per M-step (one draw of the 100,000-answer sample on a
    large input, up to ``STRENGTH_MAX_DRAWS`` on a small one), so on 10^6 answers the strength costs
    about what the expected-count version did.
    """

    tasks: np.ndarray  # (m,) sampled task codes
    local: np.ndarray  # (n,) per sampled answer: its task's index in ``tasks``
    cell: np.ndarray  # (n,) per sampled answer: worker * L + label
    uniforms: np.ndarray  # (S, m) one uniform per draw and task
    n_workers: int
    n_labels: int
    # (S, n) per draw and answer: where its count goes in the flat (S, W, L, K) counts, less the
    # drawn label; fixed per fit, so an M-step adds the labels into ``_index`` in place (fresh
    # arrays of this size cost more in page faults than the arithmetic)
    offsets: np.ndarray = field(init=False, repr=False)
    _index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n_draws, n_cells = len(self.uniforms), self.n_workers * self.n_labels
        self.offsets = (np.arange(n_draws)[:, None] * n_cells + self.cell[None, :]) * self.n_labels
        self._index = np.empty_like(self.offsets)

    @classmethod
    def from_answers(cls, data: Answers, max_answers: int | None = None, seed: int = 0) -> StrengthDraws:
        max_answers = STRENGTH_ANSWERS if max_answers is None else max_answers
        rng = np.random.default_rng(seed)
        if len(data) > max_answers:
            keep = np.zeros(data.n_tasks, dtype=bool)
            n_keep = max(1, int(data.n_tasks * max_answers / len(data)))
            keep[rng.choice(data.n_tasks, n_keep, replace=False)] = True
            rows = np.flatnonzero(keep[data.task])
        else:
            rows = np.arange(len(data))
        tasks, local = np.unique(data.task[rows], return_inverse=True)
        n_draws = int(np.clip(np.ceil(STRENGTH_DRAWN_ANSWERS / max(len(rows), 1)), 1, STRENGTH_MAX_DRAWS))
        return cls(
            tasks=tasks,
            local=local,
            cell=data.worker[rows] * data.n_labels + data.label[rows],
            uniforms=rng.random((n_draws, len(tasks))),
            n_workers=data.n_workers,
            n_labels=data.n_labels,
        )

    def counts(self, posteriors: np.ndarray) -> np.ndarray:
        """(S * W, K, L) hard confusion counts, one block of W workers per draw of the labels."""
        n_draws, n_k = len(self.uniforms), self.n_labels
        cdf = np.cumsum(take_rows(posteriors, self.tasks), axis=1)  # (m, K)
        labels = np.zeros(self.uniforms.shape, dtype=np.int64)  # inverse CDF, one class at a time: (S, m)
        for k in range(n_k - 1):
            labels += self.uniforms > cdf[:, k]
        index = np.take(labels, self.local, axis=1, out=self._index)
        np.add(index, self.offsets, out=index)
        flat = np.bincount(index.ravel(), minlength=n_draws * self.n_workers * self.n_labels * n_k)
        return flat.astype(np.float64).reshape(n_draws * self.n_workers, self.n_labels, n_k).transpose(0, 2, 1)


@dataclass(frozen=True)
class StrengthHyperprior:
    """A log-normal hyperprior on the Dirichlet strength: ``log s ~ N(log center, sd^2)``, counted
    ``weight`` times (once per draw of the labels whose evidence it is added to).

    The evidence of a shared strength is flat when there are few workers (6 workers: 5 nats between
    s = 15 and s = 10^4), and EM then drifts along it: a larger strength makes workers more alike,
    the posteriors more like majority vote, and the next evidence prefers a larger strength still,
    until a random clicker weighs as much as a careful worker. A hyperprior (as hierarchical Bayesian
    classifier combination puts on its hyper-parameters; Kim and Ghahramani 2012) holds the strength
    where the evidence does not say otherwise; with many workers the evidence outweighs it.
    """

    center: float
    sd: float
    weight: float = 1.0

    def log_density(self, log_s: float) -> float:
        return -self.weight * (log_s - np.log(self.center)) ** 2 / (2 * self.sd**2)

    def slope(self, log_s: float) -> float:
        return -self.weight * (log_s - np.log(self.center)) / self.sd**2


def _distinct(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (key, value) pairs, and how many times each occurs (as floats, for dot products).

    Hard counts (whole numbers, as ``StrengthDraws`` gives) are histogrammed in one ``bincount``
    when the table stays small; other values are sorted.
    """
    whole = values.astype(np.int64)
    if len(values) and whole.min() >= 0 and np.array_equal(whole, values):
        span = int(whole.max()) + 1
        if (int(keys.max()) + 1) * span <= 4 * len(values) + 4096:
            times = np.bincount(keys * span + whole)
            seen = np.flatnonzero(times)
            return seen // span, (seen % span).astype(np.float64), times[seen].astype(np.float64)
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]) | (values[1:] != values[:-1])
    starts = np.flatnonzero(first)
    return keys[starts], values[starts], np.diff(np.append(starts, len(keys))).astype(np.float64)


def fit_prior_strength(
    counts: np.ndarray,
    pooled: np.ndarray,
    bounds: tuple[float, float],
    start: float | None = None,
    hyperprior: StrengthHyperprior | None = None,
) -> float:
    """Type-II maximum likelihood of the Dirichlet concentration ``s`` shared by all workers.

    Each worker's row ``e_w[k, :]`` is drawn from Dirichlet(s * pooled[k, :]); the expected counts
    follow a Dirichlet-multinomial. Maximising its marginal likelihood over ``s`` lets the data say
    how much workers really differ from the average worker: if they are alike, ``s`` is large and a
    worker with three answers is pulled almost entirely to the average; if they differ a lot, ``s``
    is small. (Minka, "Estimating a Dirichlet distribution", 2000.)

    Solved by secant (quasi-Newton) steps on the exact derivative in ``log s`` (digamma terms,
    Minka's section 3), warm-started at ``start`` (the previous EM iteration's value, which moves
    little), so an M-step costs a few digamma passes instead of a bracketing search. Terms that depend
    only on the class (``log Gamma(s * pooled[k, l])``) are computed once per class, not per worker,
    and the per-worker terms once per distinct value: the counts drawn by ``StrengthDraws`` are small
    integers, so a few hundred distinct (class, label, count) cells stand for every worker of every
    draw (16 draws x 164 workers x 4 cells on a binary crowd is 10,496 digammas per step otherwise).
    A bounded Brent search is the fallback when Newton does not improve the evidence.
    """
    n_l = counts.shape[2]
    rows = counts.sum(axis=2)  # (W, K)
    # Only rows with more than one answer inform s: the evidence of a single answer is the prior
    # mean, whatever s. With none, nothing shows workers differ: return the upper bound (all alike).
    active = rows > 1.0 + 1e-9
    if not active.any():
        return bounds[1]
    n_u, n_times = np.unique(rows[active], return_counts=True)  # row totals, each with its count
    row_class = np.nonzero(active)[1]  # the true class of each active row, in counts[active] order
    cells = (row_class[:, None] * n_l + np.arange(n_l)).ravel()  # (class, label) of each count
    cell_u, c_u, c_times = _distinct(cells, counts[active].ravel())
    base_u = pooled.ravel()[cell_u]
    n_rows = int(active.sum())
    per_class = active.sum(axis=0).astype(np.float64)  # active rows per true class, (K,)
    lo, hi = np.log(bounds)

    def log_evidence(log_s: float) -> float:
        s = np.exp(log_s)
        shared = n_rows * gammaln(s) - float(per_class @ gammaln(s * pooled).sum(axis=1))
        prior = hyperprior.log_density(log_s) if hyperprior else 0.0
        return shared - float(gammaln(n_u + s) @ n_times) + float(gammaln(c_u + s * base_u) @ c_times) + prior

    def slope(log_s: float) -> float:  # d log evidence / d log s
        s = np.exp(log_s)
        grad = (
            n_rows * digamma(s)
            - digamma(n_u + s) @ n_times
            + (base_u * digamma(c_u + s * base_u)) @ c_times
            - per_class @ (pooled * digamma(s * pooled)).sum(axis=1)
        )
        return float(s * grad) + (hyperprior.slope(log_s) if hyperprior else 0.0)

    # secant iterations on the slope (Newton with a finite-difference curvature: trigamma is
    # ~25x slower than digamma in scipy), each step clipped to a factor e in s
    u0 = float(np.clip(np.log(start), lo, hi)) if start is not None else 0.5 * (lo + hi)
    u_prev, g_prev = u0, slope(u0)
    u = float(np.clip(u0 + (0.05 if g_prev > 0 else -0.05), lo, hi))
    for _ in range(30):
        g = slope(u)
        if g == g_prev or abs(u - u_prev) < 1e-4:
            break
        step = float(np.clip(-g * (u - u_prev) / (g - g_prev), -1.0, 1.0))
        if (g - g_prev) / (u - u_prev) >= 0:  # not concave here: go uphill instead
            step = float(np.clip(np.sign(g), -1.0, 1.0))
        u_prev, g_prev = u, g
        u = float(np.clip(u + step, lo, hi))
        if u == u_prev:  # stuck at a bound
            break
    if log_evidence(u) + 1e-9 >= log_evidence(u0):
        return float(np.exp(u))
    res = minimize_scalar(lambda x: -log_evidence(x), bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(res.x))


# The "workers beat chance" hyperprior of the average worker: this many pseudo-answers per true class
# of a worker who knows the answer with probability CHANCE_COMPETENCE and otherwise guesses with the
# class frequencies. A competence of 1/2 is the least that keeps a lone answer from being overruled
# by the class prior (see average_worker); two pseudo-answers vanish beside any real evidence.
CHANCE_PSEUDO_ANSWERS = 2.0
CHANCE_COMPETENCE = 0.5


def corroborated(data: Answers) -> Answers:
    """The answers on tasks with two or more answers (the same object when that is all of them)."""
    per_task = np.bincount(data.task, minlength=data.n_tasks)
    keep = per_task[data.task] > 1
    if keep.all():
        return data
    return replace(data, task=data.task[keep], worker=data.worker[keep], label=data.label[keep])


def average_worker(counts: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """The pooled ("average worker") confusion matrix under a hyperprior that workers beat chance.

    ``counts.sum(axis=0)`` plus ``CHANCE_PSEUDO_ANSWERS`` pseudo-answers per true class drawn from
    ``P0[k, l] = a [l = k] + (1 - a) priors[l]`` with ``a = CHANCE_COMPETENCE``: the worker of MACE's
    generative story (knows the answer with probability ``a``, else guesses; D. Hovy, T.
    Berg-Kirkpatrick, A. Vaswani and E. Hovy, "Learning Whom to Trust with MACE", NAACL-HLT 2013),
    guessing with the class frequencies. For such a worker ``P(true = l | answer l) = a + (1 - a)
    priors[l]`` against ``(1 - a) priors[k]`` for any other class, so with ``a >= 1/2`` a lone
    answer is never overruled by the class prior: with no corroborated answers at all (one answer
    per task) every label is its answer. Real counts outweigh the two pseudo-answers at once.
    """
    n_k = counts.shape[1]
    base = CHANCE_COMPETENCE * np.eye(n_k) + (1.0 - CHANCE_COMPETENCE) * priors[None, :]
    total = counts.sum(axis=0) + CHANCE_PSEUDO_ANSWERS * base
    return total / total.sum(axis=1, keepdims=True)


def moment_class_priors(data: Answers) -> np.ndarray:
    """Class priors by the method of moments under a one-coin crowd, from answers alone.

    Under the one-coin model (each answer right with probability ``a``, else uniformly one of the
    other ``K - 1`` labels) two answers to one task agree with probability ``a^2 + (1 - a)^2 / (K -
    1)``, so the pairwise agreement rate gives ``a``; and the share of answers ``m_l = a pi_l + (1 - a)
    (1 - pi_l) / (K - 1)`` then gives the de-biased class priors ``pi``. Consistent as soon as
    tasks have two answers, with no latent-variable fit, so it cannot drift (the moment view of
    Y. Zhang, X. Chen, D. Zhou and M. I. Jordan, "Spectral Methods Meet EM: A Provably Optimal
    Algorithm for Crowdsourcing", NeurIPS 2014 / JMLR 17(102), 2016). With no pairs (or agreement at
    chance) it is the Laplace-smoothed answer shares.
    """
    n_k = data.n_labels
    shares = (np.bincount(data.label, minlength=n_k) + 1.0) / (len(data) + n_k)
    per_task = np.bincount(data.task * n_k + data.label, minlength=data.n_tasks * n_k).reshape(-1, n_k)
    n = per_task.sum(axis=1).astype(np.float64)
    pairs = float((n * (n - 1)).sum())
    if pairs <= 0 or n_k < 2:
        return shares
    agree = float((per_task * (per_task - 1.0)).sum()) / pairs
    b = 1.0 / (n_k - 1)
    acc = (b + np.sqrt(max(b * b - (1 + b) * (b - agree), 0.0))) / (1 + b)  # root >= 1/K of the quadratic
    if acc <= 1.0 / n_k + 1e-3:
        return shares
    pri = np.clip((shares - (1 - acc) * b) / (acc - (1 - acc) * b), 1.0 / (len(data) + n_k), None)
    return pri / pri.sum()


def anchored_class_priors(totals: np.ndarray, n_tasks: int, anchor: np.ndarray) -> np.ndarray:
    """EM's class priors under a Dirichlet prior centred on ``anchor`` worth as many tasks as the data.

    With few answers per task EM's class priors are not identified (with two answers to a binary
    task, the pattern frequencies leave a one-parameter ridge of equally good fits), and EM slid
    along it to "almost every task is class 0, and two answers of 1 do not outweigh that". The
    conjugate prior, centred on the moment estimate (:func:`moment_class_priors`), pins the ridge;
    where answers do identify the priors EM still moves them halfway from the anchor. ``totals``
    are the posteriors summed over the ``n_tasks`` tasks.
    """
    return (totals + n_tasks * anchor) / (2.0 * max(n_tasks, 1))


@dataclass
class EMResult:
    posteriors: np.ndarray  # (T, K) = softmax(logits)
    errors: np.ndarray  # (W, K, L) confusion matrices, rows sum to 1
    priors: np.ndarray  # (K,)
    counts: np.ndarray  # (W, K, L) expected counts of the final M-step
    n_iter: int
    log_likelihood: list[float]
    logits: np.ndarray | None = None  # (T, K) log prior + log-likelihood of the final E-step
    count_posteriors: np.ndarray | None = None  # (T, K) the posteriors the final ``counts`` came from


def class_priors(posteriors: np.ndarray) -> np.ndarray:
    """Class priors with one pseudo-count per class (Laplace), so no class gets probability zero."""
    return (posteriors.sum(axis=0) + 1.0) / (posteriors.shape[0] + posteriors.shape[1])


def fit_confusion_em(
    design: Design,
    init: np.ndarray,
    project: Projection,
    *,
    n_iter: int,
    tol: float,
    patience: int,
    count_design: Design | None = None,
    priors_of: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> EMResult:
    """Run EM from initial task posteriors ``init`` until converged.

    Each iteration is an M-step (class priors, expected counts, projection to confusion matrices)
    followed by an E-step, so the returned posteriors are exactly the E-step of the returned
    ``errors`` and ``priors``, and ``logits`` are their unnormalised log posteriors.

    Convergence: the per-answer log-likelihood must improve by less than ``tol`` for ``patience``
    consecutive iterations. A single small step is common early in EM (a plateau before the
    workers separate), so one small change is not taken as convergence.
    """
    n_t, n_k = init.shape
    n_answers = max(float(design.A.data.sum()), 1.0)
    # Buffers reused by every iteration (no per-iteration allocation of task-sized arrays). The
    # E-step works in the transposed (K, T) layout, where the per-task max, sum and normalisation
    # are plain element-wise loops over K contiguous rows (see softmax_rows); posteriors alternate
    # between two (T, K) buffers because the final ``counts`` must keep the previous iteration's.
    logits_t = np.empty((n_k, n_t))  # log prior + log-likelihood, one row per class
    work = np.empty((n_k, n_t))  # exp / posteriors in the transposed layout
    top = np.empty(n_t)
    total = np.empty(n_t)
    buffers = [np.empty((n_t, n_k)), np.empty((n_t, n_k))]
    posteriors = init
    count_design = design if count_design is None else count_design
    if priors_of is None:  # the Laplace mean of the posteriors (class_priors)
        priors_of = lambda totals, n: (totals + 1.0) / (n + len(totals))  # noqa: E731
    priors = priors_of(init.sum(axis=0), n_t)
    history: list[float] = []
    calm = 0
    it = 0
    for it in range(1, n_iter + 1):
        count_posteriors = posteriors
        counts = count_design.counts(posteriors)
        errors = project(counts, pooled_confusion(counts), posteriors)
        log_lik = design.log_likelihood(np.log(errors))  # (T, K)
        # E-step: softmax over classes of log prior + log-likelihood, in the (K, T) layout
        np.add(log_lik.T, np.log(priors)[:, None], out=logits_t)
        np.max(logits_t, axis=0, out=top)
        np.subtract(logits_t, top, out=work)
        np.exp(work, out=work)
        np.sum(work, axis=0, out=total)
        work /= total
        posteriors = buffers[it % 2]
        posteriors[...] = work.T  # C order: row gathers and sparse products want it
        np.log(total, out=total)
        total += top  # the per-task log-normaliser
        history.append(float(total.sum()) / n_answers)
        # the next M-step's class priors from the posteriors summed over contiguous rows of the (K, T) buffer
        priors_next = priors_of(work.sum(axis=1), n_t)
        if len(history) > 1 and abs(history[-1] - history[-2]) < tol:
            calm += 1
            if calm >= patience:
                break
        else:
            calm = 0
        priors = priors_next
    return EMResult(posteriors, errors, priors, counts, it, history, logits_t.T, count_posteriors)


def loo_confusion_log_errors(
    data: Answers, posteriors: np.ndarray, counts: np.ndarray, prior_counts: np.ndarray
) -> np.ndarray:
    """Per answer and class: log e_w[k, l] of a full confusion matrix fitted WITHOUT this task.

    Removes the task's own expected counts (``counts[w, :, l] - posteriors[task, :]``) from its
    worker's matrix before smoothing with the Dirichlet pseudo-counts ``prior_counts`` (K, L).
    """
    n_w, n_k, n_l = counts.shape
    own = take_rows(posteriors, data.task)  # (N, K): what this answer contributed to its worker's counts
    table = (counts + prior_counts).transpose(0, 2, 1).reshape(n_w * n_l, n_k)  # rows (w, l)
    num = take_rows(table, data.worker * n_l + data.label) - own
    row_tot = take_rows(counts.sum(axis=2) + prior_counts.sum(axis=1), data.worker) - own
    return np.log(np.maximum(num / np.maximum(row_tot, 1e-12), 1e-12))


def take_rows(matrix: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``matrix[index]`` for a 2-D array; ``np.take`` is ~10x faster than fancy indexing here."""
    return np.take(matrix, index, axis=0)


def task_sums(data: Answers, per_answer: np.ndarray) -> np.ndarray:
    """(T, K) per-task sums of an (N, K) per-answer array: K bincounts, no loop over rows."""
    n_t, n_k = data.n_tasks, per_answer.shape[1]
    out = np.empty((n_t, n_k))
    for k in range(n_k):
        out[:, k] = np.bincount(data.task, weights=per_answer[:, k], minlength=n_t)
    return out


def calibration_sample(data: Answers, max_answers: int | None = None, seed: int = 0) -> Answers:
    """The answers used to fit the temperature: whole tasks with 2+ answers, at most ~``max_answers``.

    Tasks with one answer say nothing about how the evidence of several answers should combine, so
    they are left out. Large inputs are thinned to a random subset of tasks drawn with a fixed seed
    (deterministic, and unrelated to how task ids happen to be ordered): one scalar needs far fewer
    than a million answers, and the subset bounds the calibration's time and memory. The rows keep
    their original task codes.
    """
    max_answers = CALIBRATION_ANSWERS if max_answers is None else max_answers
    per_task = np.bincount(data.task, minlength=data.n_tasks)
    eligible = per_task > 1
    n_eligible = int(per_task[eligible].sum())
    if n_eligible > max_answers:
        tasks = np.flatnonzero(eligible)
        n_keep = max(1, int(len(tasks) * max_answers / n_eligible))
        keep = np.zeros(data.n_tasks, dtype=bool)
        keep[np.random.default_rng(seed).choice(tasks, n_keep, replace=False)] = True
        eligible = keep
    rows = np.flatnonzero(eligible[data.task])
    return replace(data, task=data.task[rows], worker=data.worker[rows], label=data.label[rows])


def loo_log_prior(count_posteriors: np.ndarray, task: np.ndarray) -> np.ndarray:
    """(n, K) log class priors estimated without each row's task (one Laplace pseudo-count)."""
    n_t, n_k = count_posteriors.shape
    totals = count_posteriors.sum(axis=0) + 1.0
    return np.log(np.clip((totals - take_rows(count_posteriors, task)) / (n_t - 1 + n_k), 1e-12, None))


def tempered(logits: np.ndarray, beta: float) -> np.ndarray:
    """``softmax(beta * logits)`` per row: the same argmax as ``logits`` for any ``beta > 0``."""
    return np.ascontiguousarray(softmax_rows(beta * logits)[0])


def fit_temperature(
    sample: Answers,
    per_answer: np.ndarray,
    log_prior: np.ndarray,
    bounds: tuple[float, float] = (0.05, 1.0),
) -> float:
    """Temper the evidence so that posteriors predict *held-out answers* as well as possible.

    Confusion-matrix models assume workers err independently given the true label. On real data
    errors are correlated (hard items fool several workers at once), so summing log-likelihoods
    counts the same evidence several times and posteriors come out over-confident. We fit one
    exponent ``beta`` for the evidence, ``p(k | answers) ~ (prior_k * prod_answers e_w[k, l]) ** beta``,
    by maximising the leave-one-answer-out log predictive probability of every observed answer:

        sum over answers (i, w, l) of log sum_k p_beta(k | other answers of i) * e_w[k, l].

    This is a proper scoring rule on observable quantities, so it needs no ground truth and no
    dataset-specific constant: if the posterior is too sharp, other workers' answers surprise it
    and ``beta`` drops below one. It is the "tempered" or "power" likelihood of generalised Bayes
    (P. G. Bissiri, C. C. Holmes and S. G. Walker, "A General Framework for Updating Belief
    Distributions", JRSS B 78(5), 2016, https://doi.org/10.1111/rssb.12158), with the exponent set
    by predictive cross-validation.

    ``sample`` holds whole tasks (see :func:`calibration_sample`), ``per_answer`` (n, K) the log
    probability of each of its answers under each class (ideally from worker models fitted without
    the answer's task: cross-fitting) and ``log_prior`` the (n, K) or (K,) log class prior.
    """
    if len(sample) == 0:
        return bounds[1]
    _, local = np.unique(sample.task, return_inverse=True)
    n_local = int(local.max()) + 1
    totals = np.empty((n_local, per_answer.shape[1]))
    for k in range(per_answer.shape[1]):
        totals[:, k] = np.bincount(local, weights=per_answer[:, k], minlength=n_local)
    own = per_answer.T  # (K, n)
    others = take_rows(totals, local).T - own  # the task's other answers' evidence
    prior = (log_prior.T if log_prior.ndim == 2 else log_prior[:, None]) + others
    own_top = own.max(axis=0)
    own_lik = np.exp(own - own_top)

    def neg_predictive(beta: float) -> float:
        post, _ = softmax_rows((beta * prior).T)  # tempered leave-one-answer-out posterior
        pred = np.log((post.T * own_lik).sum(axis=0)) + own_top  # log sum_k post_k e_w[k, l]
        return -float(pred.sum())

    res = minimize_scalar(neg_predictive, bounds=bounds, method="bounded", options={"xatol": 1e-3})
    return float(res.x)

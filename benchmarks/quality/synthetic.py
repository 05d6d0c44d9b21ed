"""Synthetic crowd with known truth: tasks x overlap answers from workers with varied confusion matrices."""

from __future__ import annotations

import numpy as np


def make_crowd(
    n_tasks: int = 200_000,
    overlap: int = 5,
    n_workers: int = 2_000,
    n_classes: int = 4,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (task, worker, label, truth) int arrays; each task gets ``overlap`` distinct workers.

    Worker quality varies: the diagonal of each confusion row is drawn from Beta(4, 1.5) (mean 0.73),
    with a share of near-random workers, and the errors are spread with a Dirichlet so mistakes are
    structured (a worker may confuse class 1 with 2 but never with 3).
    """
    rng = np.random.default_rng(seed)
    truth = rng.choice(n_classes, size=n_tasks, p=_class_priors(n_classes))
    diag = rng.beta(4.0, 1.5, size=(n_workers, n_classes))
    spammers = rng.random(n_workers) < 0.1
    diag[spammers] = 1.0 / n_classes + rng.random((spammers.sum(), n_classes)) * 0.1
    off = rng.dirichlet(np.full(n_classes - 1, 0.7), size=(n_workers, n_classes))
    conf = np.empty((n_workers, n_classes, n_classes))
    for k in range(n_classes):  # a loop over classes only
        others = [j for j in range(n_classes) if j != k]
        conf[:, k, k] = diag[:, k]
        conf[:, k, others] = (1.0 - diag[:, k])[:, None] * off[:, k, :]
    workers = _distinct_workers(rng, n_tasks, overlap, n_workers)
    task = np.repeat(np.arange(n_tasks), overlap)
    worker = workers.ravel()
    # inverse-CDF sampling of every answer at once
    cdf = conf[worker, truth[task]].cumsum(axis=1)
    label = (rng.random(len(task))[:, None] > cdf).sum(axis=1).clip(max=n_classes - 1)
    order = rng.permutation(len(task))  # rows arrive in no particular order
    return task[order], worker[order], label[order], truth


def _class_priors(n_classes: int) -> np.ndarray:
    p = np.linspace(2.0, 1.0, n_classes)
    return p / p.sum()


def _distinct_workers(rng: np.random.Generator, n_tasks: int, overlap: int, n_workers: int) -> np.ndarray:
    workers = rng.integers(0, n_workers, size=(n_tasks, overlap))
    while True:  # redraw the (rare) rows where a worker repeats
        s = np.sort(workers, axis=1)
        bad = (np.diff(s, axis=1) == 0).any(axis=1)
        if not bad.any():
            return workers
        workers[bad] = rng.integers(0, n_workers, size=(bad.sum(), overlap))


def make_mixed_crowd(
    n_tasks: int,
    overlap: int,
    n_workers: int,
    class_priors: list[float],
    spammers: float = 0.1,
    adversaries: float = 0.0,
    activity: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A crowd with the kinds of workers real crowds have, for the few-answers benchmark.

    * honest workers: a symmetric accuracy per worker from Beta(4, 1.5) (mean 0.73), errors spread
      with a Dirichlet (structured, as in :func:`make_crowd`);
    * ``spammers``: a share of random clickers, who answer with a label distribution of their own
      (often one button), independent of the truth;
    * ``adversaries``: a share of systematically wrong workers, who answer the next class
      (``(truth + 1) mod K``) 80% of the time;
    * ``activity``: Zipf-like skew of how many tasks each worker answers (0 = uniform; 1 = a few
      workers answer most tasks and most workers answer a handful), as on real platforms.

    ``class_priors`` sets the number of classes and their imbalance. Returns (task, worker, label,
    truth) int arrays; each task gets ``overlap`` distinct workers.
    """
    rng = np.random.default_rng(seed)
    priors = np.asarray(class_priors, dtype=np.float64)
    n_k = len(priors)
    truth = rng.choice(n_k, size=n_tasks, p=priors / priors.sum())
    acc = rng.beta(4.0, 1.5, size=n_workers)
    off = rng.dirichlet(np.full(n_k - 1, 0.7), size=(n_workers, n_k))
    conf = np.empty((n_workers, n_k, n_k))
    for k in range(n_k):  # a loop over classes only
        others = [j for j in range(n_k) if j != k]
        conf[:, k, k] = acc
        conf[:, k, others] = (1.0 - acc)[:, None] * off[:, k, :]
    kind = rng.random(n_workers)
    spam = kind < spammers
    conf[spam] = rng.dirichlet(np.full(n_k, 0.5), size=int(spam.sum()))[:, None, :]
    adverse = (kind >= spammers) & (kind < spammers + adversaries)
    shifted = np.roll(np.eye(n_k), 1, axis=1) * 0.8 + 0.2 / n_k
    conf[adverse] = shifted / shifted.sum(axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, n_workers + 1) ** activity
    weights = rng.permutation(weights / weights.sum())
    workers = np.stack([rng.choice(n_workers, overlap, replace=False, p=weights) for _ in range(n_tasks)])
    task = np.repeat(np.arange(n_tasks), overlap)
    worker = workers.ravel()
    cdf = conf[worker, truth[task]].cumsum(axis=1)
    label = (rng.random(len(task))[:, None] > cdf).sum(axis=1).clip(max=n_k - 1)
    return task, worker, label, truth

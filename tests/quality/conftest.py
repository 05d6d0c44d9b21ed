"""Shared fixtures: a small synthetic crowd with known truth (fixed seed)."""

from __future__ import annotations

import numpy as np
import pytest


def make_small_crowd(
    n_tasks: int = 400, overlap: int = 5, n_workers: int = 30, n_classes: int = 3, seed: int = 7
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Workers with accuracies in [0.35, 0.95]; errors uniform. Returns task, worker, label, truth."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    acc = rng.uniform(0.35, 0.95, n_workers)
    task = np.repeat(np.arange(n_tasks), overlap)
    worker = np.concatenate([rng.choice(n_workers, overlap, replace=False) for _ in range(n_tasks)])
    right = rng.random(len(task)) < acc[worker]
    wrong = (truth[task] + rng.integers(1, n_classes, len(task))) % n_classes
    label = np.where(right, truth[task], wrong)
    return task, worker, label, truth


@pytest.fixture(scope="session")
def small_crowd() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return make_small_crowd()


@pytest.fixture(scope="session")
def crowd_maker():
    """The generator itself, for tests that need a different size."""
    return make_small_crowd

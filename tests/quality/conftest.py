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


def make_correlated_crowd(seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """1,500 tasks x 7 answers, 3 classes; a third of the tasks are "hard": each worker then picks
    the task's one decoy label with probability 0.5, so errors are correlated within a task."""
    rng = np.random.default_rng(seed)
    n_tasks, overlap = 1500, 7
    truth = rng.integers(0, 3, n_tasks)
    decoy = (truth + rng.integers(1, 3, n_tasks)) % 3
    hard = rng.random(n_tasks) < 1 / 3
    task = np.repeat(np.arange(n_tasks), overlap)
    worker = np.concatenate([rng.choice(50, overlap, replace=False) for _ in range(n_tasks)])
    fooled = hard[task] & (rng.random(len(task)) < 0.5)
    right = rng.random(len(task)) < 0.85
    label = np.where(fooled, decoy[task], np.where(right, truth[task], (truth[task] + 1) % 3))
    return task, worker, label, truth


@pytest.fixture(scope="session")
def correlated_crowd() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return make_correlated_crowd()

"""Dawid-Skene on answers collected adaptively (dynamic overlap): no feedback collapse."""

from __future__ import annotations

import numpy as np
import pytest

from truthset.quality import DawidSkene, MajorityVote


def _adaptive_crowd(seed: int) -> tuple[list[tuple[int, str, int]], np.ndarray]:
    """15% positives, workers 70-90% right; a task stops at once on a negative first answer, else
    once two answers agree (at most three): how dynamic overlap collects an imbalanced crowd."""
    rng = np.random.default_rng(seed)
    n_tasks, n_workers = 3000, 60
    truth = (rng.random(n_tasks) < 0.15).astype(int)
    accuracy = rng.uniform(0.7, 0.9, n_workers)
    rows: list[tuple[int, str, int]] = []
    for task in range(n_tasks):
        answers: list[int] = []
        for worker in rng.permutation(n_workers)[:3]:
            answer = int(truth[task]) if rng.random() < accuracy[worker] else 1 - int(truth[task])
            answers.append(answer)
            rows.append((task, f"w{worker}", answer))
            if (len(answers) == 1 and answer == 0) or (len(answers) >= 2 and answers[-1] == answers[-2]):
                break
    return rows, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adaptive_fit_keeps_the_minority_class_and_beats_majority_vote(seed: int) -> None:
    rows, truth = _adaptive_crowd(seed)
    tasks, workers, labels = (list(column) for column in zip(*rows, strict=True))

    def predicted(estimator: object) -> np.ndarray:
        fitted = estimator.fit((tasks, workers, labels)).labels_  # type: ignore[attr-defined]
        return np.array([fitted[task] for task in range(len(truth))])

    adaptive = predicted(DawidSkene(adaptive=True))
    majority = predicted(MajorityVote())
    # the safeguards that select corroborated tasks fed back on this design and answered every task 0
    assert adaptive.mean() > 0.5 * truth.mean()
    assert (adaptive == truth).mean() >= (majority == truth).mean() - 0.005

"""WorkerModel: the batched posterior a refit checks every task with is the one-task posterior, vectorised."""

from __future__ import annotations

import numpy as np
import pytest

from truthset.quality import DawidSkene, WorkerModel


def _crowd(seed: int) -> tuple[list[str], list[str], list[str]]:
    rng = np.random.default_rng(seed)
    tasks, workers, labels = [], [], []
    for task in range(60):
        truth = rng.integers(3)
        for worker in rng.choice(8, size=rng.integers(1, 6), replace=False):
            right = rng.random() < 0.5 + worker / 20
            tasks.append(f"t{task}")
            workers.append(f"w{worker}")
            labels.append("abc"[truth if right else rng.integers(3)])
    return tasks, workers, labels


@pytest.mark.parametrize("seed", [0, 1])
def test_posteriors_of_many_tasks_match_the_posterior_of_each(seed: int) -> None:
    tasks, workers, labels = _crowd(seed)
    model = WorkerModel.from_fitted(DawidSkene().fit((tasks, workers, labels)), ["a", "b", "c"], "dawid_skene")
    # answers of a worker the fit never saw count as the average worker's, in both
    tasks, workers, labels = [*tasks, "t0"], [*workers, "newcomer"], [*labels, "b"]
    ids = sorted(set(tasks))
    codes = [ids.index(task) for task in tasks]
    batched = model.posteriors(codes, workers, labels, len(ids) + 1)
    for i, task in enumerate(ids):
        mine = [j for j, t in enumerate(tasks) if t == task]
        one = model.posterior([workers[j] for j in mine], [labels[j] for j in mine])
        np.testing.assert_allclose(batched[i], one, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(batched[-1], model.posterior([], []))  # a task without answers: the (tempered) priors


def test_a_model_calibrated_on_gold_keeps_how_many_gold_tasks_it_was() -> None:
    tasks, workers, labels = _crowd(3)
    model = WorkerModel.from_fitted(DawidSkene().fit((tasks, workers, labels)), ["a", "b", "c"], "dawid_skene")
    assert model.gold_tasks == 0
    gold = [(["w1", "w2"], ["a", "a"]), (["w3", "w4"], ["b", "c"]), (["w5"], ["c"])]
    calibrated, _ = model.calibrated_on(gold, ["a", "b", "c"])
    assert calibrated.gold_tasks == 3 and calibrated.workers == model.workers
    assert WorkerModel.from_bytes(calibrated.to_bytes()).gold_tasks == 3

"""A temperature fitted on gold answers calibrates a crowd whose workers share their errors."""

from __future__ import annotations

import numpy as np
import pytest

from truthset.quality import DawidSkene, WorkerModel, expected_calibration_error


def _shared_error_crowd(seed: int) -> tuple[dict[str, tuple[list[str], list[str]]], dict[str, str]]:
    """3 answers per task; 30% of the items are hard and fool most workers the same way."""
    rng = np.random.default_rng(seed)
    tasks: dict[str, tuple[list[str], list[str]]] = {}
    truth: dict[str, str] = {}
    for task in range(3000):
        true = int(rng.integers(0, 2))
        right = 0.35 if rng.random() < 0.3 else 0.9
        truth[f"t{task}"] = str(true)
        workers, labels = tasks.setdefault(f"t{task}", ([], []))
        for worker in rng.choice(40, 3, replace=False):
            workers.append(f"w{worker}")
            labels.append(str(true if rng.random() < right else 1 - true))
    return tasks, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_gold_temperature_calibrates_shared_errors_on_held_out_tasks(seed: int) -> None:
    tasks, truth = _shared_error_crowd(seed)
    rows = [
        (task, worker, label)
        for task, (workers, labels) in tasks.items()
        for worker, label in zip(workers, labels, strict=True)
    ]
    fitted = DawidSkene().fit(tuple(list(column) for column in zip(*rows, strict=True)))
    model = WorkerModel.from_fitted(fitted, ["0", "1"], "dawid_skene")
    ids = list(tasks)
    gold, held_out = ids[:200], ids[200:]
    calibrated, _ = model.calibrated_on([tasks[t] for t in gold], [truth[t] for t in gold])

    def ece(which: WorkerModel) -> float:
        posteriors = np.array([which.posterior(*tasks[t]) for t in held_out])
        right = posteriors.argmax(axis=1) == np.array([int(truth[t]) for t in held_out])
        return expected_calibration_error(posteriors.max(axis=1), right)

    assert ece(model) > 0.1  # shared errors look like agreement to an answer-based temperature
    assert ece(calibrated) < 0.05
    # tempering never moves an answer
    for t in held_out[:200]:
        assert model.posterior(*tasks[t]).argmax() == calibrated.posterior(*tasks[t]).argmax()

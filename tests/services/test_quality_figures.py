"""The per-worker estimators of services/quality.py, on hand-made vote tables (no database)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from truthset.services.quality import leave_one_out, medians_of_others, wilson_interval


def test_leave_one_out_scores_only_against_a_strict_majority_of_two_or_more_others() -> None:
    # task 0: labels 0,0,1 -> the two 0s each face (0,1): a tie, unscored; the 1 faces (0,0): wrong
    # task 1: labels 2,2,2,1 -> each 2 faces (2,2,1): right; the 1 faces (2,2,2): wrong
    # task 2: labels 0,1 -> one other answer only: unscored
    # task 3: labels 0,0,1,1 -> each faces a 2-1 majority against it: wrong
    tasks = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 3])
    labels = np.array([0, 0, 1, 2, 2, 2, 1, 0, 1, 0, 0, 1, 1])
    scored, correct = leave_one_out(tasks, labels)
    assert scored.tolist() == [False, False, True, True, True, True, True, False, False, True, True, True, True]
    assert correct.tolist() == [False, False, False, True, True, True, False, False, False, False, False, False, False]


@pytest.mark.parametrize(("k", "n"), [(0, 1), (2, 3), (7, 10), (50, 50), (321, 1000)])
def test_wilson_interval_matches_scipy(k: int, n: int) -> None:
    low, high = wilson_interval(np.array([float(k)]), np.array([n]))
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low[0], high[0]) == (pytest.approx(expected.low), pytest.approx(expected.high))


def test_wilson_interval_without_answers_is_nan() -> None:
    low, high = wilson_interval(np.array([0.0]), np.array([0]))
    assert np.isnan(low[0]) and np.isnan(high[0])


def test_the_median_of_the_other_answers_to_each_task() -> None:
    # task 0: 1, 5, 3 -> others (5, 3) 4.0, (1, 3) 2.0, (1, 5) 3.0; task 1: 7, 9 -> one other: NaN
    # task 2: 4, 4, 8, 0 -> others (4, 8, 0) 4, (4, 8, 0) 4, (4, 4, 0) 4, (4, 4, 8) 4
    tasks = np.array([0, 1, 0, 2, 2, 0, 1, 2, 2])
    values = np.array([1.0, 7.0, 5.0, 4.0, 4.0, 3.0, 9.0, 8.0, 0.0])
    medians = medians_of_others(tasks, values)
    assert np.isnan(medians[[1, 6]]).all()
    assert medians[[0, 2, 5, 3, 4, 7, 8]].tolist() == [4.0, 2.0, 3.0, 4.0, 4.0, 4.0, 4.0]


@pytest.mark.parametrize("seed", range(5))
def test_medians_of_others_match_numpy_answer_by_answer(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tasks, values = rng.integers(0, 30, 200), rng.normal(size=200).round(1)
    medians = medians_of_others(tasks, values)
    for i in range(200):
        others = values[(tasks == tasks[i]) & (np.arange(200) != i)]
        assert medians[i] == (np.median(others) if len(others) >= 2 else pytest.approx(np.nan, nan_ok=True))

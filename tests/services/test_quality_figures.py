"""The per-worker estimators of services/quality.py, on hand-made vote tables (no database)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from truthset.services.quality import leave_one_out, wilson_interval


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

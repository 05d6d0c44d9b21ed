"""Bradley-Terry's Newton fit (small item sets) finds the same MAP estimate as its MM fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from truthset.quality import BradleyTerry
from truthset.quality._ranking import _PairData


@pytest.mark.parametrize("n_items", [2, 3, 7, 40])
def test_newton_and_mm_agree(n_items: int) -> None:
    rng = np.random.default_rng(n_items)
    m = 300
    winner = rng.integers(0, n_items, m)
    loser = (winner + rng.integers(1, n_items, m)) % n_items
    data = _PairData((np.zeros(m), winner, loser, winner))
    newton = BradleyTerry()._fit_newton(data)
    reference = BradleyTerry(n_iter=200_000, tol=1e-13)._fit_mm(data)  # MM run to convergence
    assert np.max(np.abs(newton - reference)) < 1e-8


def test_one_comparison_by_hand() -> None:
    """a beats b once. With the virtual win and loss of each against strength 1, the MAP strengths
    are the fixed point of MM's update, p_a = 2 / (1/(p_a+p_b) + 2/(p_a+1)) (2 wins: the real one and
    the virtual one), and by symmetry p_b = 1/p_a (scores centred). Checked by substitution."""
    model = BradleyTerry().fit((["w"], ["a"], ["b"], ["a"]))
    log_a = model.scores_["a"]
    assert model.scores_["b"] == pytest.approx(-log_a)
    p_a, p_b = np.exp(log_a), np.exp(-log_a)
    assert p_a == pytest.approx(2 / (1 / (p_a + p_b) + 2 / (p_a + 1)))
    assert float(expit(2 * log_a)) == pytest.approx(0.742, abs=1e-3)  # the ranking type's one-vote confidence
    assert model.order_ == ["a", "b"]


def test_large_item_sets_keep_the_mm_fit() -> None:
    rng = np.random.default_rng(1)
    n = BradleyTerry.NEWTON_MAX_ITEMS + 1
    winner = rng.integers(0, n, 2000)
    loser = (winner + rng.integers(1, n, 2000)) % n
    model = BradleyTerry().fit((np.zeros(2000), winner, loser, winner))
    assert len(model.order_) == n and abs(float(np.mean(list(model.scores_.values())))) < 1e-9

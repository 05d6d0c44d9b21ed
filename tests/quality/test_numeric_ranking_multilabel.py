"""Numeric, ranking and multi-label aggregators on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from truthset.quality import (
    BiasVarianceModel,
    BradleyTerry,
    Mean,
    Median,
    MultiLabel,
    NoisyBradleyTerry,
    rankings_to_pairs,
)

NUM = (["t1", "t1", "t1", "t2", "t2"], ["a", "b", "c", "a", "b"], [1.0, 2.0, 9.0, 4.0, 6.0])


def test_mean_and_median() -> None:
    assert Mean().fit(NUM).labels_ == {"t1": 4.0, "t2": 5.0}
    assert Median().fit(NUM).labels_ == {"t1": 2.0, "t2": 5.0}
    assert Median(ordinal=True).fit(NUM).labels_ == {"t1": 2.0, "t2": 4.0}  # lower median


def test_bias_variance_removes_a_constant_bias() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 10, 300)
    bias = {"a": 0.0, "b": 5.0, "c": -5.0, "d": 0.0}
    noise = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 8.0}
    tasks, workers, values = [], [], []
    for t in range(300):
        for w in bias:
            tasks.append(t)
            workers.append(w)
            values.append(truth[t] + bias[w] + rng.normal(0, noise[w]))
    model = BiasVarianceModel().fit((tasks, workers, values))
    est = np.array([model.labels_[t] for t in range(300)])
    mean = np.array([Mean().fit((tasks, workers, values)).labels_[t] for t in range(300)])
    assert np.abs(est - truth).mean() < np.abs(mean - truth).mean()
    assert model.bias_["b"] - model.bias_["c"] == pytest.approx(10.0, abs=0.5)
    assert model.variance_["d"] > 10 * model.variance_["a"]


def test_bradley_terry_order_and_symmetry() -> None:
    pairs = (["w"] * 4, ["a", "a", "b", "a"], ["b", "c", "c", "c"], ["a", "a", "b", "a"])
    bt = BradleyTerry().fit(pairs)
    assert bt.order_ == ["a", "b", "c"]
    assert bt.scores_["a"] == pytest.approx(-bt.scores_["c"])
    assert sum(bt.scores_.values()) == pytest.approx(0.0, abs=1e-9)


def test_rankings_to_pairs_full_breaking() -> None:
    workers, left, right, winner = rankings_to_pairs(["w1"], [["x", "y", "z"]])
    assert list(zip(left, right, winner, strict=True)) == [("x", "y", "x"), ("x", "z", "x"), ("y", "z", "y")]
    assert BradleyTerry().fit((workers, left, right, winner)).order_ == ["x", "y", "z"]


def test_noisy_bradley_terry_discounts_a_contrarian() -> None:
    rng = np.random.default_rng(0)
    strength = {"a": 2.0, "b": 1.0, "c": 0.0, "d": -1.0}
    items = list(strength)
    rows: list[list] = [[], [], [], []]
    for _ in range(400):
        i, j = rng.choice(4, 2, replace=False)
        a, b = items[i], items[j]
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        true_winner = a if rng.random() < p else b
        for worker in ("good1", "good2", "liar"):
            winner = true_winner if worker != "liar" else (b if true_winner == a else a)
            for col, v in zip(rows, (worker, a, b, winner), strict=True):
                col.append(v)
    model = NoisyBradleyTerry().fit(tuple(rows))
    assert model.order_ == items
    assert model.skills_["liar"] < 0.5 < model.skills_["good1"]


def test_multilabel_per_label_binary() -> None:
    rows = (
        ["t1", "t1", "t1", "t2", "t2", "t2"],
        ["a", "b", "c", "a", "b", "c"],
        [{"cat"}, {"cat", "dog"}, {"cat"}, set(), {"dog"}, {"dog"}],
    )
    ml = MultiLabel().fit(rows)
    assert ml.labels_ == {"t1": ["cat"], "t2": ["dog"]}
    assert ml.probas_["t1"]["cat"] > 0.5 > ml.probas_["t1"]["dog"]

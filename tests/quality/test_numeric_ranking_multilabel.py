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


def _numeric_crowd(rng, n_tasks, n_workers, per_task, bias, sd):
    truth = rng.normal(0, 10, n_tasks)
    tasks = np.repeat(np.arange(n_tasks), per_task)
    workers = np.concatenate([rng.choice(n_workers, per_task, replace=False) for _ in range(n_tasks)])
    values = truth[tasks] + bias[workers] + rng.normal(0, 1, len(tasks)) * sd[workers]
    return (tasks, workers, values), truth


def test_bias_variance_priors_are_estimated_from_the_answers() -> None:
    # 150 workers whose offsets have variance 9 and whose variances follow a scaled-inv-chi^2(8, 4)
    rng = np.random.default_rng(1)
    n_workers = 150
    bias = rng.normal(0, 3, n_workers)
    sd = np.sqrt(8 * 4.0 / rng.chisquare(8, n_workers))
    rows, truth = _numeric_crowd(rng, 3000, n_workers, 5, bias, sd)
    model = BiasVarianceModel().fit(rows)
    assert model.bias_prior_variance_ == pytest.approx(9.0, rel=0.35)
    d0, s02 = model.variance_prior_
    assert 3 < d0 < 30
    assert s02 == pytest.approx(4.0, rel=0.35)
    est = np.array([model.labels_[t] for t in range(3000)])
    mean = np.array([Mean().fit(rows).labels_[t] for t in range(3000)])
    assert np.abs(est - truth).mean() < 0.9 * np.abs(mean - truth).mean()


def test_bias_variance_collapses_to_the_mean_for_identical_workers() -> None:
    # no offsets, equal noise: the evidence says workers do not differ, so the model is the mean
    rng = np.random.default_rng(2)
    n_workers = 60
    rows, truth = _numeric_crowd(rng, 1500, n_workers, 5, np.zeros(n_workers), np.full(n_workers, 2.0))
    model = BiasVarianceModel().fit(rows)
    assert model.bias_prior_variance_ < 0.05
    assert model.variance_prior_[0] > 100  # d0: prior worth 100+ answers (or inf)
    est = np.array([model.labels_[t] for t in range(1500)])
    mean = np.array([Mean().fit(rows).labels_[t] for t in range(1500)])
    assert np.abs(est - mean).mean() < 0.05  # prior_strength=3 moves them by 0.17 (and loses to the mean)
    assert np.abs(est - truth).mean() < 1.01 * np.abs(mean - truth).mean()

"""Dawid-Skene family: known cases, determinism, invariants, accuracy, and the single-task update."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthset.quality import GLAD, MACE, DawidSkene, MajorityVote, OneCoinDawidSkene, Wawa, task_posterior

EM_MODELS = [DawidSkene, OneCoinDawidSkene, MACE, GLAD]
ALL_MODELS = [MajorityVote, Wawa, *EM_MODELS]


def _accuracy(labels: dict, truth: np.ndarray) -> float:
    return float(np.mean([labels[t] == truth[t] for t in range(len(truth))]))


@pytest.mark.parametrize("model", EM_MODELS)
def test_em_models_beat_majority_vote_on_synthetic_crowd(model, small_crowd) -> None:
    task, worker, label, truth = small_crowd
    mv = _accuracy(MajorityVote().fit((task, worker, label)).labels_, truth)
    acc = _accuracy(model().fit((task, worker, label)).labels_, truth)
    assert acc >= mv - 0.005
    assert acc > 0.85


def test_ds_recovers_worker_accuracy(small_crowd) -> None:
    task, worker, label, truth = small_crowd
    ds = DawidSkene().fit((task, worker, label))
    true_acc = np.array([np.mean(label[worker == w] == truth[task[worker == w]]) for w in range(30)])
    est = np.array([ds.skills_[w] for w in range(30)])
    assert np.corrcoef(true_acc, est)[0, 1] > 0.9


@pytest.mark.parametrize("model", ALL_MODELS)
def test_deterministic(model, small_crowd) -> None:
    task, worker, label, _ = small_crowd
    a = model().fit((task, worker, label))
    b = model().fit((task, worker, label))
    assert a.labels_ == b.labels_
    assert a.probas_ == b.probas_


@pytest.mark.parametrize("model", ALL_MODELS)
def test_row_order_and_id_renaming_do_not_matter(model, small_crowd) -> None:
    task, worker, label, _ = small_crowd
    base = model().fit((task, worker, label))
    perm = np.random.default_rng(3).permutation(len(task))
    # rename ids with an order-preserving map so tie-breaking by sorted label is unchanged
    shuffled = model().fit((task[perm] + 1000, np.char.add("w", worker[perm].astype(str)), label[perm]))
    for t in range(0, 400, 37):
        assert shuffled.labels_[t + 1000] == base.labels_[t]
        assert shuffled.probas_[t + 1000] == pytest.approx(base.probas_[t], abs=1e-9)


def test_single_perfect_worker_ds_equals_mv() -> None:
    # one worker answering every task: there is nothing to weigh, DS must return that worker's labels
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 50)
    rows = (np.arange(50), np.zeros(50, dtype=int), labels)
    assert DawidSkene().fit(rows).labels_ == MajorityVote().fit(rows).labels_


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.integers(0, 5), st.sampled_from(["a", "b", "c"])),
        min_size=1,
        max_size=60,
    )
)
def test_probas_are_distributions(rows) -> None:
    tasks, workers, labels = (list(c) for c in zip(*rows, strict=True))
    for model in (MajorityVote, Wawa, DawidSkene, OneCoinDawidSkene, MACE):
        fitted = model().fit((tasks, workers, labels))
        for t, dist in fitted.probas_.items():
            assert sum(dist.values()) == pytest.approx(1.0)
            assert all(0.0 <= p <= 1.0 for p in dist.values())
            assert dist[fitted.labels_[t]] == max(dist.values())


def test_hand_computed_two_workers() -> None:
    # an expert always right and a contrarian always wrong (binary): DS learns to flip the contrarian
    truth = np.array([0, 1] * 20)
    tasks = np.concatenate([np.arange(40), np.arange(40), np.arange(40)])
    workers = np.array(["expert"] * 40 + ["contrarian"] * 40 + ["expert2"] * 40)
    labels = np.concatenate([truth, 1 - truth, truth])
    ds = DawidSkene().fit((tasks, workers, labels))
    assert [ds.labels_[t] for t in range(40)] == truth.tolist()
    assert ds.errors_["contrarian"][0][1] > 0.8  # P(says 1 | truth 0)
    assert ds.skills_["contrarian"] < 0.2


def test_few_answers_do_not_give_confident_confusion_matrix(small_crowd) -> None:
    task, worker, label, _ = small_crowd
    extra = (np.array([0, 1, 2]), np.array([999, 999, 999]), label[[0, 5, 10]])  # agrees with MV
    rows = tuple(np.concatenate([a, b]) for a, b in zip((task, worker, label), extra, strict=True))
    ds = DawidSkene().fit(rows)
    matrix = np.array([list(row.values()) for row in ds.errors_[999].values()])
    assert matrix.diagonal().max() < 0.9  # three answers: still close to the average worker


def test_convergence_needs_patience(small_crowd) -> None:
    task, worker, label, _ = small_crowd
    ds = DawidSkene(patience=3).fit((task, worker, label))
    changes = np.abs(np.diff(ds.loss_history_))
    assert ds.n_iter_ < ds.n_iter  # it did converge
    assert (changes[-3:] < ds.tol).all()


def test_task_posterior_matches_fitted_e_step(small_crowd) -> None:
    task, worker, label, _ = small_crowd
    ds = DawidSkene(calibrate=False).fit((task, worker, label))
    for t in (0, 17, 399):
        rows = task == t
        post = task_posterior(worker[rows], label[rows], ds.errors_array_, ds.priors_array_)
        np.testing.assert_allclose(post, ds.em_posteriors_[t], atol=1e-9)
        assert post.sum() == pytest.approx(1.0)


def test_task_posterior_method_accepts_raw_ids_and_unknown_workers(small_crowd) -> None:
    task, worker, label, _ = small_crowd
    ds = DawidSkene().fit((task, worker, label))
    post = ds.task_posterior([0, 1, "new-worker"], [2, 2, 2])
    assert set(post) == {0, 1, 2}
    assert post[2] == max(post.values())
    assert sum(post.values()) == pytest.approx(1.0)


def test_calibration_tempers_overconfident_posteriors(small_crowd) -> None:
    task, worker, label, _ = small_crowd
    ds = DawidSkene().fit((task, worker, label))
    assert 0.05 <= ds.temperature_ <= 1.0
    raw = ds.em_posteriors_.max(axis=1).mean()
    assert ds.probas_array_.max(axis=1).mean() <= raw + 1e-9


def test_dataframe_output_layout(small_crowd) -> None:
    task, worker, label, _ = small_crowd
    df = pd.DataFrame({"task": task, "worker": worker, "label": label})
    ds = DawidSkene().fit(df)
    assert isinstance(ds.probas_, pd.DataFrame) and ds.probas_.shape == (400, 3)
    assert ds.errors_.index.names == ["worker", "label"]
    np.testing.assert_allclose(ds.errors_.groupby(level="worker").sum().to_numpy(), 1.0)


def test_empty_input() -> None:
    ds = DawidSkene().fit(([], [], []))
    assert ds.labels_ == {}

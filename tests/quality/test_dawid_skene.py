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


CALIBRATED = [DawidSkene, OneCoinDawidSkene, MACE, GLAD]


@pytest.mark.parametrize("model", CALIBRATED)
def test_calibration_never_changes_labels(model, small_crowd) -> None:
    # labels_ are the argmax of the full-data EM posterior; calibration only reshapes probas_
    task, worker, label, _ = small_crowd
    calibrated = model().fit((task, worker, label))
    raw = model(calibrate=False).fit((task, worker, label))
    assert calibrated.temperature_ < 1.0  # calibration did act on this crowd
    assert calibrated.labels_ == raw.labels_
    np.testing.assert_array_equal(calibrated.label_codes_, calibrated.em_posteriors_.argmax(axis=1))
    np.testing.assert_array_equal(calibrated.label_codes_, calibrated.probas_array_.argmax(axis=1))
    for t, dist in calibrated.probas_.items():
        assert max(dist, key=dist.get) == calibrated.labels_[t]


@pytest.mark.parametrize("model", CALIBRATED)
def test_probas_are_the_em_logits_tempered(model, small_crowd) -> None:
    # softmax(T * logits) with one T for every task: the log-odds shrink by exactly T
    task, worker, label, _ = small_crowd
    fitted = model().fit((task, worker, label))
    raw_log_odds = np.log(fitted.em_posteriors_[:, 1] / fitted.em_posteriors_[:, 0])
    log_odds = np.log(fitted.probas_array_[:, 1] / fitted.probas_array_[:, 0])
    np.testing.assert_allclose(log_odds, fitted.temperature_ * raw_log_odds, rtol=1e-6, atol=1e-9)


def test_ties_stay_ties_after_calibration() -> None:
    # two workers who always disagree on a balanced binary crowd: every task is an exact tie, and
    # the tie must break the same way (the smallest label) in labels_ and probas_
    tasks = np.repeat(np.arange(20), 2)
    workers = np.tile(["a", "b"], 20)
    labels = np.tile([0, 1], 20)
    ds = DawidSkene().fit((tasks, workers, labels))
    assert set(ds.labels_.values()) == {0}
    for t in range(20):
        assert ds.probas_[t][0] == ds.probas_[t][1] == pytest.approx(0.5)


def test_incremental_posterior_matches_calibrated_probas(small_crowd) -> None:
    task, worker, label, _ = small_crowd
    ds = DawidSkene().fit((task, worker, label))
    for t in (0, 17, 399):
        rows = task == t
        post = ds.task_posterior(worker[rows].tolist(), label[rows].tolist())
        assert post == pytest.approx(ds.probas_[t], abs=1e-9)


def test_temperature_is_fitted_on_a_fixed_seed_sample(crowd_maker, monkeypatch) -> None:
    # a sample smaller than the data: the result is still deterministic and the labels unchanged
    from truthset.quality import _em

    task, worker, label, _ = crowd_maker(n_tasks=3000, n_workers=40)
    full = DawidSkene().fit((task, worker, label))
    monkeypatch.setattr(_em, "CALIBRATION_ANSWERS", 2000)
    a = DawidSkene().fit((task, worker, label))
    b = DawidSkene().fit((task, worker, label))
    assert len(_em.calibration_sample(a.data_)) < 2100
    assert a.temperature_ == b.temperature_
    assert a.labels_ == full.labels_
    assert abs(a.temperature_ - full.temperature_) < 0.1


def test_glad_uses_a_uniform_class_prior_unless_asked() -> None:
    # 90% negatives; workers miss positives (answer 0 for a 1) but rarely invent them. GLAD's errors
    # are symmetric, so an estimated prior absorbs the asymmetry and overrules 2-of-3 positive votes.
    rng = np.random.default_rng(5)
    truth = (rng.random(3000) < 0.1).astype(int)
    tasks = np.repeat(np.arange(3000), 3)
    workers = np.concatenate([rng.choice(40, 3, replace=False) for _ in range(3000)])
    t = truth[tasks]
    flip = rng.random(len(tasks)) < np.where(t == 1, 0.3, 0.03)
    labels = np.where(flip, 1 - t, t)
    uniform = GLAD().fit((tasks, workers, labels))
    fitted = GLAD(fit_class_priors=True).fit((tasks, workers, labels))
    pos = np.flatnonzero(truth == 1)
    recall = lambda m: np.mean([m.labels_[i] == 1 for i in pos])  # noqa: E731
    assert recall(uniform) > recall(fitted)


def test_em_engine_buffers_match_the_plain_em_step(small_crowd) -> None:
    """The buffered EM loop returns the E-step of its own M-step, with priors from the counted posteriors."""
    from truthset.quality._base import normalize_rows, vote_table
    from truthset.quality._em import (
        Design,
        anchored_class_priors,
        class_priors,
        fit_confusion_em,
        moment_class_priors,
        softmax_rows,
    )
    from truthset.quality._input import factorize_answers

    task, worker, label, _ = small_crowd
    data = factorize_answers((task, worker, label))
    design = Design.from_answers(data)
    model = DawidSkene(calibrate=False)
    model._s_prev = None
    model._prepare(data)
    init = normalize_rows(vote_table(data))
    priors_of = model._priors_of(data, init)
    res = fit_confusion_em(design, init, model._project, n_iter=100, tol=1e-6, patience=3, priors_of=priors_of)
    # the CSC-view M-step product equals the CSR product, summed in the same order
    assert np.array_equal(
        design.counts(res.count_posteriors),
        (design.A.T.tocsr() @ res.count_posteriors).reshape(data.n_workers, data.n_labels, -1).transpose(0, 2, 1),
    )
    # the priors of the last E-step come from the posteriors the last M-step counted
    anchored = anchored_class_priors(res.count_posteriors.sum(axis=0), data.n_tasks, moment_class_priors(data))
    np.testing.assert_allclose(res.priors, anchored, rtol=1e-12)
    assert not np.allclose(anchored, class_priors(res.count_posteriors))  # not the plain Laplace mean
    logits = design.log_likelihood(np.log(res.errors)) + np.log(res.priors)
    np.testing.assert_allclose(res.logits, logits, rtol=1e-12)
    np.testing.assert_allclose(res.posteriors, softmax_rows(logits)[0], rtol=1e-12, atol=1e-15)
    assert res.posteriors.flags.c_contiguous and not np.shares_memory(res.posteriors, res.count_posteriors)


def _sparse_structured_crowd(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """3 answers per task, ~15 per worker, 4 classes, workers with their own structured confusions."""
    rng = np.random.default_rng(seed)
    n_tasks, overlap, n_workers, n_k = 1500, 3, 300, 4
    truth = rng.integers(0, n_k, n_tasks)
    diag = rng.beta(4.0, 1.5, size=(n_workers, n_k))
    conf = rng.dirichlet(np.full(n_k - 1, 0.7), size=(n_workers, n_k)) * (1 - diag)[..., None]
    conf = np.stack([np.insert(conf[:, k], k, diag[:, k], axis=1) for k in range(n_k)], axis=1)  # (W, K, K)
    task = np.repeat(np.arange(n_tasks), overlap)
    worker = np.concatenate([rng.choice(n_workers, overlap, replace=False) for _ in range(n_tasks)])
    cdf = conf[worker, truth[task]].cumsum(axis=1)
    label = (rng.random(len(task))[:, None] > cdf[:, :-1]).sum(axis=1)
    return task, worker, label, truth


def test_prior_strength_on_a_sparse_crowd_matches_the_strength_of_the_true_labels() -> None:
    """The evidence over label draws finds how much workers differ; expected counts said 'all alike'.

    On 3 answers per task the expected-count evidence ran to the upper bound (10^4: every worker
    scored as the average worker), worse than majority vote. The strength must instead be close to
    the type-II ML strength of the counts under the TRUE labels, and the labels beat majority vote.
    """
    from truthset.quality._em import fit_prior_strength, pooled_confusion

    task, worker, label, truth = _sparse_structured_crowd()
    ds = DawidSkene(calibrate=False).fit((task, worker, label))
    oracle_counts = np.zeros((300, 4, 4))
    np.add.at(oracle_counts, (worker, truth[task], label), 1.0)
    oracle = fit_prior_strength(oracle_counts, pooled_confusion(oracle_counts), (0.5, 1e4))
    assert oracle < 20
    assert oracle / 2 < ds.prior_strength_ < oracle * 2
    ds_acc = np.mean([ds.labels_[t] == truth[t] for t in range(len(truth))])
    mv_acc = np.mean([MajorityVote().fit((task, worker, label)).labels_[t] == truth[t] for t in range(len(truth))])
    assert ds_acc > mv_acc + 0.01


def test_strength_draws_are_the_true_label_counts_when_posteriors_are_certain(small_crowd) -> None:
    from truthset.quality._em import StrengthDraws
    from truthset.quality._input import factorize_answers

    task, worker, label, truth = small_crowd
    data = factorize_answers((task, worker, label))
    draws = StrengthDraws.from_answers(data)
    assert len(draws.uniforms) > 1  # a small input gets several draws
    certain = np.eye(data.n_labels)[truth]
    expected = np.zeros((data.n_workers, data.n_labels, data.n_labels))
    np.add.at(expected, (worker, truth[task], label), 1.0)
    counts = draws.counts(certain).reshape(len(draws.uniforms), data.n_workers, data.n_labels, data.n_labels)
    for block in counts:
        np.testing.assert_array_equal(block, expected)
    # uncertain posteriors: every draw still counts each answer exactly once, and draws differ
    soft = normalize_rows_of(np.random.default_rng(1).random((data.n_tasks, data.n_labels)))
    blocks = draws.counts(soft).reshape(len(draws.uniforms), data.n_workers, -1)
    assert (blocks.sum(axis=2) == np.bincount(worker, minlength=data.n_workers)).all()
    assert not np.array_equal(blocks[0], blocks[1])
    np.testing.assert_array_equal(draws.counts(soft), StrengthDraws.from_answers(data).counts(soft))


def test_strength_draws_thin_large_inputs_to_whole_tasks(crowd_maker) -> None:
    from truthset.quality._em import StrengthDraws
    from truthset.quality._input import factorize_answers

    task, worker, label, _ = crowd_maker(n_tasks=2000, overlap=5)
    data = factorize_answers((task, worker, label))
    draws = StrengthDraws.from_answers(data, max_answers=2000)
    assert len(draws.tasks) == 400 and len(draws.cell) == 2000  # whole tasks: 400 x 5 answers
    assert len(draws.uniforms) == 16  # few drawn answers per draw: the most draws


def test_strength_is_the_upper_bound_when_no_worker_answered_twice() -> None:
    # one answer per worker: the evidence of a single answer is the prior mean for every strength
    from truthset.quality._em import fit_prior_strength

    counts = np.zeros((3, 2, 2))
    counts[0, 0, 0] = counts[1, 0, 1] = counts[2, 1, 1] = 1.0
    assert fit_prior_strength(counts, np.full((2, 2), 0.5), (0.5, 1e4)) == 1e4
    # so three workers on one task act like a majority vote
    assert DawidSkene().fit((["t"] * 3, ["a", "b", "c"], [0, 1, 0])).labels_ == {"t": 0}


def normalize_rows_of(matrix: np.ndarray) -> np.ndarray:
    return matrix / matrix.sum(axis=1, keepdims=True)


def _log_evidence_per_worker(counts: np.ndarray, pooled: np.ndarray, s: float) -> float:
    """The Dirichlet-multinomial evidence of a strength summed worker by worker (the definition)."""
    from scipy.special import gammaln

    total = 0.0
    for worker_counts in counts:
        for k, row in enumerate(worker_counts):
            if row.sum() > 1:
                alpha = s * pooled[k]
                total += gammaln(s) - gammaln(row.sum() + s) + (gammaln(row + alpha) - gammaln(alpha)).sum()
    return total


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), whole=st.booleans())
def test_strength_grouped_by_distinct_counts_maximises_the_per_worker_evidence(seed: int, whole: bool) -> None:
    """The strength is computed over distinct (class, label, count) cells, whole or fractional counts;
    it must still be the maximum of the evidence summed worker by worker."""
    from truthset.quality._em import fit_prior_strength, pooled_confusion

    rng = np.random.default_rng(seed)
    counts = rng.poisson(1.5, size=(30, 3, 3)).astype(float)
    if not whole:
        counts += rng.random(counts.shape)  # soft counts take the sorted path
    pooled = pooled_confusion(counts)
    s = fit_prior_strength(counts, pooled, (0.5, 1e4))
    best = _log_evidence_per_worker(counts, pooled, s)
    for other in (s * 0.8, s * 1.25):
        if 0.5 <= other <= 1e4:
            assert best >= _log_evidence_per_worker(counts, pooled, other) - 1e-9


def test_distinct_counts_whole_and_sorted_paths_agree() -> None:
    from truthset.quality._em import _distinct

    rng = np.random.default_rng(3)
    keys = rng.integers(0, 9, 5000)
    values = rng.integers(0, 12, 5000).astype(float)
    fast = _distinct(keys, values)
    pairs, times = np.unique(np.stack([keys, values]), axis=1, return_counts=True)
    np.testing.assert_array_equal(fast[0], pairs[0])
    np.testing.assert_array_equal(fast[1], pairs[1])
    np.testing.assert_array_equal(fast[2], times)
    shifted = _distinct(keys, values + 0.5)  # not whole: sorted
    np.testing.assert_array_equal(shifted[1], pairs[1] + 0.5)
    np.testing.assert_array_equal(shifted[2], times)

"""NumericWorkerModel: per-worker noise from leave-one-out residuals, confidence from measured errors."""

from __future__ import annotations

import numpy as np
import pytest

from truthset.quality import NumericWorkerModel, model_from_bytes, weighted_median


def _crowd(seed: int, tasks: int = 200, per_task: int = 3, shared_sd: float = 0.0):
    """Careful workers (noise sd 1), sloppy ones (sd 10); each task answered by ``per_task`` of them.
    ``shared_sd``: an error every worker of a task makes (answers alone cannot see it)."""
    rng = np.random.default_rng(seed)
    workers = {"careful-0": 1.0, "careful-1": 1.0, "careful-2": 1.0, "sloppy-0": 10.0, "sloppy-1": 10.0}
    truth = rng.uniform(0, 100, tasks)
    rows: tuple[list[str], list[str], list[float]] = ([], [], [])
    for j in range(tasks):
        seen = truth[j] + rng.normal(0, shared_sd) if shared_sd else truth[j]
        for name in rng.choice(list(workers), per_task, replace=False):
            rows[0].append(f"t{j}")
            rows[1].append(str(name))
            rows[2].append(float(seen + rng.normal(0, workers[str(name)])))
    return rows, {f"t{j}": float(truth[j]) for j in range(tasks)}


def _by_task(rows):
    out: dict[str, tuple[list[str], list[float]]] = {}
    for task, worker, value in zip(*rows, strict=True):
        out.setdefault(task, ([], []))
        out[task][0].append(worker)
        out[task][1].append(value)
    return out


def test_the_fit_tells_careful_workers_from_sloppy_ones() -> None:
    rows, _truth = _crowd(seed=3, per_task=3)
    model = NumericWorkerModel.fit(*rows)
    sd = dict(zip(model.workers, np.sqrt(model.variances), strict=True))
    assert max(sd[f"careful-{i}"] for i in range(3)) < 3.5, sd
    assert min(sd[f"sloppy-{i}"] for i in range(2)) > 7.0, sd
    # two answers per task say less about each worker (a careful one paired with a sloppy one looks
    # like either), yet the two kinds still come apart
    rows, _truth = _crowd(seed=2, per_task=2)
    model = NumericWorkerModel.fit(*rows)
    sd = dict(zip(model.workers, np.sqrt(model.variances), strict=True))
    assert np.mean([sd[f"careful-{i}"] for i in range(3)]) < 4 < np.mean([sd[f"sloppy-{i}"] for i in range(2)]), sd


def test_weighing_by_noise_beats_the_mean() -> None:
    rows, truth = _crowd(seed=7)
    model = NumericWorkerModel.fit(*rows)
    weighted, plain = [], []
    for task, (workers, values) in _by_task(rows).items():
        weighted.append(abs(model.estimate(workers, values)[0] - truth[task]))
        plain.append(abs(np.mean(values) - truth[task]))
    assert np.mean(weighted) < 0.6 * np.mean(plain), (np.mean(weighted), np.mean(plain))


def _stated_and_measured(model, by_task, truth, tasks, tolerance):
    stated, right = [], []
    for task in tasks:
        mean, sd = model.estimate(*by_task[task])
        stated.append(model.probability_within(mean, mean, sd, tolerance))
        right.append(abs(mean - truth[task]) <= tolerance)
    return float(np.mean(stated)), float(np.mean(right))


def test_without_gold_the_confidence_is_cautious_and_gold_makes_it_match() -> None:
    rows, truth = _crowd(seed=11, tasks=600)
    model = NumericWorkerModel.fit(*rows)
    by_task = _by_task(rows)
    gold, scored = list(by_task)[:150], list(by_task)[150:]
    calibrated = model.calibrated_on([by_task[task] for task in gold], [truth[task] for task in gold])
    assert calibrated.shared_variance < 0.5 < model.shared_variance  # this crowd shares no error
    for tolerance in (0.5, 1.0, 3.0):
        stated, measured = _stated_and_measured(model, by_task, truth, scored, tolerance)
        assert stated <= measured + 0.02, (tolerance, stated, measured)  # a shared error is assumed
        stated, measured = _stated_and_measured(calibrated, by_task, truth, scored, tolerance)
        assert abs(stated - measured) < 0.06, (tolerance, stated, measured)


def test_gold_measures_an_error_the_crowd_shares() -> None:
    rows, truth = _crowd(seed=13, tasks=600, shared_sd=4.0)
    model = NumericWorkerModel.fit(*rows)
    by_task = _by_task(rows)
    gold, scored = list(by_task)[:150], list(by_task)[150:]
    calibrated = model.calibrated_on([by_task[task] for task in gold], [truth[task] for task in gold])
    assert calibrated.gold_tasks == 150
    assert 3.0 < calibrated.shared_variance**0.5 < 5.0
    stated, measured = _stated_and_measured(calibrated, by_task, truth, scored, 2.0)
    assert abs(stated - measured) < 0.06, (stated, measured)


def test_one_answer_is_never_certain_and_a_wider_tolerance_is_never_less_likely() -> None:
    rows, _truth = _crowd(seed=17)
    model = NumericWorkerModel.fit(*rows)
    mean, sd = model.estimate(["careful-0"], [50.0])
    chances = [model.probability_within(50.0, mean, sd, tolerance) for tolerance in (0.1, 1, 5, 50, 1000)]
    assert chances == sorted(chances)
    assert chances[0] > 0 and chances[-1] < 1
    # an unknown worker counts as the pooled average: between a careful and a sloppy one
    sd_of = {worker: model.estimate([worker], [0.0])[1] for worker in ("careful-0", "new", "sloppy-0")}
    assert sd_of["careful-0"] < sd_of["new"] < sd_of["sloppy-0"]
    # off-centre answers are less likely right than the estimate itself
    assert model.probability_within(mean + 3 * sd, mean, sd, 1.0) < model.probability_within(mean, mean, sd, 1.0)


def test_a_fit_needs_a_task_answered_twice() -> None:
    with pytest.raises(ValueError, match="two answers"):
        NumericWorkerModel.fit(["a", "b"], ["w1", "w2"], [1.0, 2.0])


def test_a_stored_model_loads_as_what_it_was() -> None:
    rows, truth = _crowd(seed=19)
    by_task = _by_task(rows)
    model = NumericWorkerModel.fit(*rows).calibrated_on(list(by_task.values())[:40], list(truth.values())[:40])
    loaded = model_from_bytes(model.to_bytes())
    assert isinstance(loaded, NumericWorkerModel)
    assert loaded.workers == model.workers and loaded.gold_tasks == 40
    assert loaded.shared_variance == model.shared_variance
    pair = (["careful-1", "sloppy-0"], [3.0, 9.0])
    assert loaded.estimate(*pair) == model.estimate(*pair)


def test_the_weighted_median_is_an_answer_or_a_tie_of_two() -> None:
    assert weighted_median([1, 5, 2], [1, 1, 1]) == 2
    assert weighted_median([1, 5], [1, 3]) == 5
    assert weighted_median([4, 2], [1, 1]) == (2, 4)  # half the weight on each: the answers cannot decide
    assert weighted_median([3, 3], [1, 1]) == 3


def test_a_worker_whose_answers_never_met_another_is_not_known() -> None:
    rows, _truth = _crowd(seed=23)
    alone = (["solo-1", "solo-2"], ["lonely", "lonely"], [5.0, 6.0])  # tasks nobody else answered
    model = NumericWorkerModel.fit(*(a + b for a, b in zip(rows, alone, strict=True)))
    assert "lonely" not in model.workers and "careful-0" in model.workers
    assert model.variances_of(["lonely"])[0] == model.mean_variance

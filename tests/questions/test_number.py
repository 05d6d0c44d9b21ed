"""The `number` question type: config, answer validation, aggregation and agreement on hand-worked cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from truthset.questions import AnswerError, Spec, get
from truthset.questions.number import NumberQuestion

NUMBER = get("number")


def question(**config: Any) -> NumberQuestion:
    return NumberQuestion.model_validate({"name": "count", "type": "number", "min": 0, "max": 100, **config})


def spec_error(**config: Any) -> str:
    raw = {"name": "count", "type": "number", **config}
    with pytest.raises(ValueError) as caught:
        Spec.model_validate({"fields": [{"name": "text", "type": "text"}], "questions": [raw]})
    return str(caught.value)


def test_bad_configs_are_refused_naming_the_field() -> None:
    assert "questions[0].max: Field required" in spec_error(min=0)
    assert "questions[0]: max must be greater than min" in spec_error(min=5, max=5)
    assert "questions[0].step: Input should be greater than 0" in spec_error(min=0, max=5, step=0)
    assert "questions[0]: step must be at most max - min" in spec_error(min=0, max=5, step=10)
    assert "questions[0].tolerance" in spec_error(min=0, max=5, tolerance=-1)
    assert "questions[0].estimator" in spec_error(min=0, max=5, estimator="mode")
    assert "questions[0].colour" in spec_error(min=0, max=5, colour="red")


@pytest.mark.parametrize(
    ("value", "stored"),
    [(0, 0), (100, 100), (3.0, 3), (2.5, 2.5), (0.3, 0.3)],
)
def test_answers_within_bounds_are_kept_whole_numbers_as_ints(value: float, stored: float) -> None:
    result = NUMBER.validate_answer(question(), value)
    assert result == stored and type(result) is type(stored)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "must be a number"),
        (True, "must be a number"),
        (None, "must be a number"),
        (float("nan"), "must be a number"),
        (float("inf"), "must be a number"),
        (-1, "must be between 0 and 100"),
        (100.5, "must be between 0 and 100"),
    ],
)
def test_bad_answers_are_refused(value: Any, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        NUMBER.validate_answer(question(), value)


def test_answers_must_sit_on_the_step_grid_from_min_with_float_slack() -> None:
    tenths = question(min=0.2, max=1, step=0.1)
    assert NUMBER.validate_answer(tenths, 0.7) == 0.7  # (0.7 - 0.2) / 0.1 = 4.999999999999999
    assert NUMBER.validate_answer(tenths, 0.2) == 0.2
    with pytest.raises(AnswerError, match=r"must be 0.2 plus a multiple of 0.1"):
        NUMBER.validate_answer(tenths, 0.25)
    odd = question(min=1, max=9, step=2)
    assert NUMBER.validate_answer(odd, 7) == 7
    with pytest.raises(AnswerError, match="must be 1 plus a multiple of 2"):
        NUMBER.validate_answer(odd, 4)


def test_one_answer_is_the_result_at_two_thirds_confidence() -> None:
    agg = NUMBER.aggregate(question(), [42], ["w1"])
    assert (agg.value, agg.tie, agg.method) == (42, None, "median")
    assert agg.confidence == pytest.approx(2 / 3)


def test_median_ignores_an_outlier_and_confidence_counts_answers_within_tolerance() -> None:
    # tolerance defaults to 1% of the range: 1.0. Within 1 of the median 10: 10, 10.5, 9 -> (3 + 1) / (4 + 2)
    agg = NUMBER.aggregate(question(), [10, 10.5, 9, 80, 10], ["a", "b", "c", "d", "e"])
    assert agg.value == 10
    assert agg.confidence == pytest.approx((4 + 1) / (5 + 2))
    assert agg.details is not None and agg.details["tolerance"] == 1.0
    assert agg.details["mean"] == pytest.approx(23.9)


def test_mean_estimator_is_named_in_the_method() -> None:
    agg = NUMBER.aggregate(question(estimator="mean"), [10, 12, 14], ["a", "b", "c"])
    assert (agg.value, agg.method) == (12, "mean")
    # tolerance 1: only 12 lies within 1 of 12
    assert agg.confidence == pytest.approx((1 + 1) / (3 + 2))


def test_an_even_split_between_two_clusters_is_a_tie_never_a_value_between_them() -> None:
    agg = NUMBER.aggregate(question(), [20, 21, 60, 61], ["a", "b", "c", "d"])
    assert agg.value is None and agg.tie == [21, 60]
    assert agg.confidence == pytest.approx(1 / 6)  # nobody is within 1 of 40.5


def test_an_even_split_within_tolerance_is_one_answer() -> None:
    agg = NUMBER.aggregate(question(tolerance=2), [20, 21, 22, 60], ["a", "b", "c", "d"])
    assert (agg.value, agg.tie) == (21.5, None)  # no step: the median as it is
    assert agg.confidence == pytest.approx((3 + 1) / (4 + 2))


def test_results_snap_to_the_step_grid_and_halfway_is_a_tie() -> None:
    counts = question(step=1)  # tolerance: one step
    assert NUMBER.aggregate(counts, [3, 4], ["a", "b"]).tie == [3, 4]
    assert NUMBER.aggregate(counts, [3, 4], ["a", "b"]).value is None
    mean = question(step=1, estimator="mean", tolerance=5)
    assert NUMBER.aggregate(mean, [3, 4, 4, 4], ["a", "b", "c", "d"]).value == 4  # 3.75 -> 4
    tenths = question(min=0, max=1, step=0.1)
    agg = NUMBER.aggregate(tenths, [0.1, 0.2, 0.3], ["a", "b", "c"])
    assert agg.value == 0.2 and agg.tie is None
    halves = question(min=0, max=1, step=0.1, estimator="mean", tolerance=1)
    assert NUMBER.aggregate(halves, [0.1, 0.2], ["a", "b"]).tie == [0.1, 0.2]  # 0.15: halfway
    assert NUMBER.aggregate(halves, [0.1, 0.2, 0.3, 0.3], ["a", "b", "c", "d"]).value == 0.2  # 0.225


def test_agreement_is_krippendorffs_alpha_at_the_interval_level() -> None:
    tasks = np.array([0, 0, 1, 1, 2, 2])
    workers = np.array([0, 1, 0, 1, 0, 1])
    perfect = NUMBER.agreement(question(), tasks, workers, [1, 1, 5, 5, 9, 9])
    assert perfect == {"krippendorff_alpha_interval": pytest.approx(1.0)}
    # hand-worked: units (1,2), (3,3), (5,6); pairable values n = 6, mean 10/3
    # D_o = sum over units of squared differences * 2 / (m_u - 1) / n = (2 * 1 + 2 * 1) / 6
    # D_e = sum over all ordered pairs of squared differences / (n (n - 1))
    values = [1, 2, 3, 3, 5, 6]
    x = np.array(values, dtype=float)
    d_o = (2 * 1 + 2 * 1) / 6
    d_e = float(((x[:, None] - x[None, :]) ** 2).sum()) / (6 * 5)
    measured = NUMBER.agreement(question(), tasks, workers, values)["krippendorff_alpha_interval"]
    assert measured == pytest.approx(1 - d_o / d_e)

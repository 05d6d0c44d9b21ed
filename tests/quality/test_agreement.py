"""Agreement metrics against published worked examples."""

from __future__ import annotations

import pytest

from truthset.quality import (
    MajorityVote,
    cohens_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
    worker_agreement,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 observers,
# 12 units, missing values (None).
KRIPP = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]

# Fleiss' kappa worked example (Wikipedia "Fleiss' kappa"): 10 subjects, 14 raters, 5 categories.
FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _rows_from_matrix(matrix: list[list[int | None]]) -> tuple[list, list, list]:
    tasks, workers, labels = [], [], []
    for worker, row in enumerate(matrix):
        for unit, value in enumerate(row):
            if value is not None:
                tasks.append(unit)
                workers.append(worker)
                labels.append(value)
    return tasks, workers, labels


def _rows_from_counts(table: list[list[int]]) -> tuple[list, list, list]:
    tasks, workers, labels = [], [], []
    for subject, counts in enumerate(table):
        rater = 0
        for category, n in enumerate(counts):
            for _ in range(n):
                tasks.append(subject)
                workers.append(rater)
                labels.append(category)
                rater += 1
    return tasks, workers, labels


@pytest.mark.parametrize(
    ("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_worked_example(level: str, expected: float) -> None:
    assert krippendorff_alpha(_rows_from_matrix(KRIPP), level) == pytest.approx(expected, abs=5e-4)


def test_krippendorff_perfect_agreement_is_one() -> None:
    assert krippendorff_alpha(([1, 1, 2, 2], ["a", "b", "a", "b"], ["x", "x", "y", "y"])) == pytest.approx(1.0)


def test_fleiss_worked_example() -> None:
    rows = _rows_from_counts(FLEISS)
    assert fleiss_kappa(rows) == pytest.approx(0.210, abs=5e-4)
    assert percent_agreement(rows) == pytest.approx(0.378, abs=5e-4)


def test_cohens_kappa_textbook() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)


def test_cohens_kappa_rejects_mismatched_raters() -> None:
    with pytest.raises(ValueError):
        cohens_kappa([1, 2], [1])


def test_worker_agreement_with_aggregate() -> None:
    rows = (["t1", "t1", "t1", "t2", "t2", "t2"], ["a", "b", "c", "a", "b", "c"], [1, 1, 0, 0, 0, 0])
    labels = MajorityVote().fit(rows).labels_
    assert worker_agreement(rows, labels) == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.5})

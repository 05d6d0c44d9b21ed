"""Inter-annotator agreement: percent agreement, Cohen's and Fleiss' kappa, Krippendorff's alpha."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ._base import agreement_with, vote_table
from ._input import AnswersLike, factorize_answers
from ._output import as_vector

__all__ = [
    "cohens_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "percent_agreement",
    "worker_agreement",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]


def _pair_agreement(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per task: the share of ordered rater pairs that agree, and the number of raters."""
    n = counts.sum(axis=1)
    ok = n > 1
    agree = np.divide((counts * (counts - 1)).sum(axis=1), n * (n - 1), out=np.zeros(len(n)), where=ok)
    return agree[ok], n[ok]


def percent_agreement(answers: AnswersLike) -> float:
    """Mean over tasks (with 2+ answers) of the share of answer pairs that agree."""
    agree, _ = _pair_agreement(vote_table(factorize_answers(answers)))
    return float(agree.mean()) if agree.size else float("nan")


def fleiss_kappa(answers: AnswersLike) -> float:
    """Fleiss' kappa for any number of raters per task (tasks with one answer are skipped).

    ``kappa = (P_bar - P_e) / (1 - P_e)``: observed pairwise agreement against the agreement
    expected from the overall label shares. Reference: J. L. Fleiss, "Measuring nominal scale
    agreement among many raters", Psychological Bulletin 76(5):378-382, 1971,
    https://doi.org/10.1037/h0031619.
    """
    counts = vote_table(factorize_answers(answers))
    counts = counts[counts.sum(axis=1) > 1]
    agree, _ = _pair_agreement(counts)
    if agree.size == 0:
        return float("nan")
    shares = counts.sum(axis=0) / counts.sum()
    p_e = float((shares**2).sum())
    return float((agree.mean() - p_e) / (1.0 - p_e)) if p_e < 1 else 1.0


def cohens_kappa(rater_a: Sequence[Any], rater_b: Sequence[Any]) -> float:
    """Cohen's kappa of two raters who labelled the same items (same order).

    Reference: J. Cohen, "A Coefficient of Agreement for Nominal Scales", Educational and
    Psychological Measurement 20(1):37-46, 1960, https://doi.org/10.1177/001316446002000104.
    """
    a, b = np.asarray(rater_a), np.asarray(rater_b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("raters must give one label each for the same non-empty list of items")
    values, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    ca, cb = codes[: a.size], codes[a.size :]
    p_o = float((ca == cb).mean())
    k = len(values)
    p_e = float((np.bincount(ca, minlength=k) * np.bincount(cb, minlength=k)).sum()) / a.size**2
    return (p_o - p_e) / (1.0 - p_e) if p_e < 1 else 1.0


def krippendorff_alpha(answers: AnswersLike, level: Level = "nominal") -> float:
    """Krippendorff's alpha for nominal, ordinal, interval or ratio data, with missing answers.

    Built from the coincidence matrix ``o[c, k]`` (value pairs within a unit, each unit weighted by
    ``1 / (m_u - 1)``): ``alpha = 1 - (n - 1) * sum o_ck d_ck / sum n_c n_k d_ck``. Units with a
    single answer are not pairable and are dropped. Ordinal and interval levels need numeric
    labels (ordinal only uses their order).

    Reference: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability", University of
    Pennsylvania, 2011, https://repository.upenn.edu/asc_papers/43; K. Krippendorff, "Content
    Analysis: An Introduction to Its Methodology", 4th ed., SAGE, 2018.
    """
    data = factorize_answers(answers)
    counts = vote_table(data)  # units x values
    m = counts.sum(axis=1)
    counts, m = counts[m > 1], m[m > 1]
    if counts.size == 0:
        return float("nan")
    weighted = counts / (m - 1)[:, None]
    coincidence = counts.T @ weighted - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta = _distance(np.asarray(data.labels), n_c, level)
    observed = (coincidence * delta).sum()
    expected = (np.outer(n_c, n_c) * delta).sum() / (n - 1)
    return 1.0 - observed / expected if expected > 0 else 1.0


def _distance(values: np.ndarray, n_c: np.ndarray, level: Level) -> np.ndarray:
    """Squared difference function delta^2(c, k) for each pair of values (sorted, as coded)."""
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "ordinal":
        # distance = (values between c and k, inclusive, minus half of each end)^2, in counts
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        i, j = (
            np.minimum.outer(np.arange(len(values)), np.arange(len(values))),
            np.maximum.outer(np.arange(len(values)), np.arange(len(values))),
        )
        between = cum[j + 1] - cum[i] - (n_c[i] + n_c[j]) / 2.0
        return between**2
    x = values.astype(np.float64)
    if level == "interval":
        return np.subtract.outer(x, x) ** 2
    if level == "ratio":
        total = np.add.outer(x, x)
        return np.divide(np.subtract.outer(x, x), total, out=np.zeros_like(total), where=total != 0) ** 2
    raise ValueError(f"unknown level {level!r}")


def worker_agreement(answers: AnswersLike, labels: Mapping[Any, Any] | Any) -> Any:
    """Each worker's share of answers that equal the aggregate ``labels`` (task -> label)."""
    data = factorize_answers(answers)
    lookup = dict(labels) if isinstance(labels, Mapping) else labels.to_dict()
    code = {v: i for i, v in enumerate(data.labels.tolist())}
    agg = np.array([code.get(lookup.get(t), -1) for t in data.tasks.tolist()], dtype=np.int64)
    return as_vector(agreement_with(data, agg), data.workers, data.frame, index_name="worker", name="agreement")

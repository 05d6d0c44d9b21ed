"""Multi-label (``labels`` question type): one binary aggregation per label."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._base import CategoricalAggregator
from ._input import Answers, AnswersLike, factorize_answers, is_dataframe

__all__ = ["MultiLabel"]


class MultiLabel:
    """Aggregate "any of N" answers as N independent binary questions ("is label x present?").

    Each answer is a set of labels (an iterable; an empty set is a valid answer meaning none).
    For every label seen, a binary task ``x present?`` is built from every answer on the task
    (present if ``x`` is in the worker's set), aggregated with ``base`` (default: Dawid-Skene, so
    a worker has a separate false-positive and false-negative rate per label). This is the binary
    relevance reduction; see e.g. J. Li, H. Zhang et al., "Multi-label crowdsourcing",
    and M. Zhang and Z. Zhou, "A Review on Multi-Label Learning Algorithms", IEEE TKDE 26(8), 2014,
    https://doi.org/10.1109/TKDE.2013.39.

    Fitted: ``labels_`` task -> sorted list of labels with probability >= ``threshold``;
    ``probas_`` task -> {label: P(present)}.
    """

    def __init__(self, base: Callable[[], CategoricalAggregator] | None = None, threshold: float = 0.5) -> None:
        self.base = base
        self.threshold = threshold

    def fit(self, answers: AnswersLike) -> MultiLabel:
        tasks, workers, sets = _columns(answers)
        data = factorize_answers((tasks, workers, np.zeros(len(tasks), dtype=np.int64)))
        members = [frozenset(s) for s in sets]
        vocab = sorted({x for s in members for x in s})
        probas = np.zeros((data.n_tasks, len(vocab)))
        for j, name in enumerate(vocab):  # a loop over labels (not rows): one binary fit each
            present = np.fromiter((name in s for s in members), dtype=np.int64, count=len(members))
            probas[:, j] = self._binary_present(data, present)
        self.vocabulary_ = vocab
        self.probas_array_ = probas
        task_ids = data.tasks.tolist()
        self.probas_ = {t: dict(zip(vocab, row, strict=True)) for t, row in zip(task_ids, probas.tolist(), strict=True)}
        chosen = probas >= self.threshold
        self.labels_ = {t: [vocab[j] for j in np.flatnonzero(row)] for t, row in zip(task_ids, chosen, strict=True)}
        return self

    def _binary_present(self, data: Answers, present: np.ndarray) -> np.ndarray:
        """P(label present) per task from 0/1 answers, with both classes always in the label space."""
        from ._dawid_skene import DawidSkene

        model = self.base() if self.base is not None else DawidSkene()
        binary = Answers(data.task, data.worker, present, data.tasks, data.workers, np.array([0, 1]), frame=False)
        model.fit(binary)
        return model.probas_array_[:, 1]


def _columns(answers: AnswersLike) -> tuple[Any, Any, list[Iterable[Any]]]:
    if is_dataframe(answers):
        return answers["task"].to_numpy(), answers["worker"].to_numpy(), list(answers["label"])
    tasks, workers, sets = answers
    return tasks, workers, list(sets)

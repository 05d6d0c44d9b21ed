"""Input contract: rows of (task, worker, label), factorised once to integer codes.

Every estimator accepts either a pandas DataFrame with columns ``task, worker, label`` (crowd-kit's
contract) or a tuple ``(tasks, workers, labels)`` of equal-length sequences / numpy arrays. pandas is
imported lazily, and only when a DataFrame is handed in, so the package works without pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Answers", "AnswersLike", "factorize_answers", "is_dataframe"]

AnswersLike = Any  # a pandas DataFrame, or a tuple (tasks, workers, labels)


def is_dataframe(obj: object) -> bool:
    """True for a pandas DataFrame, detected without importing pandas."""
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")


@dataclass(frozen=True)
class Answers:
    """Factorised answers: integer codes plus the sorted unique values they index.

    ``task``, ``worker`` and ``label`` are int64 arrays of length n_answers; ``tasks``,
    ``workers`` and ``labels`` hold the original ids in sorted order, so code ``i`` of ``label``
    means ``labels[i]``. Sorted order makes ties break towards the smallest label and makes results
    independent of the order of the rows.
    """

    task: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    tasks: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    frame: bool  # True when the input was a DataFrame: results are then returned as pandas objects

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return len(self.task)


def _factorize_numpy(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError("answers columns must be one-dimensional")
    uniques, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64, copy=False), uniques


def _factorize_pandas(series: Any) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd  # lazily: only reached when the caller already has pandas

    # pd.factorize hashes instead of sorting all rows: much faster than np.unique on strings.
    codes, uniques = pd.factorize(series, sort=True)
    if (codes < 0).any():
        raise ValueError(f"column {series.name!r} contains missing values")
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def factorize_answers(answers: AnswersLike, label_column: str = "label") -> Answers:
    """Turn a DataFrame or a ``(tasks, workers, labels)`` tuple into an :class:`Answers`."""
    if isinstance(answers, Answers):
        return answers
    if is_dataframe(answers):
        missing = {"task", "worker", label_column} - set(answers.columns)
        if missing:
            raise ValueError(f"answers is missing column(s): {sorted(missing)}")
        t, tasks = _factorize_pandas(answers["task"])
        w, workers = _factorize_pandas(answers["worker"])
        lab, labels = _factorize_pandas(answers[label_column])
        return Answers(t, w, lab, tasks, workers, labels, frame=True)
    if not isinstance(answers, tuple | list) or len(answers) != 3:
        raise TypeError("answers must be a DataFrame (task, worker, label) or a tuple (tasks, workers, labels)")
    tasks_col, workers_col, labels_col = answers
    n = len(tasks_col)
    if len(workers_col) != n or len(labels_col) != n:
        raise ValueError("tasks, workers and labels must have the same length")
    t, tasks = _factorize_numpy(tasks_col)
    w, workers = _factorize_numpy(workers_col)
    lab, labels = _factorize_numpy(labels_col)
    return Answers(t, w, lab, tasks, workers, labels, frame=False)

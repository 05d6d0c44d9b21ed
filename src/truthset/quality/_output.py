"""Result representation: pandas objects for DataFrame input, plain dicts otherwise.

Internally every estimator works on dense numpy arrays indexed by integer codes. These helpers turn
them into what the caller expects: crowd-kit's pandas objects when the input was a DataFrame (so code
written against crowd-kit keeps working), or plain dicts when it was not (so the package runs
without pandas).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_labels", "as_matrix", "as_probas", "as_vector"]


def as_labels(values: np.ndarray, index: np.ndarray, frame: bool, name: str = "agg_label") -> Any:
    """A task -> value mapping: a pandas Series (index ``task``) or a dict."""
    if frame:
        import pandas as pd

        return pd.Series(values, index=pd.Index(index, name="task"), name=name)
    return dict(zip(index.tolist(), np.asarray(values).tolist(), strict=True))


def as_vector(values: np.ndarray, index: np.ndarray, frame: bool, index_name: str, name: str) -> Any:
    """A per-worker (or per-task) scalar: a pandas Series or a dict."""
    if frame:
        import pandas as pd

        return pd.Series(values, index=pd.Index(index, name=index_name), name=name)
    return dict(zip(index.tolist(), np.asarray(values).tolist(), strict=True))


def as_probas(probas: np.ndarray, tasks: np.ndarray, labels: np.ndarray, frame: bool) -> Any:
    """A task x label matrix: a pandas DataFrame, or a dict ``{task: {label: p}}``."""
    return as_matrix(probas, tasks, labels, frame, index_name="task", columns_name="label")


def as_matrix(
    matrix: np.ndarray,
    index: np.ndarray,
    columns: np.ndarray,
    frame: bool,
    index_name: str,
    columns_name: str,
) -> Any:
    if frame:
        import pandas as pd

        return pd.DataFrame(
            matrix,
            index=pd.Index(index, name=index_name),
            columns=pd.Index(columns, name=columns_name),
        )
    keys = columns.tolist()
    rows = zip(index.tolist(), matrix.tolist(), strict=True)
    return {row_id: dict(zip(keys, row, strict=True)) for row_id, row in rows}

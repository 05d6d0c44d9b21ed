"""truthset quality engine: aggregation, agreement and calibration in pure numpy/scipy.

Estimators follow crowd-kit's contract: ``fit(answers)`` takes rows of (task, worker, label) as a
pandas DataFrame or a tuple ``(tasks, workers, labels)``, returns self, and stores fitted state in
attributes ending in ``_`` (``labels_``, ``probas_``, ``skills_`` / ``errors_``). With DataFrame input
the results are pandas objects; otherwise plain dicts. See docs/quality.md.
"""

from ._input import Answers, factorize_answers
from ._voting import MajorityVote, Wawa

__all__ = [
    "Answers",
    "MajorityVote",
    "Wawa",
    "factorize_answers",
]

"""truthset quality engine: aggregation, agreement and calibration in pure numpy/scipy.

Estimators follow crowd-kit's contract: ``fit(answers)`` takes rows of (task, worker, label) as a
pandas DataFrame or a tuple ``(tasks, workers, labels)``, returns self, and stores fitted state in
attributes ending in ``_`` (``labels_``, ``probas_``, ``skills_`` / ``errors_``). With DataFrame input
the results are pandas objects; otherwise plain dicts. See docs/quality.md.
"""

from ._calibration import Evaluation, evaluate, expected_calibration_error
from ._dawid_skene import DawidSkene, OneCoinDawidSkene, task_posterior
from ._glad import GLAD
from ._input import Answers, factorize_answers
from ._mace import MACE
from ._voting import MajorityVote, Wawa

__all__ = [
    "GLAD",
    "MACE",
    "Answers",
    "DawidSkene",
    "Evaluation",
    "MajorityVote",
    "OneCoinDawidSkene",
    "Wawa",
    "evaluate",
    "expected_calibration_error",
    "factorize_answers",
    "task_posterior",
]

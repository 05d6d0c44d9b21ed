"""truthset quality engine: aggregation, agreement and calibration in pure numpy/scipy.

Estimators follow crowd-kit's contract: ``fit(answers)`` takes rows of (task, worker, label) as a
pandas DataFrame or a tuple ``(tasks, workers, labels)``, returns self, and stores fitted state in
attributes ending in ``_`` (``labels_``, ``probas_``, ``skills_`` / ``errors_``). With DataFrame input
the results are pandas objects; otherwise plain dicts. See docs/quality.md.
"""

from ._agreement import (
    cohens_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
    worker_agreement,
)
from ._calibration import Evaluation, evaluate, evaluate_numeric, expected_calibration_error
from ._dawid_skene import DawidSkene, OneCoinDawidSkene, task_posterior
from ._glad import GLAD
from ._input import Answers, factorize_answers
from ._io import (
    DEFAULT_METHOD,
    DEFAULT_NUMERIC_METHOD,
    METHODS,
    make_aggregator,
    read_answers_csv,
    read_truth_csv,
    write_results_csv,
)
from ._mace import MACE
from ._multilabel import MultiLabel
from ._numeric import BiasVarianceModel, Mean, Median
from ._numeric_model import NUMERIC_METHOD, NumericWorkerModel, weighted_median
from ._ranking import BradleyTerry, NoisyBradleyTerry, rankings_to_pairs
from ._shapes import DEFAULT_IOU, PairMatch, box_iou, cluster_shapes, match_pair, median_box, medoid, polygon_iou
from ._spans import SpanDecision, aggregate_spans, match_spans, pairwise_span_f1, span_f1_counts, span_iou
from ._voting import MajorityVote, Wawa, vote_shares
from ._worker_model import WorkerModel, model_from_bytes

__all__ = [
    "DEFAULT_IOU",
    "DEFAULT_METHOD",
    "DEFAULT_NUMERIC_METHOD",
    "GLAD",
    "MACE",
    "METHODS",
    "NUMERIC_METHOD",
    "Answers",
    "BiasVarianceModel",
    "BradleyTerry",
    "DawidSkene",
    "Evaluation",
    "MajorityVote",
    "Mean",
    "Median",
    "MultiLabel",
    "NoisyBradleyTerry",
    "NumericWorkerModel",
    "OneCoinDawidSkene",
    "PairMatch",
    "SpanDecision",
    "Wawa",
    "WorkerModel",
    "aggregate_spans",
    "box_iou",
    "cluster_shapes",
    "cohens_kappa",
    "evaluate",
    "evaluate_numeric",
    "expected_calibration_error",
    "factorize_answers",
    "fleiss_kappa",
    "krippendorff_alpha",
    "make_aggregator",
    "match_pair",
    "match_spans",
    "median_box",
    "medoid",
    "model_from_bytes",
    "pairwise_span_f1",
    "percent_agreement",
    "polygon_iou",
    "rankings_to_pairs",
    "read_answers_csv",
    "read_truth_csv",
    "span_f1_counts",
    "span_iou",
    "task_posterior",
    "vote_shares",
    "weighted_median",
    "worker_agreement",
    "write_results_csv",
]

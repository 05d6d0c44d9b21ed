"""The built-in model for text ``label`` and ``labels`` questions.

A scikit-learn pipeline:

- every text input of a task (a string anywhere in its data: ``text``, ``left.name``,
  ``answers.1.text``; a conversation's turns joined into one text) gets its own TF-IDF vectorizers,
  word 1-2 grams and character 2-5 grams, side by side in a ``ColumnTransformer``;
- a pair of records (two inputs that differ in one part of their path, such as ``left.name`` and
  ``right.name``, or two candidates of a responses field) also gets similarity features
  (:class:`PairSimilarity`): what a "same product?" or "does A entail B?" question turns on, which
  words alone cannot express to a linear model;
- a logistic regression wrapped in ``CalibratedClassifierCV`` (Platt's sigmoid, fitted on held-out
  folds), so a score of 0.8 means right about 8 times in 10; one such classifier per option
  (one-vs-rest) for ``labels``.

``evaluate`` reports the accuracy and the expected calibration error measured by stratified
cross-validation, next to the accuracy of always answering the most common class. A class needs
:data:`MIN_PER_CLASS` labeled tasks to be learned: fewer, and it is left out (listed in the report);
fewer than two classes with that many, and training refuses with :class:`NotEnoughData`.

A fitted model is saved with skops (no pickle: loading cannot run code) and loaded only from a file
the server wrote itself; see :func:`load`.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MultiLabelBinarizer

from truthset.learners._records import Prediction, Task
from truthset.quality import expected_calibration_error
from truthset.questions import QuestionConfig

__all__ = [
    "MIN_PER_CLASS",
    "ClassifierParams",
    "ModelFileRefused",
    "ModelReport",
    "NotEnoughData",
    "PairSimilarity",
    "TextClassifier",
    "load",
]

#: Labeled tasks a class (an option of ``label``; each side, chosen and not, of an option of
#: ``labels``) needs before it is learned. Ten gives 5-fold cross-validation two of each class per
#: fold and the calibrator a few more: below it, accuracy and calibration figures are noise.
MIN_PER_CLASS = 10

#: How many inputs (text paths) get vectorizers, the most frequent first.
MAX_INPUTS = 20

#: Bumped when the saved file's layout changes; part of the version string.
FORMAT = 1

_MODEL_NAME = "truthset-text"


class NotEnoughData(ValueError):
    """Too few labeled tasks to train (or honestly evaluate) the model; the message says how many."""


class ModelFileRefused(ValueError):
    """A saved model file that is not one the server wrote (wrong digest, unexpected contents)."""


@dataclass(frozen=True)
class ClassifierParams:
    """The knobs of the pipeline (all part of the model's version)."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    max_features: int = 30_000  # per vectorizer: bounds memory on long texts
    c: float = 4.0  # inverse regularisation of the logistic regression
    calibration_folds: int = 3
    eval_folds: int = 5
    min_per_class: int = MIN_PER_CLASS
    seed: int = 0


@dataclass(frozen=True)
class ModelReport:
    """What ``evaluate`` measured, in the terms shown to a manager."""

    version: str
    n_examples: int
    classes: dict[str, int]  # labeled tasks per class learned (per option: chosen, for `labels`)
    excluded: dict[str, int]  # classes below the minimum: never predicted
    method: str  # e.g. "5-fold stratified cross-validation"
    accuracy: float  # exact match for `labels`
    baseline_accuracy: float  # always the most common answer
    ece: float  # expected calibration error of the score (10 equal-width bins)
    mean_score: float
    brier: float  # mean squared error of the score against right/wrong
    # the same out-of-fold measure on the examples people verified (gold and reviewed tasks) alone:
    # the other labels are confident results, which leave the hard tasks out and so flatter the model
    verified_examples: int = 0
    verified_accuracy: float | None = None
    verified_ece: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- text inputs -----------------------------------------------------------------------------------

_MAX_DEPTH = 3


def text_inputs(data: Mapping[str, Any]) -> dict[str, str]:
    """Every text in a task's data by its dotted path (``left.name``, ``answers.0.text``).

    Numbers count as text (a price, a year); a conversation (a list of ``{"role", "content"}``
    turns) is one text, ``role: content`` per line, since its length varies from task to task.
    """
    out: dict[str, str] = {}
    _walk(data, "", 0, out)
    return out


def _walk(value: Any, path: str, depth: int, out: dict[str, str]) -> None:
    if isinstance(value, str):
        if value.strip():
            out[path] = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out[path] = str(value)
    elif depth >= _MAX_DEPTH:
        return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk(item, f"{path}.{key}" if path else str(key), depth + 1, out)
    elif isinstance(value, list):
        if value and all(isinstance(t, Mapping) and "role" in t and "content" in t for t in value):
            joined = "\n".join(f"{t['role']}: {t['content']}" for t in value if isinstance(t["content"], str))
            if joined.strip():
                out[path] = joined
            return
        for index, item in enumerate(value):
            _walk(item, f"{path}.{index}" if path else str(index), depth + 1, out)


def find_inputs(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """The text paths worth a vectorizer: the most frequent (at most :data:`MAX_INPUTS`), in path order."""
    counts = Counter(path for row in rows for path in row)
    chosen = [path for path, _ in counts.most_common(MAX_INPUTS)]
    return sorted(chosen)


def find_pairs(inputs: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of inputs that differ in exactly one part of their path, when only two do.

    ``left.name``/``right.name`` and ``answers.0.text``/``answers.1.text`` are pairs; three
    candidates ``answers.0..2`` are not (pass ``pairs=`` to compare them).
    """
    groups: dict[tuple[int, tuple[str, ...]], list[str]] = {}
    for path in inputs:
        parts = path.split(".")
        for position in range(len(parts)):
            if position == len(parts) - 1 and not parts[position].isdigit():
                continue  # `left.name` and `left.price` are two fields of one record, not a pair
            key = (position, (*parts[:position], "*", *parts[position + 1 :]))
            groups.setdefault(key, []).append(path)
    pairs = {tuple(sorted(members)) for members in groups.values() if len(members) == 2}
    return sorted(pairs)  # type: ignore[arg-type]


# --- pair features ---------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
_CODE = re.compile(r"[a-z]*\d[a-z\d]*")  # a model number, a size: letters and digits


def _tokens(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _codes(text: str) -> set[str]:
    joined = re.sub(r"(?<=\w)[-/.](?=\w)", "", text.lower())  # KX-TG4323B and KXTG4323B are one code
    return {c for c in _CODE.findall(joined) if len(c) >= 3}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


class PairSimilarity(TransformerMixin, BaseEstimator):
    """How alike two texts are: the features that tell a matching pair from a different one.

    Input: two columns of text. Output, per row: cosine similarity of character n-gram TF-IDF and of
    word TF-IDF (both fitted on the two columns together), word Jaccard, Jaccard of codes (tokens
    with digits: model numbers, sizes), whether they share a code, whether both sides have codes,
    whether either side is empty, and the shorter-to-longer length ratio.
    """

    def __init__(self, char_ngrams: tuple[int, int] = (2, 4), max_features: int = 30_000) -> None:
        self.char_ngrams = char_ngrams
        self.max_features = max_features

    def fit(self, x: Any, y: Any = None) -> PairSimilarity:
        left, right = _columns(x)
        both = [*left, *right]
        self.char_ = TfidfVectorizer(
            analyzer="char_wb", ngram_range=self.char_ngrams, max_features=self.max_features, sublinear_tf=True
        ).fit(both)
        self.word_ = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", max_features=self.max_features).fit(both)
        return self

    def transform(self, x: Any) -> np.ndarray:
        left, right = _columns(x)
        features = [_cosine(self.char_, left, right), _cosine(self.word_, left, right)]
        rows = []
        for a, b in zip(left, right, strict=True):
            codes_a, codes_b = _codes(a), _codes(b)
            lengths = sorted((len(a), len(b)))
            rows.append(
                (
                    _jaccard(_tokens(a), _tokens(b)),
                    _jaccard(codes_a, codes_b),
                    float(bool(codes_a & codes_b)),
                    float(bool(codes_a and codes_b)),
                    float(not a.strip() or not b.strip()),
                    lengths[0] / lengths[1] if lengths[1] else 0.0,
                )
            )
        return np.column_stack([*features, np.asarray(rows, dtype=np.float64).reshape(len(left), 6)])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(
            ["char_cos", "word_cos", "word_jaccard", "code_jaccard", "code_shared", "codes", "empty", "len"]
        )


def _columns(x: Any) -> tuple[list[str], list[str]]:
    array = np.asarray(x, dtype=object)
    return [str(v) for v in array[:, 0]], [str(v) for v in array[:, 1]]


def _cosine(vectorizer: TfidfVectorizer, left: list[str], right: list[str]) -> np.ndarray:
    a, b = vectorizer.transform(left), vectorizer.transform(right)  # rows are L2-normalised
    return np.asarray(sparse.csr_matrix(a).multiply(b).sum(axis=1)).ravel()


# --- the model -------------------------------------------------------------------------------------


@dataclass
class _Fitted:
    inputs: list[str]
    pairs: list[tuple[str, str]]
    classes: list[str]  # learned classes (`label`) or options (`labels`), in probability-column order
    excluded: dict[str, int]
    version: str
    pipeline: Pipeline = field(repr=False)


class TextClassifier:
    """TF-IDF features and a calibrated linear classifier for one ``label`` or ``labels`` question.

    ``inputs`` (text paths, see :func:`text_inputs`) and ``pairs`` default to what the training
    data shows (:func:`find_inputs`, :func:`find_pairs`).
    """

    def __init__(
        self,
        question: QuestionConfig,
        *,
        inputs: Sequence[str] | None = None,
        pairs: Sequence[tuple[str, str]] | None = None,
        params: ClassifierParams | None = None,
    ) -> None:
        if question.type not in ("label", "labels"):
            raise ValueError(f"question: the text classifier learns label and labels questions, not {question.type}")
        self.question = question
        self.inputs = list(inputs) if inputs is not None else None
        self.pairs = [tuple(p) for p in pairs] if pairs is not None else None
        self.params = params or ClassifierParams()
        self.options: list[str] = list(question.option_values())  # type: ignore[attr-defined]
        self.fitted_: _Fitted | None = None
        self.report_: ModelReport | None = None
        #: task key -> its out-of-fold prediction (by a classifier that never saw its label), per
        #: example :meth:`evaluate` learned from
        self.out_of_fold_: dict[str, Prediction] = {}

    @property
    def multilabel(self) -> bool:
        return self.question.type == "labels"

    @property
    def version(self) -> str:
        """``truthset-text-<hash>``: the hash of the training data, the settings and the library versions."""
        return self._fitted().version

    @property
    def name(self) -> str:
        return _MODEL_NAME

    # --- training ---

    def fit(self, tasks: Sequence[Task], labels: Sequence[Any]) -> TextClassifier:
        """Train on tasks and their answers (an option for ``label``; a list of options for ``labels``)."""
        self._train(tasks, labels)
        return self

    def _train(self, tasks: Sequence[Task], labels: Sequence[Any]) -> tuple[Any, Any, list[Any], list[str], list[int]]:
        """Fit features and classifier; return the features, the target, the truth, the classes and
        the indices of the examples kept (those of a class learned)."""
        rows, y, classes, excluded = self._prepare(tasks, labels)
        inputs = self.inputs if self.inputs is not None else find_inputs(rows)
        pairs = self.pairs if self.pairs is not None else find_pairs(inputs)
        keep = self._keep(y, classes)
        features = self._features(rows, inputs, pairs)
        x = features.fit_transform(_matrix(rows, inputs, pairs, keep))
        target = self._target(y, classes, keep)
        _plain_vocabularies(features)
        pipeline = Pipeline([("features", features), ("model", self._model().fit(x, target))])
        version = _version(self.question, self.params, inputs, pairs, tasks, labels)
        columns = self._columns(classes)
        self.fitted_ = _Fitted(inputs, [tuple(p) for p in pairs], columns, excluded, version, pipeline)
        return x, target, [y[i] for i in keep], classes, list(keep)

    def evaluate(
        self, tasks: Sequence[Task], labels: Sequence[Any], verified: Sequence[bool] | None = None
    ) -> ModelReport:
        """Fit, and measure accuracy and calibration by cross-validation on the same data.

        The scores are out-of-fold: each task is scored by a classifier that never saw its label.
        The vocabularies and IDF weights are learned once from all the tasks' texts (never from
        their labels), as they are when the model is used: so the folds only refit the classifier.
        ``verified``: per example, whether people verified its label (gold, a review); the report
        then also gives the out-of-fold accuracy and ECE on those examples alone.
        """
        if verified is not None and len(verified) != len(tasks):
            raise ValueError(f"verified: {len(verified)} flags for {len(tasks)} tasks")
        x, target, truth, classes, keep = self._train(tasks, labels)
        fitted = self._fitted()
        folds = self.params.eval_folds
        splitter = (
            KFold(folds, shuffle=True, random_state=self.params.seed)
            if self.multilabel
            else StratifiedKFold(folds, shuffle=True, random_state=self.params.seed)
        )
        probabilities = cross_val_predict(self._model(), x, target, cv=splitter, method="predict_proba")
        self.out_of_fold_ = {
            tasks[i].key: self._prediction(tasks[i].key, p, fitted.classes)
            for i, p in zip(keep, probabilities, strict=True)
        }
        answers, scores = zip(*(self._answer(p, fitted.classes) for p in probabilities), strict=True)
        correct = np.array([a == t for a, t in zip(answers, truth, strict=True)])
        score = np.asarray(scores, dtype=np.float64)
        checked = np.array([bool(verified[i]) for i in keep] if verified is not None else [False] * len(keep))
        self.report_ = ModelReport(
            version=fitted.version,
            n_examples=len(truth),
            classes=self._counts(truth, classes),
            excluded=fitted.excluded,
            method=f"{folds}-fold {'' if self.multilabel else 'stratified '}cross-validation",
            accuracy=float(correct.mean()),
            baseline_accuracy=_baseline(truth),
            ece=expected_calibration_error(score, correct),
            mean_score=float(score.mean()),
            brier=float(np.mean((score - correct) ** 2)),
            verified_examples=int(checked.sum()),
            verified_accuracy=float(correct[checked].mean()) if checked.any() else None,
            verified_ece=expected_calibration_error(score[checked], correct[checked]) if checked.any() else None,
        )
        return self.report_

    def _prepare(
        self, tasks: Sequence[Task], labels: Sequence[Any]
    ) -> tuple[list[dict[str, str]], list[Any], list[str], dict[str, int]]:
        if len(tasks) != len(labels):
            raise ValueError(f"labels: {len(labels)} labels for {len(tasks)} tasks")
        y = [self._label(value, index) for index, value in enumerate(labels)]
        classes, excluded = self._learnable(y)
        return [text_inputs(t.data) for t in tasks], y, classes, excluded

    def _label(self, value: Any, index: int) -> Any:
        if self.multilabel:
            if not isinstance(value, list | tuple) or any(v not in self.options for v in value):
                raise ValueError(f"labels[{index}]: must be a list of options of {self.question.name!r}")
            return tuple(o for o in self.options if o in value)
        if value not in self.options:
            raise ValueError(f"labels[{index}]: {value!r} is not an option of {self.question.name!r}")
        return value

    def _learnable(self, y: list[Any]) -> tuple[list[str], dict[str, int]]:
        """The classes with enough examples, and those left out with their counts."""
        need = self.params.min_per_class
        counts = self._counts(y, self.options)
        if self.multilabel:  # an option needs enough tasks with it and without it
            learnable = [o for o in self.options if min(counts[o], len(y) - counts[o]) >= need]
            enough = len(learnable) >= 1
        else:
            learnable = [o for o in self.options if counts[o] >= need]
            enough = len(learnable) >= 2
        if not enough:
            have = ", ".join(f"{o} {counts[o]}" for o in self.options)
            side = "chosen and not chosen" if self.multilabel else "for at least two options"
            raise NotEnoughData(
                f"not enough data for {self.question.name!r}: {need} labeled tasks are needed {side} "
                f"(have {len(y)} tasks: {have})"
            )
        return learnable, {o: counts[o] for o in self.options if o not in learnable and counts[o]}

    def _counts(self, y: list[Any], classes: Sequence[str]) -> dict[str, int]:
        counter = Counter(o for v in y for o in v) if self.multilabel else Counter(y)
        return {c: counter.get(c, 0) for c in classes}

    def _columns(self, classes: list[str]) -> list[str]:
        """The classes in the order of the probability columns (a classifier sorts its classes)."""
        return list(classes) if self.multilabel else sorted(classes)

    def _keep(self, y: list[Any], classes: list[str]) -> list[int]:
        """Rows to train on: for ``label``, those of a learned class."""
        return list(range(len(y))) if self.multilabel else [i for i, v in enumerate(y) if v in classes]

    def _target(self, y: list[Any], classes: list[str], keep: list[int]) -> Any:
        if self.multilabel:
            return MultiLabelBinarizer(classes=classes).fit_transform([[o for o in y[i] if o in classes] for i in keep])
        return np.asarray([y[i] for i in keep], dtype=object)

    def _features(
        self, rows: list[dict[str, str]], inputs: list[str], pairs: list[tuple[str, str]]
    ) -> ColumnTransformer:
        p = self.params
        transformers: list[tuple[str, Any, Any]] = []
        for column, path in enumerate(inputs):
            texts = [row.get(path, "") for row in rows]
            if any(_WORD.search(t) for t in texts):
                word = TfidfVectorizer(
                    ngram_range=p.word_ngrams,
                    token_pattern=r"(?u)\b\w+\b",
                    sublinear_tf=True,
                    max_features=p.max_features,
                )
                transformers.append((f"word:{path}", word, column))
            if any(t.strip() for t in texts):
                char = TfidfVectorizer(
                    analyzer="char_wb", ngram_range=p.char_ngrams, sublinear_tf=True, max_features=p.max_features
                )
                transformers.append((f"char:{path}", char, column))
        for index, _pair in enumerate(pairs):
            columns = [len(inputs) + 2 * index, len(inputs) + 2 * index + 1]
            transformers.append((f"pair:{index}", PairSimilarity(max_features=p.max_features), columns))
        if not transformers:
            raise NotEnoughData(f"not enough data for {self.question.name!r}: the tasks have no text to learn from")
        return ColumnTransformer(transformers, sparse_threshold=1.0)

    def _model(self) -> Any:
        p = self.params
        # the dual liblinear solver: text has far more features than examples (20x faster than primal here);
        # it visits the examples in a random order, so it is seeded: the same data gives the same model
        linear = LogisticRegression(
            C=p.c, solver="liblinear", dual=True, max_iter=1000, class_weight="balanced", random_state=p.seed
        )
        folds = StratifiedKFold(p.calibration_folds, shuffle=True, random_state=p.seed)
        if self.multilabel:  # one calibrated yes/no classifier per option
            return OneVsRestClassifier(CalibratedClassifierCV(linear, method="sigmoid", cv=folds))
        # liblinear is binary: one-vs-rest over the options, calibrated together
        return CalibratedClassifierCV(OneVsRestClassifier(linear), method="sigmoid", cv=folds)

    # --- predicting ---

    def predict(self, tasks: Sequence[Task]) -> list[Prediction]:
        """One prediction per task, its score the calibrated probability that the answer is right."""
        fitted = self._fitted()
        if not tasks:
            return []
        rows = [text_inputs(t.data) for t in tasks]
        probabilities = fitted.pipeline.predict_proba(_matrix(rows, fitted.inputs, fitted.pairs))
        return [self._prediction(task.key, p, fitted.classes) for task, p in zip(tasks, probabilities, strict=True)]

    def _prediction(self, key: str, p: np.ndarray, classes: list[str]) -> Prediction:
        answer, score = self._answer(p, classes)
        answer = list(answer) if self.multilabel else answer
        details = {"probabilities": {c: round(float(v), 6) for c, v in zip(classes, p, strict=True)}}
        return Prediction(key, self.question.name, answer, score, details)

    def _answer(self, p: np.ndarray, classes: list[str]) -> tuple[Any, float]:
        """The answer from class probabilities, and the probability that it is right.

        ``labels``: options above one half (kept within ``min_selected``/``max_selected``, best
        first); its score is the probability of exactly that set, the options taken as independent.
        """
        if not self.multilabel:
            best = int(np.argmax(p))
            return classes[best], float(p[best])
        order = np.argsort(-p, kind="stable")
        chosen = {int(i) for i in order if p[i] > 0.5}
        low = getattr(self.question, "min_selected", 0)
        high = getattr(self.question, "max_selected", None)
        chosen |= {int(i) for i in order[:low]}
        if high is not None and len(chosen) > high:
            chosen = {int(i) for i in order if int(i) in chosen}
            chosen = set(sorted(chosen, key=lambda i: -p[i])[:high])
        score = float(np.prod([p[i] if i in chosen else 1.0 - p[i] for i in range(len(classes))]))
        return tuple(c for i, c in enumerate(classes) if i in chosen), score

    def _fitted(self) -> _Fitted:
        if self.fitted_ is None:
            raise RuntimeError("the classifier is not fitted: call fit() first")
        return self.fitted_

    # --- saving ---

    def save(self, path: str | Path) -> str:
        """Write the fitted model to ``path`` (skops format) and return the file's SHA-256.

        Keep the digest with the model's record: :func:`load` checks it.
        """
        import skops.io

        fitted = self._fitted()
        meta = {
            "format": FORMAT,
            "question": self.question.model_dump(),
            "params": asdict(self.params),
            "inputs": fitted.inputs,
            "pairs": [list(p) for p in fitted.pairs],
            "classes": fitted.classes,
            "excluded": fitted.excluded,
            "version": fitted.version,
            "report": self.report_.as_dict() if self.report_ else None,
        }
        saved = {"meta": json.dumps(meta), "pipeline": fitted.pipeline}
        skops.io.dump(saved, path, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()


#: Types in a saved model that skops does not trust by itself, and that only our pipeline puts there.
TRUSTED_TYPES = frozenset(
    {
        "truthset.learners.text_classifier.PairSimilarity",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "numpy.float64",
        "sklearn.model_selection._split.StratifiedKFold",
        "builtins.object",
    }
)


def load(path: str | Path, expected_sha256: str | None) -> TextClassifier:
    """A model saved by :meth:`TextClassifier.save`.

    Trust rule: load only files the server wrote itself, into its own data directory, and pass the
    digest ``save`` returned (None only in tests and tools reading a file just written). skops never
    runs code from the file, and a file holding any type our pipeline does not use is refused
    before it is loaded: an upload or a swapped file fails here instead of loading.
    """
    import skops.io

    content = Path(path).read_bytes()
    if expected_sha256 is not None and hashlib.sha256(content).hexdigest() != expected_sha256:
        raise ModelFileRefused(f"{path}: the file is not the one the server wrote (SHA-256 differs)")
    untrusted = set(skops.io.get_untrusted_types(data=content))
    unexpected = sorted(untrusted - TRUSTED_TYPES)
    if unexpected:
        raise ModelFileRefused(f"{path}: holds types a truthset model never has: {', '.join(unexpected)}")
    saved = skops.io.loads(content, trusted=sorted(untrusted))
    meta = json.loads(saved["meta"])
    if meta.get("format") != FORMAT:
        raise ModelFileRefused(f"{path}: format {meta.get('format')!r}, this version reads {FORMAT}")
    from truthset.questions import get

    question = get(meta["question"]["type"]).config_model.model_validate(meta["question"])
    params = ClassifierParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()})
    model = TextClassifier(question, inputs=meta["inputs"], pairs=[tuple(p) for p in meta["pairs"]], params=params)
    pairs = [(a, b) for a, b in meta["pairs"]]
    model.fitted_ = _Fitted(
        meta["inputs"], pairs, meta["classes"], meta["excluded"], meta["version"], saved["pipeline"]
    )
    if meta["report"]:
        model.report_ = ModelReport(**meta["report"])
    return model


# --- helpers ---------------------------------------------------------------------------------------


def _matrix(
    rows: list[dict[str, str]], inputs: list[str], pairs: list[tuple[str, str]], keep: list[int] | None = None
) -> np.ndarray:
    """An object array: one column per input, then two per pair (missing texts are empty)."""
    columns = [*inputs, *(path for pair in pairs for path in pair)]
    chosen = rows if keep is None else [rows[i] for i in keep]
    out = np.empty((len(chosen), len(columns)), dtype=object)
    for i, row in enumerate(chosen):
        out[i] = [row.get(path, "") for path in columns]
    return out


def _plain_vocabularies(features: ColumnTransformer) -> None:
    """Vocabulary indices as Python ints: skops writes a numpy scalar as a file of its own in the
    archive (tens of thousands of them made saving take minutes), a Python int as JSON."""
    for _name, transformer, _where in features.transformers_:
        vectorizers = [transformer, getattr(transformer, "char_", None), getattr(transformer, "word_", None)]
        for vectorizer in vectorizers:
            if isinstance(vectorizer, TfidfVectorizer):
                vectorizer.vocabulary_ = {term: int(index) for term, index in vectorizer.vocabulary_.items()}


def _baseline(truth: list[Any]) -> float:
    return Counter(truth).most_common(1)[0][1] / len(truth) if truth else 0.0


def _version(
    question: QuestionConfig,
    params: ClassifierParams,
    inputs: list[str],
    pairs: Sequence[tuple[str, str]],
    tasks: Sequence[Task],
    labels: Sequence[Any],
) -> str:
    """A digest of everything the fitted model depends on: same data and settings, same version."""
    digest = hashlib.sha256()
    head = {
        "format": FORMAT,
        "sklearn": sklearn.__version__,
        "question": question.model_dump(),
        "params": asdict(params),
        "inputs": inputs,
        "pairs": [list(p) for p in pairs],
    }
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for task, label in zip(tasks, labels, strict=True):
        digest.update(json.dumps([task.data, label], sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return f"{_MODEL_NAME}-{digest.hexdigest()[:16]}"

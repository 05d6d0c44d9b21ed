"""Fitted worker models of one categorical question, in a form a platform can store and reuse.

A confusion-matrix estimator (:class:`DawidSkene` and kin) is fitted over all of a project's answers
by a background job; the platform then scores each task as its answers arrive with
:func:`task_posterior` from the stored models, in microseconds, without refitting. This module holds
that portable state (class values, worker ids, confusion matrices, class priors, the average worker
for unseen workers, the fitted temperature), its serialisation (an ``.npz`` archive: plain arrays,
no pickles, so loading a stored model can never run code), and the model used before the first fit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ._dawid_skene import task_posterior
from ._numeric_model import NumericWorkerModel

__all__ = ["GOLD_TEMPERATURE_BOUNDS", "WorkerModel", "model_from_bytes"]

#: The range a temperature fitted on gold may take: from much softer to somewhat sharper.
GOLD_TEMPERATURE_BOUNDS = (0.05, 2.0)


@dataclass(frozen=True)
class WorkerModel:
    """Confusion matrices ``P(answer l | true k, worker w)`` of known workers, and what to use otherwise.

    ``classes`` are the answer values (K), ``workers`` the worker ids (W), ``errors`` (W, K, K),
    ``priors`` (K,), ``mean_errors`` (K, K) the average worker (scores answers of workers the fit
    never saw), ``temperature`` the fitted tempering exponent (see :class:`DawidSkene`), and
    ``gold_tasks`` how many gold tasks it was fitted on (0: the estimator's own, from answers alone).
    """

    method: str
    classes: tuple[str, ...]
    workers: tuple[str, ...]
    errors: np.ndarray
    priors: np.ndarray
    mean_errors: np.ndarray
    temperature: float = 1.0
    gold_tasks: int = 0
    _class_codes: dict[str, int] = field(init=False, repr=False, compare=False)
    _worker_codes: dict[str, int] = field(init=False, repr=False, compare=False)
    _table: np.ndarray = field(init=False, repr=False, compare=False)  # errors + the average worker last

    def __post_init__(self) -> None:
        object.__setattr__(self, "_class_codes", {c: i for i, c in enumerate(self.classes)})
        object.__setattr__(self, "_worker_codes", {w: i for i, w in enumerate(self.workers)})
        table = np.concatenate([self.errors.reshape(-1, *self.mean_errors.shape), self.mean_errors[None]], axis=0)
        object.__setattr__(self, "_table", np.ascontiguousarray(table))

    @classmethod
    def uninformed(cls, classes: Sequence[str], accuracy: float) -> WorkerModel:
        """The model before any fit: every worker right with probability ``accuracy``, else uniformly wrong.

        Uniform class priors, so no option wins by its position; with one answer the posterior is
        ``accuracy`` on that answer, never certainty.
        """
        k = len(classes)
        off = (1.0 - accuracy) / max(k - 1, 1)
        mean = np.full((k, k), off)
        np.fill_diagonal(mean, accuracy)
        return cls("prior", tuple(classes), (), np.zeros((0, k, k)), np.full(k, 1.0 / k), mean, 1.0)

    @classmethod
    def from_fitted(cls, estimator: Any, classes: Sequence[str], method: str) -> WorkerModel:
        """Take a fitted confusion-matrix estimator (fitted on labels among ``classes``).

        Classes the fit never saw get uniform confusion rows and a prior of one pseudo-task.
        """
        fitted = list(estimator._label_codes)
        k = len(classes)
        index = [classes.index(c) for c in fitted]
        workers = list(estimator._worker_codes)
        errors = _embed(estimator.errors_array_, index, k)
        mean = _embed(estimator.mean_errors_[None], index, k)[0]
        n_tasks = len(estimator.probas_array_)
        priors = np.ones(k)  # one pseudo-task per class: a class the fit never saw stays possible
        priors[index] += np.asarray(estimator.priors_array_) * n_tasks
        priors /= priors.sum()
        return cls(method, tuple(classes), tuple(workers), errors, priors, mean, float(estimator.temperature_))

    def worker_index(self, worker_id: str) -> int | None:
        """The worker's row in ``workers`` and ``errors``, or None when the fit never saw them."""
        return self._worker_codes.get(worker_id)

    def knows(self, values: Sequence[str]) -> bool:
        return all(v in self._class_codes for v in values)

    def posterior(self, workers: Sequence[str], values: Sequence[str]) -> np.ndarray:
        """Posterior over ``classes`` of one task given its answers (unknown workers: the average worker)."""
        codes, labels = self._codes(workers, values)
        return task_posterior(codes, labels, self._table, self.priors, self.temperature)

    def posteriors(
        self, tasks: Sequence[int] | np.ndarray, workers: Sequence[str], values: Sequence[str], n_tasks: int
    ) -> np.ndarray:
        """Posteriors of many tasks at once: (n_tasks, K), row ``i`` from the answers with ``tasks == i``.

        The same computation as :meth:`posterior` for each task, vectorised (one pass over the answers
        with ``np.add.at``): a refit checks every task of a project against its new models in
        milliseconds, and re-scores one by one only those that moved. A task without answers gets
        the (tempered) priors, as :meth:`posterior` gives it.
        """
        codes, labels = self._codes(workers, values)
        logits = np.tile(np.log(self.priors), (n_tasks, 1))
        np.add.at(logits, np.asarray(tasks, dtype=np.intp), np.log(self._table[codes, :, labels]))
        logits *= self.temperature
        logits = np.exp(logits - logits.max(axis=1, keepdims=True))
        return logits / logits.sum(axis=1, keepdims=True)

    def _codes(self, workers: Sequence[str], values: Sequence[str]) -> tuple[list[int], list[int]]:
        """Rows of ``_table`` (the average worker, last, for unknown workers) and class codes."""
        average = len(self.workers)
        return [self._worker_codes.get(w, average) for w in workers], [self._class_codes[v] for v in values]

    def calibrated_on(
        self, tasks: Sequence[tuple[Sequence[str], Sequence[str]]], truths: Sequence[str]
    ) -> tuple[WorkerModel, float]:
        """This model with its temperature refitted on tasks whose true answer is known (gold).

        ``tasks`` are each task's (workers, answers), ``truths`` their known answers. The temperature
        ``beta`` of ``softmax(beta * (log prior + sum log e_w[k, l]))`` is chosen to maximise the
        log-likelihood of the known answers: Platt/temperature scaling (C. Guo, G. Pleiss, Y. Sun
        and K. Q. Weinberger, "On Calibration of Modern Neural Networks", ICML 2017) on ground truth.
        The answer-based temperature of the fit cannot see errors a crowd *shares* (they look like
        agreement); known answers can. The argmax never moves. Returns the model and the negative
        log-likelihood per task under the new temperature.
        """
        from scipy.optimize import minimize_scalar

        logits = np.array([self._logits(workers, values) for workers, values in tasks])
        truth = np.array([self._class_codes[value] for value in truths])

        def loss(beta: float) -> float:
            scaled = beta * logits
            top = scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled - top).sum(axis=1)) + top[:, 0]
            return float((log_norm - scaled[np.arange(len(truth)), truth]).mean())

        best = minimize_scalar(loss, bounds=GOLD_TEMPERATURE_BOUNDS, method="bounded", options={"xatol": 1e-3})
        model = replace(self, temperature=float(best.x), gold_tasks=len(tasks))
        return model, float(best.fun)

    def _logits(self, workers: Sequence[str], values: Sequence[str]) -> np.ndarray:
        """Untempered log prior + log-likelihood of one task's answers, per class."""
        codes, labels = self._codes(workers, values)
        return np.log(self.priors) + np.log(self._table[codes, :, labels]).sum(axis=0)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            method=np.array(self.method),
            classes=np.array(self.classes, dtype=str),
            workers=np.array(self.workers, dtype=str),
            errors=self.errors,
            priors=self.priors,
            mean_errors=self.mean_errors,
            temperature=np.array(self.temperature),
            gold_tasks=np.array(self.gold_tasks),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> WorkerModel:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            k = len(archive["classes"])
            return cls(
                str(archive["method"]),
                tuple(archive["classes"].tolist()),
                tuple(archive["workers"].tolist()),
                archive["errors"].reshape(-1, k, k),
                archive["priors"],
                archive["mean_errors"],
                float(archive["temperature"]),
                # archives stored before gold_tasks was (every model fitted before 2026-12-01) lack it
                int(archive["gold_tasks"]) if "gold_tasks" in archive.files else 0,
            )


def model_from_bytes(blob: bytes) -> WorkerModel | NumericWorkerModel:
    """A stored worker model of either kind: numeric archives say so (``kind``), categorical ones
    (every model stored before numeric ones existed) do not."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        if "kind" in archive.files and str(archive["kind"]) == "numeric":
            return NumericWorkerModel.from_archive(archive)
    return WorkerModel.from_bytes(blob)


def _embed(errors: np.ndarray, index: list[int], k: int) -> np.ndarray:
    """(W, k', k') matrices over the fitted classes -> (W, k, k) over all classes, rows renormalised."""
    n_w = errors.shape[0]
    full = np.full((n_w, k, k), 1e-3)
    full[np.ix_(range(n_w), index, index)] = errors
    # a true class the fit never saw gets a uniform row; a fitted row keeps a tiny mass for answers
    # the fit never saw, so such an answer is unlikely but never impossible
    return full / full.sum(axis=2, keepdims=True)

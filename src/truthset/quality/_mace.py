"""MACE: Multi-Annotator Competence Estimation, as a constrained confusion-matrix EM."""

from __future__ import annotations

import numpy as np

from ._dawid_skene import _ConfusionModel
from ._em import EMResult
from ._input import Answers

__all__ = ["MACE"]


class MACE(_ConfusionModel):
    """MACE: each worker either knows the answer (probability ``theta_w``) or spams with a
    worker-specific label distribution ``xi_w``. Hence ``P(l | k, w) = theta_w [l = k] +
    (1 - theta_w) xi_w[l]``: a confusion matrix constrained to "identity plus one spam row", which
    catches workers who always click the same button.

    Reference: D. Hovy, T. Berg-Kirkpatrick, A. Vaswani and E. Hovy, "Learning Whom to Trust with
    MACE", NAACL-HLT 2013, pages 1120-1130, https://aclanthology.org/N13-1132/.

    Fitted by EM on the shared sparse engine: the spam indicator is a second latent variable whose
    responsibilities come from the previous iteration's parameters. ``theta_w`` has a Beta prior
    centred on the pooled competence (``prior_strength`` pseudo-answers), ``xi_w`` a Dirichlet
    prior centred on the pooled spam distribution. Deterministic: EM starts from the majority vote
    (no random restarts needed). ``skills_`` is ``theta_w`` (crowd-kit calls it ``spamming_``).
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-6,
        patience: int = 3,
        calibrate: bool = True,
        prior_strength: float = 2.0,
    ) -> None:
        super().__init__(n_iter=n_iter, tol=tol, patience=patience, calibrate=calibrate)
        self.prior_strength = prior_strength

    def _fit(self, data: Answers) -> np.ndarray:
        self._theta: np.ndarray | None = None
        return super()._fit(data)

    def _project(self, counts: np.ndarray, pooled: np.ndarray, posteriors: np.ndarray) -> np.ndarray:
        n_w, n_k, _ = counts.shape
        if self._theta is None:  # first M-step: "knows" and "spams" equally likely, uniform spam
            self._theta = np.full(n_w, 0.5)
            self._xi = np.full((n_w, n_k), 1.0 / n_k)
        nonspam, spam = self._split(counts, self._theta, self._xi)
        s = self.prior_strength
        self._m_theta = float(np.clip(nonspam.sum() / max(counts.sum(), 1e-12), 1e-3, 1 - 1e-3))
        self._m_xi = (spam.sum(axis=0) + 1.0 / n_k) / (spam.sum() + 1.0)
        self._theta = (nonspam.sum(axis=1) + s * self._m_theta) / (counts.sum(axis=(1, 2)) + s)
        self._xi = (spam + s * self._m_xi) / (spam.sum(axis=1, keepdims=True) + s)
        self.mean_errors_ = _mace_matrix(np.array([self._m_theta]), self._m_xi[None])[0]
        self.theta_, self.xi_ = self._theta, self._xi
        return _mace_matrix(self._theta, self._xi)

    @staticmethod
    def _split(counts: np.ndarray, theta: np.ndarray, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected (non-spam, spam) counts per worker and observed label, (W, L) each."""
        idx = np.arange(counts.shape[1])
        on_diag = counts[:, idx, idx]  # mass where the answer equals the true label
        n_label = counts.sum(axis=1)  # answers per worker and observed label
        # An answer equal to the truth is a spam draw with this probability:
        r = (1 - theta[:, None]) * xi / (theta[:, None] + (1 - theta[:, None]) * xi)
        nonspam = on_diag * (1 - r)
        return nonspam, n_label - nonspam

    def _store(self, data: Answers, res: EMResult) -> None:
        super()._store(data, res)
        if res.errors.size:
            self.skills_ = self._worker_series(data, self._theta, "skill")

    def _loo_log_errors(self, data: Answers, res: EMResult) -> np.ndarray:
        """MACE parameters refitted without the answer's task, evaluated at the answer's label."""
        n_k = res.counts.shape[1]
        nonspam, spam = self._split(res.counts, self._theta, self._xi)
        w, lab, rows = data.worker, data.label, np.arange(len(data))
        r = (1 - self._theta[w]) * self._xi[w, lab]
        r = r / (self._theta[w] + r)
        own_ns = res.count_posteriors[data.task, lab] * (1 - r)
        s = self.prior_strength
        theta = (nonspam.sum(axis=1)[w] - own_ns + s * self._m_theta) / (res.counts.sum(axis=(1, 2))[w] - 1 + s)
        spam_at = spam[w, lab] - (1 - own_ns) + s * self._m_xi[lab]
        xi = spam_at / (spam.sum(axis=1)[w] - (1 - own_ns) + s)
        theta, xi = np.clip(theta, 1e-9, 1 - 1e-9), np.clip(xi, 1e-12, 1)
        out = np.repeat(np.log((1 - theta) * xi)[:, None], n_k, axis=1)
        out[rows, lab] = np.log(theta + (1 - theta) * xi)
        return out


def _mace_matrix(theta: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """P(l | k, w) = theta_w [l = k] + (1 - theta_w) xi_w[l], as a (W, K, K) array."""
    n_k = xi.shape[1]
    errors = np.repeat(((1 - theta)[:, None] * xi)[:, None, :], n_k, axis=1)
    idx = np.arange(n_k)
    errors[:, idx, idx] += theta[:, None]
    return errors

"""Ablation: principled variants of the Dawid-Skene prior and E-step, scored on real and sparse crowds.

Usage (either venv; crowd-kit is not needed):

    .venv/bin/python benchmarks/quality/ablation.py [DATA_DIR] [--all]

Every variant is the same EM (majority-vote start, Laplace class prior, per-answer log-likelihood
change < 1e-6 for 3 iterations) and differs only in how the M-step turns expected counts ``C[w, k, l]``
into the log confusion matrices the E-step uses. Hyper-parameters are chosen by label-free criteria
(type-II maximum likelihood), never by truth; truth is only used to print errors. The table answers
"is there a principled default that beats crowd-kit's DawidSkene on every real crowd?" (see
benchmarks/README.md for the answer). Research code for the record, not part of the product.

Variants and their papers (the variants other than ``default`` estimate their strengths from
expected counts, as they were first tried):

* ``ml``: the 1979 maximum-likelihood estimator (A. P. Dawid and A. M. Skene, JRSS C 28(1), 1979,
  https://doi.org/10.2307/2346806), crowd-kit's ``DawidSkene``, run to convergence.
* ``default``: truthset's ``DawidSkene(calibrate=False)``: MAP with Dirichlet(s * pooled) rows, ``s``
  by the Dirichlet-multinomial evidence of hard counts averaged over draws of the true labels
  (T. Minka, "Estimating a Dirichlet distribution", 2000; ``StrengthDraws`` in ``_em.py``).
* ``expected-count s``: the same, with the evidence of the E-step's expected counts (the default
  until this ablation; collapses to "all workers alike" on sparse crowds).
* ``vb``: the same prior, E-step with the posterior-expected log confusion ``digamma`` terms
  (Q. Liu, J. Peng and A. Ihler, "Variational Inference for Crowdsourcing", NeurIPS 2012).
* ``per-class s``: one evidence-fitted strength per true class.
* ``ML mean + s``: prior mean AND strength by type-II ML (Minka's fixed point), each worker one draw,
  instead of the answer-weighted pooled mean (H.-C. Kim and Z. Ghahramani, "Bayesian Classifier
  Combination", AISTATS 2012).
* ``CVB0``: the E-step scores each task with worker models that exclude the task's own expected
  counts (zero-order collapsed variational Bayes: A. Asuncion, M. Welling, P. Smyth and Y. W. Teh,
  "On Smoothing and Inference for Topic Models", UAI 2009).
* ``one-coin centre``: each worker's rows shrink towards a one-coin matrix with the worker's own
  (beta-binomial empirical-Bayes) accuracy and the pooled error pattern.
* ``null centre``: rows shrink towards "answers independent of the truth" (the label marginal), so a
  worker must earn weight (the spammer view of D. Hovy et al., "Learning Whom to Trust with MACE",
  NAACL 2013).
* ``communities`` (only with ``--all``): a mixture of two Dirichlet priors, worker membership by
  evidence (M. Venanzi, J. Guiver, G. Kazai, P. Kohli and M. Shokouhi, "Community-based Bayesian
  Aggregation Models for Crowdsourcing", WWW 2014).
* ``pseudo-tasks``: the prior as ``s`` imaginary tasks, so row ``k`` gets ``s * K * prior_k``
  pseudo-answers instead of ``s``: a rare class's row gets fewer pseudo-answers, in proportion to
  its fewer real ones.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import digamma, gammaln, logsumexp

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import make_crowd

import truthset.quality as tq
from truthset.quality._em import fit_prior_strength, pooled_confusion
from truthset.quality._input import Answers, factorize_answers

HERE = Path(__file__).parent
# sparse crowds: few answers per worker, where the prior matters (3 seeds each)
SPARSE = (
    {"n_tasks": 5000, "overlap": 3, "n_workers": 1000},
    {"n_tasks": 3000, "overlap": 5, "n_workers": 1500},
    {"n_tasks": 20000, "overlap": 5, "n_workers": 500},
)

# log confusion (W, K, L) from expected counts C (W, K, L), the posteriors P and the answers
Step = Callable[["Crowd", np.ndarray, np.ndarray], np.ndarray]


class Crowd:
    def __init__(self, data: Answers) -> None:
        self.d = data
        self.W, self.L, self.T = data.n_workers, data.n_labels, data.n_tasks
        cols = data.worker * self.L + data.label
        self.A = sp.csr_matrix((np.ones(len(data)), (data.task, cols)), shape=(self.T, self.W * self.L))
        self.At = self.A.T.tocsr()
        votes = np.zeros((self.T, self.L))
        np.add.at(votes, (data.task, data.label), 1.0)
        self.mv = votes / votes.sum(axis=1, keepdims=True)

    def counts(self, P: np.ndarray) -> np.ndarray:
        return (self.At @ P).reshape(self.W, self.L, -1).transpose(0, 2, 1)

    def evidence(self, log_e: np.ndarray) -> np.ndarray:
        return np.asarray(self.A @ log_e.transpose(0, 2, 1).reshape(self.W * self.L, -1))


def em(crowd: Crowd, step: Step, per_answer: bool = False, tol: float = 1e-6, patience: int = 3) -> np.ndarray:
    P = crowd.mv.copy()
    n_t, n_k = P.shape
    hist: list[float] = []
    calm = 0
    for _ in range(200):
        C = crowd.counts(P)
        prior = (P.sum(0) + 1.0) / (n_t + n_k)
        out = step(crowd, C, P)
        if per_answer:  # (N, K) per-answer log terms (CVB0)
            ll = np.stack([np.bincount(crowd.d.task, out[:, k], minlength=n_t) for k in range(n_k)], 1)
        else:
            ll = crowd.evidence(out)
        ll = ll + np.log(prior)
        lse = logsumexp(ll, axis=1, keepdims=True)
        P = np.exp(ll - lse)
        hist.append(float(lse.sum()) / len(crowd.d))
        calm = calm + 1 if len(hist) > 1 and abs(hist[-1] - hist[-2]) < tol else 0
        if calm >= patience:
            break
    return P


def _normalised(post: np.ndarray) -> np.ndarray:
    return np.log(post / post.sum(axis=2, keepdims=True))


def dm_evidence(C: np.ndarray, alpha: np.ndarray) -> float:
    """Dirichlet-multinomial log evidence of the rows with counts; alpha broadcasts to (W, K, L)."""
    alpha = np.broadcast_to(alpha, C.shape)
    n, a0 = C.sum(2), alpha.sum(2)
    rows = gammaln(a0) - gammaln(n + a0) + (gammaln(C + alpha) - gammaln(alpha)).sum(2)
    return float(rows[n > 1e-9].sum())


def fit_scale(C: np.ndarray, base: np.ndarray, lo: float = 0.1) -> float:
    res = minimize_scalar(
        lambda u: -dm_evidence(C, np.exp(u) * base), bounds=(np.log(lo), np.log(1e4)), method="bounded"
    )
    return float(np.exp(res.x))


def minka(C: np.ndarray, alpha: np.ndarray, weights: np.ndarray | None = None, iters: int = 100) -> np.ndarray:
    """Type-II ML Dirichlet parameters per true-class row (Minka 2000, fixed point), optional worker weights."""
    w = np.ones(C.shape[0]) if weights is None else weights
    n = C.sum(2)
    alpha = alpha.copy()
    for _ in range(iters):
        old = alpha.copy()
        for k in range(C.shape[1]):
            a = alpha[k]
            num = (w[:, None] * (digamma(C[:, k] + a) - digamma(a))).sum(0)
            den = (w * (digamma(n[:, k] + a.sum()) - digamma(a.sum()))).sum()
            alpha[k] = np.clip(a * num / max(den, 1e-300), 1e-4, 1e5)
        if np.abs(alpha - old).max() < 1e-6 * max(1.0, float(np.abs(old).max())):
            break
    return alpha


# --- the M-step variants ---------------------------------------------------------------------------


def ml(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    return _normalised(np.clip(C, 1e-10, None))


def evidence_prior(C: np.ndarray) -> np.ndarray:
    pooled = pooled_confusion(C)
    return fit_prior_strength(C, pooled, (0.5, 1e4)) * pooled


def expected_count_strength(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    return _normalised(C + evidence_prior(C))


def vb(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    post = C + evidence_prior(C)
    return digamma(post) - digamma(post.sum(2, keepdims=True))


def per_class(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    pooled = pooled_confusion(C)
    s = np.array([fit_prior_strength(C[:, k : k + 1], pooled[k : k + 1], (0.5, 1e4)) for k in range(C.shape[1])])
    return _normalised(C + s[:, None] * pooled)


def ml_mean(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    alpha = minka(C, 2.0 * pooled_confusion(C))
    mean = alpha / alpha.sum(1, keepdims=True)
    return _normalised(C + fit_scale(C, mean, 0.5) * mean)


def cvb0(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    d, n_l = crowd.d, crowd.L
    alpha = evidence_prior(C)
    table = (C + alpha).transpose(0, 2, 1).reshape(crowd.W * n_l, -1)
    own = P[d.task]
    num = table[d.worker * n_l + d.label] - own
    row = (C.sum(2) + alpha.sum(1))[d.worker] - own
    return np.log(np.maximum(num, 1e-12) / np.maximum(row, 1e-12))


def one_coin_centre(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    n_k = C.shape[1]
    idx = np.arange(n_k)
    correct, total = np.einsum("wkk->w", C), C.sum((1, 2))
    mean = correct.sum() / total.sum()

    def neg(u: float) -> float:  # beta-binomial evidence of the workers' accuracies
        t = np.exp(u)
        a, b = t * mean, t * (1 - mean)
        return -float(
            (gammaln(correct + a) + gammaln(total - correct + b) - gammaln(total + t)).sum()
            - len(total) * (gammaln(a) + gammaln(b) - gammaln(t))
        )

    t = float(np.exp(minimize_scalar(neg, bounds=(np.log(0.5), np.log(1e4)), method="bounded").x))
    acc = (correct + t * mean) / (total + t)
    off = pooled_confusion(C).copy()
    off[idx, idx] = 0.0
    off /= off.sum(1, keepdims=True)
    base = (1 - acc)[:, None, None] * off[None]
    base[:, idx, idx] = acc[:, None]
    return _normalised(C + fit_scale(C, base, 0.5) * base)


def null_centre(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    marginal = C.sum((0, 1)) + 1e-3
    base = np.broadcast_to(marginal / marginal.sum(), C.shape)
    return _normalised(C + fit_scale(C, base, 0.01) * base)


def communities(crowd: Crowd, C: np.ndarray, P: np.ndarray, n_comm: int = 2) -> np.ndarray:
    pooled = pooled_confusion(C)
    acc = np.einsum("wkk->w", C) / C.sum((1, 2))
    centres = np.quantile(acc, np.linspace(0, 1, n_comm + 2)[1:-1])
    resp = np.exp(-((acc[:, None] - centres[None]) ** 2) / 0.01)  # start: split workers by agreement
    resp /= resp.sum(1, keepdims=True)
    alphas = [minka(C, 2.0 * pooled, resp[:, c]) for c in range(n_comm)]
    for _ in range(10):
        pi = (resp.sum(0) + 1.0) / (len(resp) + n_comm)
        rows = [
            (
                gammaln(a.sum(1))[None]
                - gammaln(C.sum(2) + a.sum(1)[None])
                + (gammaln(C + a[None]) - gammaln(a)[None]).sum(2)
            ).sum(1)
            for a in alphas
        ]
        lw = np.stack(rows, 1) + np.log(pi)
        resp = np.exp(lw - logsumexp(lw, 1, keepdims=True))
        alphas = [minka(C, alphas[c], resp[:, c]) for c in range(n_comm)]
    post = sum(
        resp[:, c, None, None] * (C + a[None]) / (C + a[None]).sum(2, keepdims=True) for c, a in enumerate(alphas)
    )
    return np.log(post)


def pseudo_tasks(crowd: Crowd, C: np.ndarray, P: np.ndarray) -> np.ndarray:
    n_k = C.shape[1]
    share = (P.sum(0) + 1.0) / (P.shape[0] + n_k)
    base = (n_k * share)[:, None] * pooled_confusion(C)
    return _normalised(C + fit_scale(C, base) * base)


VARIANTS: dict[str, tuple[Step, bool]] = {
    "ml (1979, crowd-kit DS)": (ml, False),
    "expected-count s (previous default)": (expected_count_strength, False),
    "vb (digamma E-step)": (vb, False),
    "per-class s": (per_class, False),
    "ML mean + s": (ml_mean, False),
    "CVB0 (leave-task-out E-step)": (cvb0, True),
    "one-coin centre": (one_coin_centre, False),
    "null centre": (null_centre, False),
    "pseudo-tasks": (pseudo_tasks, False),
}


def errors_of(P: np.ndarray, data: Answers, truth: pd.Series) -> int:
    labels = pd.Series(data.labels[P.argmax(1)], index=data.tasks)
    common = labels.index.intersection(truth.index)
    return int((labels[common].to_numpy() != truth[common].to_numpy()).sum())


def main(data_dir: Path) -> None:
    crowds: list[tuple[str, Crowd, pd.Series]] = []
    for name in ("product", "rte", "dog", "face"):
        if (data_dir / name / "answers.csv").exists():
            answers = pd.read_csv(data_dir / name / "answers.csv")
            truth = pd.read_csv(data_dir / name / "truth.csv").set_index("task")["label"]
            crowds.append((name, Crowd(factorize_answers(answers)), truth))
    for cfg in SPARSE:
        for seed in range(3):
            task, worker, label, truth = make_crowd(seed=seed, **cfg)
            frame = pd.DataFrame({"task": task, "worker": worker, "label": label})
            crowds.append(
                (
                    f"sparse {cfg['n_tasks']}x{cfg['overlap']}/{cfg['n_workers']}w s{seed}",
                    Crowd(factorize_answers(frame)),
                    pd.Series(truth),
                )
            )
    real = [c for c in crowds if not c[0].startswith("sparse")]
    print("errors (tasks wrong); sparse = total over 9 synthetic crowds with 10-30 answers per worker")
    print("| variant | " + " | ".join(n for n, _, _ in real) + " | sparse | seconds |")
    print("|---|" + "---:|" * (len(real) + 2))
    rows = {"default (truthset DawidSkene)": None, **VARIANTS}
    if "--all" in sys.argv:  # the community mixture is slow (Python loops over Minka fixed points): ~9 min
        rows["communities (2)"] = (communities, False)
    for name, variant in rows.items():
        start = time.perf_counter()
        errs = []
        for _, crowd, truth in crowds:
            if variant is None:
                P = tq.DawidSkene(calibrate=False).fit((crowd.d.task, crowd.d.worker, crowd.d.label)).probas_array_
            else:
                P = em(crowd, *variant)
            errs.append(errors_of(P, crowd.d, truth))
        secs = time.perf_counter() - start
        print(
            f"| {name} | " + " | ".join(map(str, errs[: len(real)])) + f" | {sum(errs[len(real) :])} | {secs:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(Path(args[0]) if args else HERE.parents[2] / "shared" / "data" / "crowd")

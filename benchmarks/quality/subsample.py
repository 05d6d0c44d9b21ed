"""Few answers per task: the default against majority vote and crowd-kit on subsampled crowds.

Usage (the crowd-kit venv of ``run.sh``; without crowd-kit the crowd-kit columns are skipped):

    benchmarks/.venv-quality/bin/python benchmarks/quality/subsample.py [DATA_DIR] [--seeds 5]
        [--ks 1,2,3,5] [--no-synthetic] [--no-real] [--all-crowdkit] [--json PATH]

For every data set in DATA_DIR (subfolders with ``answers.csv`` and ``truth.csv``; default
``../shared/data/crowd``; numeric sets, more than 10 labels, are skipped) and for the synthetic
crowds below, each task is cut down to ``k`` of its answers (drawn without replacement, seeded) for
k = 1, 2, 3, 5, several seeds each. Per data set and k it prints, averaged over the seeds:

* accuracy, ECE (top label, 10 equal-width bins) and AUROC of the confidence for right versus wrong
  labels (the Mann-Whitney statistic; 0.5 = the confidence does not rank right above wrong), and the
  mean confidence, and the share of tasks stated at 0.999 or more, for truthset's default, truthset's
  majority vote, crowd-kit's MV, Wawa and DS (and, with ``--all-crowdkit``, GLAD and MACE, which are
  slow); "crowd-kit best" is the most accurate of those run, chosen with the truth;
* the default against MV, crowd-kit DS and crowd-kit's best, paired: tasks only one gets right,
  summed over the seeds, and the exact McNemar (sign) test on those sums. Summing seeds counts a
  task several times, so the test is stricter than one seed's: a small real gap shows sooner.

Then **incremental calibration on held-out tasks** (what the platform's dynamic overlap sees): the
tasks are split in two halves (seeded); the default is fitted on every answer of the first half;
each task of the second half is scored by ``DawidSkene.task_posterior`` on its first k answers
(a seeded order), k = 1, 2, 3. Printed: accuracy, ECE, AUROC, mean confidence, and for the
platform's stopping targets 0.90 / 0.95 / 0.99 the share of held-out tasks whose posterior reaches
the target and the accuracy among them. Majority vote's shares are shown beside it.

Synthetic crowds (``synthetic.make_mixed_crowd``): sparse crowds with many workers and few answers
each, imbalanced and binary classes, random clickers and systematically wrong workers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest, rankdata

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import make_mixed_crowd

import truthset.quality as tq

warnings.filterwarnings("ignore")
HERE = Path(__file__).parent
KS = (1, 2, 3, 5)
INCREMENTAL_KS = (1, 2, 3)
TARGETS = (0.90, 0.95, 0.99)

# name -> (n_tasks, overlap, n_workers, class priors, spammers, adversaries, activity skew)
SYNTHETIC: dict[str, dict[str, Any]] = {
    "syn binary 85/15 sparse": dict(
        n_tasks=4000, overlap=5, n_workers=800, class_priors=[0.85, 0.15], spammers=0.1, adversaries=0.05
    ),
    "syn binary 50/50 skewed": dict(
        n_tasks=3000, overlap=5, n_workers=300, class_priors=[0.5, 0.5], spammers=0.15, activity=1.0
    ),
    "syn 4-class sparse": dict(
        n_tasks=3000, overlap=5, n_workers=1500, class_priors=[0.4, 0.3, 0.2, 0.1], spammers=0.1
    ),
    "syn 3-class spam+adversaries": dict(
        n_tasks=2000, overlap=7, n_workers=60, class_priors=[0.5, 0.3, 0.2], spammers=0.25, adversaries=0.1
    ),
}


def auroc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """P(confidence of a right label > that of a wrong one), ties half: the Mann-Whitney U / (n1 n0)."""
    n1, n0 = int(correct.sum()), int((~correct).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(confidence)
    return float((ranks[correct].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@dataclass
class Scores:
    """Per-seed figures of one method on one (data set, k)."""

    accuracy: list[float] = field(default_factory=list)
    ece: list[float] = field(default_factory=list)
    auroc: list[float] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    certain: list[float] = field(default_factory=list)  # share of tasks stated at >= 0.999
    right: list[np.ndarray] = field(default_factory=list)  # per seed: correct per task (fixed order)

    def add(self, conf: np.ndarray, correct: np.ndarray) -> None:
        self.accuracy.append(float(correct.mean()))
        self.ece.append(tq.expected_calibration_error(conf, correct))
        self.auroc.append(auroc(conf, correct))
        self.confidence.append(float(conf.mean()))
        self.certain.append(float((conf >= 0.999).mean()))
        self.right.append(correct)

    def summary(self) -> dict[str, float]:
        return {
            "accuracy": float(np.mean(self.accuracy)),
            "ece": float(np.mean(self.ece)),
            "auroc": float(np.nanmean(self.auroc)),
            "mean_confidence": float(np.mean(self.confidence)),
            "share_at_0.999": float(np.mean(self.certain)),
        }


def truthset_methods() -> dict[str, Callable[[], Any]]:
    return {"truthset default": tq.DawidSkene, "truthset MV": tq.MajorityVote}


def crowdkit_methods(every: bool) -> dict[str, Callable[[], Any]]:
    try:
        from crowdkit import aggregation as ck
    except ImportError:
        return {}
    methods: dict[str, Callable[[], Any]] = {
        "crowd-kit MV": ck.MajorityVote,
        "crowd-kit Wawa": ck.Wawa,
        "crowd-kit DS": ck.DawidSkene,
    }
    if every:
        methods |= {"crowd-kit GLAD": ck.GLAD, "crowd-kit MACE": ck.MACE}
    return methods


def subsample(answers: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """At most ``k`` answers per task, drawn without replacement with a fixed seed."""
    rng = np.random.default_rng(seed)
    key = rng.random(len(answers))
    rank = pd.Series(key, index=answers.index).groupby(answers["task"]).rank(method="first")
    return answers[rank.to_numpy() <= k].reset_index(drop=True)


def confidence_of(model: Any, labels: pd.Series, tasks: pd.Index) -> np.ndarray:
    probas = getattr(model, "probas_", None)
    if probas is None:
        return np.ones(len(tasks))
    probas = probas.loc[tasks]
    cols = probas.columns.get_indexer(labels.loc[tasks])
    return probas.to_numpy()[np.arange(len(tasks)), cols]


def score_crowd(answers: pd.DataFrame, truth: pd.Series, methods: dict[str, Callable[[], Any]], seeds: int) -> dict:
    """Every method at every k over the seeds: per-method Scores and the paired comparisons."""
    out: dict[int, dict[str, Any]] = {}
    tasks = truth.index.intersection(pd.Index(answers["task"].unique())).sort_values()
    for k in KS:
        if k > answers.groupby("task").size().max():
            continue
        scores = {name: Scores() for name in methods}
        for seed in range(seeds):
            sub = subsample(answers, k, seed)
            for name, factory in methods.items():
                model = factory()
                labels = model.fit_predict(sub)
                correct = labels.loc[tasks].to_numpy().astype(str) == truth.loc[tasks].to_numpy().astype(str)
                scores[name].add(confidence_of(model, labels, tasks), correct)
        out[k] = {"scores": scores}
    return out


def paired(ours: Scores, theirs: Scores) -> dict[str, Any]:
    """Discordant tasks summed over seeds and the exact McNemar (two-sided binomial) p."""
    a, b = np.concatenate(ours.right), np.concatenate(theirs.right)
    only_ours, only_theirs = int((a & ~b).sum()), int((~a & b).sum())
    n = only_ours + only_theirs
    return {
        "only_default_right": only_ours,
        "only_other_right": only_theirs,
        "mcnemar_p": float(binomtest(only_ours, n).pvalue) if n else 1.0,
    }


def report(name: str, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Print one data set's table; return its JSON summary."""
    summary: dict[str, Any] = {}
    print(f"\n== {name} ==")
    print(f"{'k':>2} {'method':<20} {'acc':>7} {'ECE':>7} {'AUROC':>7} {'conf':>7} {'>=.999':>7}")
    for k, res in results.items():
        scores: dict[str, Scores] = res["scores"]
        row = {m: s.summary() for m, s in scores.items()}
        for m, s in row.items():
            print(
                f"{k:>2} {m:<20} {s['accuracy']:7.4f} {s['ece']:7.4f} {s['auroc']:7.3f} "
                f"{s['mean_confidence']:7.3f} {s['share_at_0.999']:7.3f}"
            )
        ck = [m for m in scores if m.startswith("crowd-kit")]
        versus = {"truthset MV": "truthset MV"}
        if "crowd-kit DS" in scores:
            versus["crowd-kit DS"] = "crowd-kit DS"
        if ck:
            versus["crowd-kit best"] = max(ck, key=lambda m: row[m]["accuracy"])
        comparisons = {}
        for label, other in versus.items():
            p = paired(scores["truthset default"], scores[other])
            comparisons[label] = {"method": other, **p}
            print(
                f"   default vs {label:<14} ({other}): right only for default {p['only_default_right']:>4}, "
                f"only for other {p['only_other_right']:>4}, McNemar p {p['mcnemar_p']:.3f}"
            )
        summary[str(k)] = {"methods": row, "versus": comparisons}
    return summary


def incremental(answers: pd.DataFrame, truth: pd.Series, seeds: int) -> dict[str, Any]:
    """Fit on half the tasks, score the other half's first k answers with task_posterior."""
    out: dict[str, Any] = {}
    per_k: dict[int, dict[str, list]] = {
        k: {"conf": [], "right": [], "mv_conf": [], "mv_right": []} for k in INCREMENTAL_KS
    }
    all_tasks = np.array(sorted(set(answers["task"]) & set(truth.index)))
    timings = []
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        held = set(rng.choice(all_tasks, len(all_tasks) // 2, replace=False).tolist())
        is_held = answers["task"].isin(held).to_numpy()
        model = tq.DawidSkene().fit(answers[~is_held].reset_index(drop=True))
        test = answers[is_held].sample(frac=1.0, random_state=seed)  # a seeded arrival order
        for task, rows in test.groupby("task", sort=False):
            workers, labels = rows["worker"].tolist(), rows["label"].tolist()
            true = str(truth[task])
            for k in INCREMENTAL_KS:
                if len(workers) < k:
                    continue
                start = time.perf_counter()
                post = model.task_posterior(workers[:k], labels[:k])
                timings.append(time.perf_counter() - start)
                best = max(post, key=post.get)
                per_k[k]["conf"].append(post[best])
                per_k[k]["right"].append(str(best) == true)
                shares = tq.vote_shares(labels[:k])
                mv = max(shares, key=shares.get)
                per_k[k]["mv_conf"].append(shares[mv])
                per_k[k]["mv_right"].append(str(mv) == true)
    for k, d in per_k.items():
        conf, right = np.array(d["conf"]), np.array(d["right"], dtype=bool)
        mv_conf, mv_right = np.array(d["mv_conf"]), np.array(d["mv_right"], dtype=bool)
        if not len(conf):
            continue
        row = {
            "accuracy": float(right.mean()),
            "ece": tq.expected_calibration_error(conf, right),
            "auroc": auroc(conf, right),
            "mean_confidence": float(conf.mean()),
            "mv_accuracy": float(mv_right.mean()),
            "mv_ece": tq.expected_calibration_error(mv_conf, mv_right),
        }
        for t in TARGETS:
            reached = conf >= t
            row[f"reach_{t}"] = float(reached.mean())
            row[f"accuracy_at_{t}"] = float(right[reached].mean()) if reached.any() else float("nan")
        out[str(k)] = row
    out["task_posterior_us_median"] = float(np.median(timings) * 1e6) if timings else float("nan")
    return out


def print_incremental(name: str, inc: dict[str, Any]) -> None:
    print(f"-- {name}: held-out tasks, task_posterior on the first k answers (fit on the other half) --")
    head = " ".join(f"{'>=' + str(t):>14}" for t in TARGETS)
    print(f"{'k':>2} {'acc':>7} {'ECE':>7} {'AUROC':>7} {'conf':>7} {'MV acc':>7} {'MV ECE':>7} {head}")
    for k in map(str, INCREMENTAL_KS):
        if k not in inc:
            continue
        r = inc[k]
        reach = " ".join(f"{r[f'reach_{t}']:6.1%} @{r[f'accuracy_at_{t}']:.3f}" for t in TARGETS)
        print(
            f"{k:>2} {r['accuracy']:7.4f} {r['ece']:7.4f} {r['auroc']:7.3f} {r['mean_confidence']:7.3f} "
            f"{r['mv_accuracy']:7.4f} {r['mv_ece']:7.4f} {reach}"
        )
    print(f"   task_posterior median {inc['task_posterior_us_median']:.1f} us per call (method, raw ids)")


def crowds(data_dir: Path | None, synthetic: bool) -> list[tuple[str, pd.DataFrame, pd.Series]]:
    found = []
    if data_dir is not None:
        folders = [p for p in data_dir.iterdir() if (p / "answers.csv").exists() and (p / "truth.csv").exists()]
        for folder in sorted(folders):
            answers = pd.read_csv(folder / "answers.csv")
            if answers["label"].nunique() > 10:
                continue  # numeric ratings: not a categorical crowd
            truth = pd.read_csv(folder / "truth.csv").set_index("task")["label"]
            found.append((folder.name, answers, truth))
    if synthetic:
        for name, cfg in SYNTHETIC.items():
            task, worker, label, truth = make_mixed_crowd(seed=0, **cfg)
            answers = pd.DataFrame({"task": task, "worker": worker, "label": label})
            found.append((name, answers, pd.Series(truth)))
    return found


def main() -> None:
    global KS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", default=str(HERE.parents[2] / "shared" / "data" / "crowd"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ks", default="1,2,3,5")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--all-crowdkit", action="store_true", help="also crowd-kit GLAD and MACE (slow)")
    parser.add_argument("--only", default="", help="comma-separated data set names to run")
    parser.add_argument("--json", default=str(HERE.parent / "results" / "subsample.json"))
    args = parser.parse_args()
    KS = tuple(int(x) for x in args.ks.split(","))
    methods = truthset_methods() | crowdkit_methods(args.all_crowdkit)
    if "crowd-kit MV" not in methods:
        print("crowd-kit is not installed: its columns are skipped (run through benchmarks/quality/run.sh's venv)")
    data_dir = None if args.no_real else Path(args.data_dir)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    results: dict[str, Any] = {}
    for name, answers, truth in crowds(data_dir, not args.no_synthetic):
        if only and name not in only:
            continue
        scored = score_crowd(answers, truth, methods, args.seeds)
        results[name] = {"subsampled": report(name, scored)}
        inc = incremental(answers, truth, args.seeds)
        print_incremental(name, inc)
        results[name]["incremental"] = inc
        sys.stdout.flush()
    means = mean_over_crowds(results)
    print("\n== mean over data sets ==")
    for k, row in means.items():
        print(f"k={k}: " + ", ".join(f"{m} {v:.4f}" for m, v in row.items()))
    results["mean_accuracy_over_datasets"] = means
    path = Path(args.json)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2))


def mean_over_crowds(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    means: dict[str, dict[str, float]] = {}
    for k in map(str, KS):
        per: dict[str, list[float]] = {}
        for res in results.values():
            for m, s in res["subsampled"].get(k, {}).get("methods", {}).items():
                per.setdefault(m, []).append(s["accuracy"])
        means[k] = {m: float(np.mean(v)) for m, v in per.items()}
    return means


if __name__ == "__main__":
    main()

"""Numeric crowds: the fitted noise model (NumericWorkerModel) against the mean and the median.

Usage (the project's venv; no crowd-kit needed):

    .venv/bin/python benchmarks/quality/numeric.py [DATA_DIR] [--seeds 3] [--ks 1,2,3,5,10]
        [--gold 150] [--synthetic] [--json PATH]

For every numeric data set in DATA_DIR (subfolders with ``answers.csv`` and ``truth.csv`` whose labels
are numbers with more than 10 distinct values; default ``../shared/data/crowd``), each task is cut down
to ``k`` of its answers (seeded), and, with ``--gold N``, N tasks (seeded) keep every answer and their
truth is told to the model, as a project's gold tasks would be (their own results are left out of
the figures). Per data set, gold setting and k it prints, averaged over the seeds:

* MAE of the mean, the median and the model's weighted mean (``weighted``);
* for tolerances of 1%, 5%, 10% and 20% of the answers' range: the share of tasks whose weighted mean
  is within the tolerance of the truth (``measured``) and the mean confidence the platform states
  for it (``stated``, ``NumericWorkerModel.probability_within``), and the same pair for the rule
  used before a project's first fit (the median; Laplace's rule over the answers within the
  tolerance, ``before_fit``).

With ``--synthetic`` the same for three generated crowds (``SYNTHETIC``: spammers, adversaries, and
an error the whole crowd shares), each 600 tasks x 10 answers on a 0-100 scale from 40 workers.

A k with no task answered twice cannot be fitted without gold (``no fit``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from statistics import median

import numpy as np

from truthset.quality import NumericWorkerModel

TOLERANCE_SHARES = (0.01, 0.05, 0.10, 0.20)
MIN_NUMERIC_LABELS = 11


def read_crowd(folder: Path) -> tuple[dict[str, list[tuple[str, float]]], dict[str, float]] | None:
    """A data set's answers by task and its truth, or None when it is not numeric."""
    try:
        with open(folder / "answers.csv", newline="") as f:
            rows = [(r["task"], r["worker"], float(r["label"])) for r in csv.DictReader(f)]
        with open(folder / "truth.csv", newline="") as f:
            truth = {r["task"]: float(r["label"]) for r in csv.DictReader(f)}
    except (OSError, ValueError, KeyError):
        return None
    if len({value for _, _, value in rows}) < MIN_NUMERIC_LABELS:
        return None
    answers: dict[str, list[tuple[str, float]]] = {}
    for task, worker, value in rows:
        if task in truth:
            answers.setdefault(task, []).append((worker, value))
    return answers, truth


def run_once(
    answers: dict[str, list[tuple[str, float]]], truth: dict[str, float], k: int, gold_n: int, seed: int
) -> dict | None:
    """One seeded cut of a crowd: the figures of every scored (non-gold) task, or None when unfittable."""
    rng = np.random.default_rng(seed)
    tasks = sorted(answers)
    gold = set(rng.permutation(tasks)[:gold_n].tolist()) if gold_n else set()
    kept: dict[str, list[tuple[str, float]]] = {}
    for task in tasks:
        order = rng.permutation(len(answers[task]))
        kept[task] = [answers[task][i] for i in (order if task in gold else order[:k])]
    rows = ([], [], [])
    for task, pairs in kept.items():
        for worker, value in pairs:
            rows[0].append(task)
            rows[1].append(worker)
            rows[2].append(value)
    try:
        model = NumericWorkerModel.fit(*rows)
    except ValueError:
        return None
    if gold:
        tasks_of = [tuple(map(list, zip(*kept[task], strict=True))) for task in sorted(gold)]
        model = model.calibrated_on(tasks_of, [truth[task] for task in sorted(gold)])
    values = [v for pairs in answers.values() for _, v in pairs]
    span = max(values) - min(values)
    scored = [task for task in tasks if task not in gold]
    out: dict = {"mae": {}, "tolerance": {}}
    estimates = {task: model.estimate(*zip(*kept[task], strict=True)) for task in scored}
    plain = {task: [v for _, v in kept[task]] for task in scored}
    out["mae"]["mean"] = float(np.mean([abs(np.mean(plain[t]) - truth[t]) for t in scored]))
    out["mae"]["median"] = float(np.mean([abs(median(plain[t]) - truth[t]) for t in scored]))
    out["mae"]["weighted"] = float(np.mean([abs(estimates[t][0] - truth[t]) for t in scored]))
    for share in TOLERANCE_SHARES:
        tol = share * span
        stated = [model.probability_within(m, m, sd, tol) for m, sd in estimates.values()]
        measured = [abs(estimates[t][0] - truth[t]) <= tol for t in scored]
        medians = {t: median(plain[t]) for t in scored}
        laplace = [(sum(abs(v - medians[t]) <= tol for v in plain[t]) + 1) / (len(plain[t]) + 2) for t in scored]
        before = [abs(medians[t] - truth[t]) <= tol for t in scored]
        out["tolerance"][f"{share:.0%}"] = {
            "tolerance": tol,
            "measured": float(np.mean(measured)),
            "stated": float(np.mean(stated)),
            "before_fit": {"measured": float(np.mean(before)), "stated": float(np.mean(laplace))},
        }
    out["shared_sd"] = float(np.sqrt(model.shared_variance))
    return out


def averaged(runs: list[dict]) -> dict:
    """The mean of each figure over the seeds' runs."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: averaged([run[key] for run in runs]) for key in first}
    return float(np.mean(runs))


#: Synthetic crowds (``--synthetic``): name -> (share of careful, sloppy, spamming, adversarial
#: workers; the sd of an error every worker of a task shares). Careful workers err with sd 3, sloppy
#: ones 15, spammers answer uniformly on the scale, adversaries push every answer 30 points up.
SYNTHETIC = {
    "synthetic-spam": ((0.5, 0.2, 0.3, 0.0), 0.0),
    "synthetic-adversarial": ((0.5, 0.2, 0.1, 0.2), 0.0),
    "synthetic-shared-error": ((0.6, 0.3, 0.1, 0.0), 8.0),
}


def synthetic_crowd(
    mix: tuple[float, float, float, float], shared_sd: float, seed: int = 0, tasks: int = 600, per_task: int = 10
) -> tuple[dict[str, list[tuple[str, float]]], dict[str, float]]:
    """A numeric crowd on a 0-100 scale from 40 workers of the four kinds in ``mix``, each task
    answered by ``per_task`` of them (answers clipped to the scale and rounded, as a form would)."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(4, size=40, p=np.asarray(mix) / sum(mix))
    truth = {f"s{t}": float(rng.uniform(0, 100)) for t in range(tasks)}
    answers: dict[str, list[tuple[str, float]]] = {}
    for task, right in truth.items():
        seen = right + rng.normal(0, shared_sd) if shared_sd else right
        for w in rng.choice(40, per_task, replace=False):
            kind = kinds[w]
            if kind == 2:
                value = rng.uniform(0, 100)
            else:
                value = seen + rng.normal(0, 3.0 if kind == 0 else 15.0) + (30.0 if kind == 3 else 0.0)
            answers.setdefault(task, []).append((f"w{w}", float(np.clip(round(value), 0, 100))))
    return answers, truth


def main(argv: list[str] | None = None) -> dict:
    root = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(root.parent / "shared" / "data" / "crowd"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ks", default="1,2,3,5,10")
    parser.add_argument("--gold", type=int, default=150, help="gold tasks (0: only the no-gold rows)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--synthetic", action="store_true", help="also the synthetic crowds (SYNTHETIC)")
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    crowds = [(p.name, crowd) for p in sorted(Path(args.data).iterdir()) if p.is_dir() and (crowd := read_crowd(p))]
    if args.synthetic:
        crowds += [(name, synthetic_crowd(*settings)) for name, settings in SYNTHETIC.items()]
    summary: dict = {}
    for name, (answers, truth) in crowds:
        summary[name] = {}
        for gold_n in sorted({0, args.gold}):
            for k in ks:
                runs = [r for seed in range(args.seeds) if (r := run_once(answers, truth, k, gold_n, seed))]
                key = f"gold={gold_n} k={k}"
                summary[name][key] = averaged(runs) if runs else None
                print_row(name, key, summary[name][key])
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


def print_row(name: str, key: str, figures: dict | None) -> None:
    if figures is None:
        print(f"{name:10} {key:14} no fit (no task answered twice)")
        return
    mae = figures["mae"]
    cells = " ".join(
        f"{share}: {f['measured']:.3f}/{f['stated']:.3f} (before {f['before_fit']['measured']:.3f}/"
        f"{f['before_fit']['stated']:.3f})"
        for share, f in figures["tolerance"].items()
    )
    print(
        f"{name:10} {key:14} MAE mean {mae['mean']:.2f} median {mae['median']:.2f} weighted {mae['weighted']:.2f}"
        f" | shared sd {figures['shared_sd']:.1f} | measured/stated within {cells}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])

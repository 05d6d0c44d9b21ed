"""Benchmark the quality engine against crowd-kit 1.4.2 (run through run.sh, which sets up the venv).

1. Real crowds (DATA_DIR/*/answers.csv + truth.csv): accuracy and ECE of every method, both libraries,
   and a paired test of the default against crowd-kit's most accurate method on each crowd.
2. Sparse synthetic crowds (10-15 answers per worker): the same comparison where priors matter.
3. 1,000,000 synthetic judgments: Dawid-Skene time to convergence, accuracy and peak RSS, each
   method in a fresh subprocess.
4. The incremental single-task posterior (microseconds).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import make_crowd

import truthset.quality as tq

HERE = Path(__file__).parent
CACHE = HERE.parent / "results"
console = Console(width=120)
warnings.filterwarnings("ignore")

TRUTHSET = {
    "mv": tq.MajorityVote,
    "wawa": tq.Wawa,
    "ds (default)": tq.DawidSkene,
    "ds raw EM": lambda: tq.DawidSkene(calibrate=False),
    "ods": tq.OneCoinDawidSkene,
    "glad": tq.GLAD,
    "mace": tq.MACE,
}


def crowdkit_methods() -> dict[str, Any]:
    from crowdkit.aggregation import GLAD, MACE, DawidSkene, MajorityVote, Wawa

    return {"MV": MajorityVote, "Wawa": Wawa, "DS": DawidSkene, "GLAD": GLAD, "MACE": MACE}


DEFAULT = "truthset ds (default)"


def score(labels: pd.Series, probas: pd.DataFrame | None, truth: pd.Series) -> tuple[float, float | None]:
    common = labels.index.intersection(truth.index)
    hit = (labels[common].to_numpy() == truth[common].to_numpy()).astype(float)
    if probas is None:
        return float(hit.mean()), None
    conf = probas.loc[common].to_numpy()[np.arange(len(common)), probas.columns.get_indexer(labels[common])]
    return float(hit.mean()), tq.expected_calibration_error(conf, hit)


def real_datasets(data_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for folder in sorted(p for p in data_dir.iterdir() if (p / "answers.csv").exists() and (p / "truth.csv").exists()):
        answers = pd.read_csv(folder / "answers.csv")
        truth = pd.read_csv(folder / "truth.csv").set_index("task")["label"]
        numeric = answers["label"].nunique() > 10  # ratings on a wide scale: aggregate as numbers
        results[folder.name] = (
            numeric_table(folder.name, answers, truth) if numeric else label_table(folder.name, answers, truth)
        )
    return results


def paired(ours: pd.Series, theirs: pd.Series, truth: pd.Series) -> dict[str, Any]:
    """Tasks only one of two aggregates gets right, and the exact McNemar (sign) test on them.

    On the same tasks, only the discordant ones say which method is more accurate; under "equally
    accurate" each is a fair coin, so ``p`` is the two-sided binomial probability of a split at
    least this uneven (Q. McNemar, Psychometrika 12(2), 1947, https://doi.org/10.1007/BF02295996).
    """
    from scipy.stats import binomtest

    common = truth.index.intersection(ours.index).intersection(theirs.index)
    a = ours[common].to_numpy() == truth[common].to_numpy()
    b = theirs[common].to_numpy() == truth[common].to_numpy()
    only_ours, only_theirs = int((a & ~b).sum()), int((~a & b).sum())
    n = only_ours + only_theirs
    p = float(binomtest(only_ours, n).pvalue) if n else 1.0
    return {"only_truthset_right": only_ours, "only_crowdkit_right": only_theirs, "mcnemar_p": p}


def fit_all(answers: pd.DataFrame, truth: pd.Series) -> tuple[dict[str, Any], dict[str, pd.Series]]:
    """Every method of both libraries on one crowd: scores, and the labels for the paired test."""
    rows: dict[str, Any] = {}
    labels_of: dict[str, pd.Series] = {}
    for lib, methods in (("truthset", TRUTHSET), ("crowd-kit 1.4.2", crowdkit_methods())):
        for method, factory in methods.items():
            start = time.perf_counter()
            model = factory()
            labels = model.fit_predict(answers)
            secs = time.perf_counter() - start
            probas = getattr(model, "probas_", None)
            acc, ece = score(labels, probas, truth)
            rows[f"{lib} {method}"] = {"accuracy": acc, "ece": ece, "seconds": secs}
            labels_of[f"{lib} {method}"] = labels
    return rows, labels_of


def versus_best(rows: dict[str, Any], labels_of: dict[str, pd.Series], truth: pd.Series) -> dict[str, Any]:
    """The default against crowd-kit's most accurate method on this crowd (chosen with the truth)."""
    best = max((k for k in rows if k.startswith("crowd-kit")), key=lambda k: rows[k]["accuracy"])
    out = {"crowdkit_best": best, **paired(labels_of[DEFAULT], labels_of[best], truth)}
    out["accuracy_gap"] = rows[DEFAULT]["accuracy"] - rows[best]["accuracy"]
    out["ece_gap"] = rows[DEFAULT]["ece"] - rows[best]["ece"] if rows[best]["ece"] is not None else None
    return out


def label_table(name: str, answers: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    rows, labels_of = fit_all(answers, truth)
    table = Table(
        title=f"{name}: {len(answers):,} answers, {answers.task.nunique():,} tasks, "
        f"{answers.worker.nunique():,} workers"
    )
    for col in ("library", "method", "accuracy", "ECE", "seconds"):
        table.add_column(col, justify="left" if col in ("library", "method") else "right")
    for key, r in rows.items():
        lib, method = key.rsplit(" ", 1) if not key.startswith("truthset") else ("truthset", key[9:])
        ece = "-" if r["ece"] is None else f"{r['ece']:.4f}"
        table.add_row(lib, method, f"{r['accuracy']:.4f}", ece, f"{r['seconds']:.2f}")
    console.print(table)
    vs = versus_best(rows, labels_of, truth)
    console.print(
        f"{name}: default vs {vs['crowdkit_best']}: accuracy {vs['accuracy_gap']:+.4f}, ECE "
        f"{vs['ece_gap']:+.4f}; right only for truthset {vs['only_truthset_right']}, only for crowd-kit "
        f"{vs['only_crowdkit_right']} (exact McNemar p = {vs['mcnemar_p']:.3f})"
    )
    rows["versus crowd-kit best"] = vs
    return rows


# --- sparse synthetic crowds: few answers per worker, where the prior matters ------------------------

SPARSE = ({"n_tasks": 5000, "overlap": 3, "n_workers": 1000}, {"n_tasks": 3000, "overlap": 5, "n_workers": 1500})


def sparse() -> dict[str, Any]:
    """``synthetic.py``'s crowd with 10-15 answers per worker (not tuned to anything), 3 seeds each.

    Same generator as the 1M run, so the model family is right; what changes is how little each
    worker's confusion matrix is supported by data, which is where priors and crowd-kit's unsmoothed
    estimates part ways. A check that the default generalises beyond the four real crowds.
    """
    results: dict[str, Any] = {}
    table = Table(title="sparse synthetic crowds (accuracy / ECE; 4 classes, 3 seeds per shape)")
    table.add_column("crowd")
    for col in ("truthset default", "crowd-kit best", "crowd-kit DS", "best - default", "paired p"):
        table.add_column(col, justify="right")
    for cfg in SPARSE:
        for seed in range(3):
            task, worker, label, truth_arr = make_crowd(seed=seed, **cfg)
            answers = pd.DataFrame({"task": task, "worker": worker, "label": label})
            truth = pd.Series(truth_arr)
            rows, labels_of = fit_all(answers, truth)
            vs = versus_best(rows, labels_of, truth)
            name = f"{cfg['n_tasks']} tasks x {cfg['overlap']}, {cfg['n_workers']} workers, seed {seed}"
            results[name] = {**rows, "versus crowd-kit best": vs}
            d, b, ck = rows[DEFAULT], rows[vs["crowdkit_best"]], rows["crowd-kit 1.4.2 DS"]
            table.add_row(
                name,
                f"{d['accuracy']:.4f} / {d['ece']:.3f}",
                f"{vs['crowdkit_best'].split()[-1]} {b['accuracy']:.4f} / {b['ece']:.3f}",
                f"{ck['accuracy']:.4f} / {ck['ece']:.3f}",
                f"{vs['only_crowdkit_right'] - vs['only_truthset_right']:+d} tasks",
                f"{vs['mcnemar_p']:.3f}",
            )
    console.print(table)
    return results


def numeric_table(name: str, answers: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    from crowdkit.aggregation import MMSR  # noqa: F401  (crowd-kit has no scalar mean/median estimators)

    rows: dict[str, Any] = {}
    methods = (
        ("mean (default)", tq.Mean),
        ("median", tq.Median),
        ("bias-variance (empirical Bayes)", tq.BiasVarianceModel),
        ("bias-variance (fixed strength 3)", lambda: tq.BiasVarianceModel(prior_strength=3.0)),
    )
    for method, factory in methods:
        start = time.perf_counter()
        values = factory().fit_predict(answers)
        secs = time.perf_counter() - start
        common = values.index.intersection(truth.index)
        rows[method] = {"mae": float((values[common] - truth[common]).abs().mean()), "seconds": secs}
    naive = answers.groupby("task")["label"].mean()  # plain pandas, as a cross-check of Mean
    common = naive.index.intersection(truth.index)
    rows["pandas groupby mean"] = {"mae": float((naive[common] - truth[common]).abs().mean()), "seconds": 0.0}
    table = Table(title=f"{name} (numeric): {len(answers):,} answers, {answers.task.nunique():,} tasks")
    for col in ("method", "MAE", "seconds"):
        table.add_column(col, justify="right")
    for method, r in rows.items():
        table.add_row(method, f"{r['mae']:.3f}", f"{r['seconds']:.3f}")
    console.print(table)
    return rows


# --- 1M synthetic: one fresh process per method --------------------------------------------------


def synthetic_path() -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "synthetic_1m_seed0.npz"
    if not path.exists():
        task, worker, label, truth = make_crowd(seed=0)
        np.savez(path, task=task, worker=worker, label=label, truth=truth)
    return path


def child(method: str) -> None:
    """Runs in a fresh interpreter: load the data, fit, report time, accuracy and peak RSS."""
    arrays = np.load(synthetic_path())
    df = pd.DataFrame({"task": arrays["task"], "worker": arrays["worker"], "label": arrays["label"]})
    truth = arrays["truth"]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if method == "crowd-kit DS":
        from crowdkit.aggregation import DawidSkene

        model = DawidSkene(n_iter=100)
        labels = model.fit_predict(df)
        n_iter = len(model.loss_history_)
    else:
        model = tq.DawidSkene(calibrate=method.endswith("(default)"))
        labels = model.fit_predict(df)
        n_iter = model.n_iter_
    secs = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    acc = float((labels.reindex(np.arange(len(truth))).to_numpy() == truth).mean())
    print(json.dumps({"seconds": secs, "accuracy": acc, "peak_mib": peak, "before_mib": rss_before, "n_iter": n_iter}))


def same_process() -> dict[str, Any]:
    """crowd-kit DS then truthset's default, back to back in ONE process on the same data.

    On a shared machine the fresh-process runs above can land in different load spikes; here both
    fits see the same load within seconds of each other, so their ratio is the fairer one.
    """
    arrays = np.load(synthetic_path())
    df = pd.DataFrame({"task": arrays["task"], "worker": arrays["worker"], "label": arrays["label"]})
    from crowdkit.aggregation import DawidSkene

    load_before = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    start = time.perf_counter()
    DawidSkene(n_iter=100).fit_predict(df)
    ck = time.perf_counter() - start
    start = time.perf_counter()
    tq.DawidSkene().fit_predict(df)
    ts = time.perf_counter() - start
    load_after = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    row = {"crowd-kit seconds": ck, "truthset seconds": ts, "ratio": ck / ts, "loadavg": [load_before, load_after]}
    console.print(
        f"same process, back to back: crowd-kit DS {ck:.2f} s, truthset DS (default) {ts:.2f} s, "
        f"ratio {ck / ts:.1f}x; load average before {' '.join(load_before)}, after {' '.join(load_after)}"
    )
    return row


def synthetic() -> dict[str, Any]:
    synthetic_path()
    rows = {}
    for method in ("truthset DS (default)", "truthset DS raw EM", "crowd-kit DS"):
        out = subprocess.run([sys.executable, __file__, "--child", method], capture_output=True, text=True, check=True)
        rows[method] = json.loads(out.stdout.strip().splitlines()[-1])
    base = rows["crowd-kit DS"]
    table = Table(title="1,000,000 synthetic judgments (200k tasks x 5, 2,000 workers, 4 classes, seed 0)")
    for col in ("method", "iterations", "fit seconds", "speed-up", "accuracy", "peak RSS MiB", "RSS before fit"):
        table.add_column(col, justify="right")
    for method, r in rows.items():
        table.add_row(
            method,
            str(r["n_iter"]),
            f"{r['seconds']:.2f}",
            f"{base['seconds'] / r['seconds']:.1f}x",
            f"{r['accuracy']:.4f}",
            f"{r['peak_mib']:.0f}",
            f"{r['before_mib']:.0f}",
        )
    console.print(table)
    return rows


def incremental() -> dict[str, Any]:
    arrays = np.load(synthetic_path())
    model = tq.DawidSkene(calibrate=False).fit((arrays["task"], arrays["worker"], arrays["label"]))
    errors, priors = model.errors_array_, model.priors_array_
    rng = np.random.default_rng(1)
    rows = {}
    for n_answers in (1, 5, 20):
        workers = rng.integers(0, errors.shape[0], n_answers)
        labels = rng.integers(0, errors.shape[2], n_answers)
        reps = 20_000
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(reps):
                tq.task_posterior(workers, labels, errors, priors)
            samples.append((time.perf_counter() - start) / reps * 1e6)
        rows[n_answers] = float(np.median(samples))
    table = Table(title="incremental task_posterior (one task, fitted 2,000-worker model, 4 classes)")
    table.add_column("answers on the task", justify="right")
    table.add_column("microseconds per update", justify="right")
    for n, us in rows.items():
        table.add_row(str(n), f"{us:.1f}")
    console.print(table)
    return rows


def _loadavg() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "n/a"


def main(data_dir: Path) -> None:
    console.print(f"[bold]truthset quality benchmark[/bold]  data: {data_dir}  python {sys.version.split()[0]}")
    console.print(f"load average at start: {_loadavg()}")
    results = {
        "real": real_datasets(data_dir),
        "sparse": sparse(),
        "synthetic": synthetic(),
        "same_process": same_process(),
        "incremental_us": incremental(),
    }
    console.print(f"load average at end: {_loadavg()}")
    CACHE.mkdir(exist_ok=True)
    (CACHE / "quality.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data" / "crowd")

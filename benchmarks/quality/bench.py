"""Benchmark the quality engine against crowd-kit 1.4.2 (run through run.sh, which sets up the venv).

1. Real crowds (DATA_DIR/*/answers.csv + truth.csv): accuracy and ECE of every method, both libraries.
2. 1,000,000 synthetic judgments: Dawid-Skene time to convergence, accuracy and peak RSS, each
   method in a fresh subprocess.
3. The incremental single-task posterior (microseconds).
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


def label_table(name: str, answers: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for lib, methods in (("truthset", TRUTHSET), ("crowd-kit 1.4.2", crowdkit_methods())):
        for method, factory in methods.items():
            start = time.perf_counter()
            model = factory()
            labels = model.fit_predict(answers)
            secs = time.perf_counter() - start
            probas = getattr(model, "probas_", None)
            acc, ece = score(labels, probas, truth)
            rows[f"{lib} {method}"] = {"accuracy": acc, "ece": ece, "seconds": secs}
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
    return rows


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

"""The model-in-the-loop benchmark (benchmarks/models/run.py), run as a user runs it, on a tiny generated
data set of product-like record pairs.

Checks the JSON it writes has the keys benchmarks/models/README.md documents and figures that make
sense (a benchmark's timings are never asserted).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "models" / "run.py"
TASKS = 90
WORDS = ["phone", "tv", "mount", "cable", "speaker", "camera", "laptop", "router", "lens", "drive", "mouse", "keyboard"]
FIGURES = {"accuracy", "judgments_per_task", "ece", "mean_confidence", "reliability"}
GOLD = 12  # the first tasks of the seeded order: a customer's gold set
ARM = FIGURES | {
    "available",
    "human_judgments",
    "statuses",
    "auto_labeled",
    "auto_labeled_figures",
    "people_figures",
    "exhausted",
    "refits",
    "errors",
    "seconds",
    "cpu_seconds",
    "train_cpu_seconds",
    "ordering",
    "ordering_failures",
    "learning_curve",
    "saving_vs_full_overlap",
    "accuracy_within_half_point",
    "confidence_within_two_points",
    "goal_met",
}
TRAINING = {
    "completed_tasks",
    "human_judgments",
    "job_status",
    "status",
    "cpu_seconds",
    "version",
    "training_labels",
    "label_sources",
    "heldout_accuracy",
    "heldout_ece",
    "heldout_verified_accuracy",
    "heldout_verified_examples",
    "baseline_accuracy",
    "predictions",
    "predicted_tasks",
    "predicted_accuracy",
    "predicted_ece",
    "predicted_mean_score",
}


def _write(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _data(root: Path) -> Path:
    """Pairs of records, the same product half of the time (the same model code), answered by two
    reliable workers and a random clicker."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(5)
    items, answers, truth = [], [], []
    for i in range(TASKS):
        same = i % 2 == 0
        code = f"KX{rng.integers(1000, 9999)}"
        other = code if same else f"ZR{rng.integers(1000, 9999)}"
        words = " ".join(rng.choice(WORDS, 3))
        left = {"name": f"Brand {words} - {code}", "description": f"{words} black", "price": ""}
        right = {"name": f"Brand {other} {words}", "description": "1 x unit", "price": f"${rng.integers(5, 500)}"}
        items.append({"task": f"t{i}", "left": left, "right": right})
        label = "1" if same else "0"
        truth.append((f"t{i}", label))
        answers += [(f"t{i}", "good0", label), (f"t{i}", "good1", label)]
        answers.append((f"t{i}", "clicker", str(rng.choice(["0", "1"]))))
    (root / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    _write(root / "answers.csv", ["task", "worker", "label"], answers)
    _write(root / "truth.csv", ["task", "label"], truth)
    return root


def test_the_benchmark_writes_the_documented_json(tmp_path: Path) -> None:
    plots = importlib.util.find_spec("matplotlib") is not None
    out = tmp_path / "out.json"
    command = [sys.executable, str(RUN), str(_data(tmp_path / "tiny")), "--targets", "0.90", "--seed", "1"]
    command += ["--train-every", "30", "--max-trainings", "2", "--gold", str(GOLD), "--out", str(out)]
    command += [] if plots else ["--no-plots"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())

    assert set(report) >= {"created_at", "data_dir", "seed", "targets", "train_every", "max_trainings", "annotators"}
    assert set(report) >= {"auto_label", "database", "dataset", "arms", "seconds", "cpu_seconds", "machine", "plots"}
    dataset = report["dataset"]
    assert (dataset["tasks"], dataset["judgments"], dataset["workers"], dataset["items"]) == (
        TASKS,
        TASKS * 3,
        3,
        TASKS,
    )
    assert dataset["fields"] == ["records"] and dataset["layout"].startswith("left, right -> records.0")
    assert set(dataset["engine_dawid_skene"]) == {"accuracy", "ece", "mean_confidence"}

    arms = report["arms"]
    assert set(arms) == {
        "full_overlap",
        "dynamic@0.90",
        "model@0.90",
        "model_uncertainty@0.90",
        "model_auto_label@0.90",
        "model_uncertainty_auto_label@0.90",
    }
    full = arms["full_overlap"]
    assert set(full) >= ARM
    assert full["human_judgments"] == TASKS * 3 and full["saving_vs_full_overlap"] == 0.0
    assert full["accuracy"] == 1.0  # two reliable workers of three
    assert report["gold"] == GOLD and full["statuses"]["gold"] == GOLD  # marked once people answered them
    for name, figures in arms.items():
        if not figures["available"]:  # a policy setting another helper adds: named with the reason
            assert "QualityPolicy refuses it" in figures["reason"], name
            continue
        assert set(figures) >= ARM, name
        assert (figures["ordering"] is not None) == ("uncertainty" in name), name
        assert figures["errors"] == {}, name
        assert sum(figures["statuses"].values()) == TASKS
        assert 1 <= figures["human_judgments"] <= TASKS * 3 or figures["auto_labeled"]
        parts = (figures["auto_labeled_figures"]["tasks"], figures["people_figures"]["tasks"])
        assert parts == (figures["auto_labeled"], TASKS - figures["auto_labeled"]), name  # every task has a truth
    for name in ("model@0.90",):
        curve = arms[name]["learning_curve"]
        assert 1 <= len(curve) <= 2  # --max-trainings
        assert curve and all(e["job_status"] == "succeeded" for e in curve)
        trained = [e for e in curve if e.get("version")]
        assert trained, curve
        assert set(trained[0]) >= TRAINING
        assert trained[0]["training_labels"] >= 20 and trained[0]["predicted_tasks"] >= 1
        # the gold tasks done by then are verified labels: the version's accuracy on them is measured
        assert trained[0]["heldout_verified_examples"] == trained[0]["label_sources"]["gold"] > 0
        assert 0.0 <= trained[0]["heldout_verified_accuracy"] <= 1.0
    assert arms["dynamic@0.90"]["learning_curve"] == []
    assert all(Path(p).stat().st_size > 0 for p in report["plots"])
    assert len(report["plots"]) == (2 if plots else 0)


def test_a_folder_without_items_is_refused_with_a_message(tmp_path: Path) -> None:
    data = _data(tmp_path / "tiny")
    (data / "items.jsonl").unlink()
    done = subprocess.run(
        [sys.executable, str(RUN), str(data), "--no-plots", "--out", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "no items.jsonl" in done.stdout

"""benchmarks/quality/numeric.py runs on a small numeric crowd and reports every figure."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("numeric_bench", ROOT / "benchmarks" / "quality" / "numeric.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_numeric_benchmark_reports_accuracy_and_calibration(tmp_path: Path) -> None:
    rng = random.Random(0)
    crowd = tmp_path / "counts"
    crowd.mkdir()
    answers, truth = ["task,worker,label"], ["task,label"]
    for task in range(80):
        right = rng.randint(0, 50)
        truth.append(f"t{task},{right}")
        for worker in rng.sample(range(8), 4):
            noise = 1 if worker < 5 else 10
            answers.append(f"t{task},w{worker},{round(right + rng.gauss(0, noise))}")
    (crowd / "answers.csv").write_text("\n".join(answers) + "\n")
    (crowd / "truth.csv").write_text("\n".join(truth) + "\n")
    (tmp_path / "labels").mkdir()  # a categorical set is skipped
    (tmp_path / "labels" / "answers.csv").write_text("task,worker,label\nt1,w1,0\nt1,w2,1\n")
    (tmp_path / "labels" / "truth.csv").write_text("task,label\nt1,0\n")

    summary = _load().main([str(tmp_path), "--seeds", "1", "--ks", "1,3", "--gold", "20"])
    assert set(summary) == {"counts"}
    assert summary["counts"]["gold=0 k=1"] is None  # nothing answered twice: nothing to fit
    figures = summary["counts"]["gold=20 k=3"]
    assert figures["mae"]["weighted"] < figures["mae"]["mean"]  # the careful workers weigh more
    assert set(figures["tolerance"]) == {"1%", "5%", "10%", "20%"}
    for cell in figures["tolerance"].values():
        assert 0 < cell["stated"] < 1 and 0 <= cell["measured"] <= 1


def test_the_synthetic_crowds_show_spammers_outweighed(tmp_path: Path) -> None:
    summary = _load().main([str(tmp_path), "--seeds", "1", "--ks", "3", "--gold", "0", "--synthetic"])
    assert set(summary) == {"synthetic-spam", "synthetic-adversarial", "synthetic-shared-error"}
    spam = summary["synthetic-spam"]["gold=0 k=3"]
    assert spam["mae"]["weighted"] < 0.7 * spam["mae"]["mean"]

"""The replay simulator (benchmarks/replay/run.py), run as a user runs it, on a tiny synthetic crowd.

Checks the JSON it writes has the keys benchmarks/replay/README.md documents and values that make
sense (a benchmark's timings are never asserted).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "replay" / "run.py"
TASKS, PERFECT, TARGETS = 30, 4, ["0.90", "0.99"]
FIGURES = {"accuracy", "judgments_per_task", "ece", "mean_confidence", "reliability"}
DYNAMIC = FIGURES | {
    "seeds",
    "judgments",
    "statuses",
    "below_target",
    "ties",
    "low_confidence",
    "exhausted",
    "unanswered",
    "refits",
    "refit_seconds",
    "changed_by_refits",
    "steps",
    "errors",
    "seconds",
    "cpu_seconds",
    "judgments_per_second",
}


def _write(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _crowds(root: Path) -> Path:
    """A binary crowd: every task answered by 4 always-right workers and 1 random clicker (a majority
    is always right), plus two rows the platform would not take; a numeric crowd and one with the
    wrong header (to be skipped); a folder without truth (to be ignored)."""
    rng = np.random.default_rng(7)
    answers, truth = [], []
    for i in range(TASKS):
        right = ["yes", "no"][i % 2]
        truth.append((f"t{i}", right))
        answers += [(f"t{i}", f"good{k}", right) for k in range(PERFECT)]
        answers.append((f"t{i}", "clicker", str(rng.choice(["yes", "no"]))))
    rng.shuffle(answers)
    extra = [("t0", "good0", "no"), ("t1", "late", "")]  # a second answer by the same worker; an empty one
    _write(root / "tiny" / "answers.csv", ["task", "worker", "label"], answers + extra)
    _write(root / "tiny" / "truth.csv", ["task", "label"], truth)
    numbers = [(f"t{i}", f"w{k}", str(i * 3 + k)) for i in range(8) for k in range(3)]
    _write(root / "scores" / "answers.csv", ["task", "worker", "label"], numbers)
    _write(root / "scores" / "truth.csv", ["task", "label"], [(f"t{i}", str(i * 3)) for i in range(8)])
    _write(root / "no-truth" / "answers.csv", ["task", "worker", "label"], answers[:5])
    _write(root / "broken" / "answers.csv", ["item", "annotator", "answer"], answers[:5])
    _write(root / "broken" / "truth.csv", ["task", "label"], truth[:2])
    return root


def _replay(data: Path, out: Path, *extra: str) -> dict[str, Any]:
    command = [sys.executable, str(RUN), str(data), "--targets", *TARGETS, "--seed", "3", "--out", str(out)]
    command += [*extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_replay_writes_the_documented_json_with_sane_figures(tmp_path: Path) -> None:
    plots = importlib.util.find_spec("matplotlib") is not None
    report = _replay(_crowds(tmp_path / "data"), tmp_path / "out.json", *([] if plots else ["--no-plots"]))

    assert set(report["datasets"]) == {"tiny"}
    assert report["skipped"]["scores"] == "numeric: 24 distinct labels (more than 10)"
    assert "header lacks task, worker, label" in report["skipped"]["broken"]
    assert set(report["skipped"]) == {"scores", "broken"}
    assert report["targets"] == TARGETS
    tiny = report["datasets"]["tiny"]
    assert (tiny["tasks"], tiny["judgments"], tiny["workers"], tiny["classes"]) == (TASKS, TASKS * 5, 5, 2)
    assert tiny["dropped_answers"] == 2
    assert (tiny["answers_per_task"], tiny["max_overlap"]) == (5, 5)

    for method in ("majority_vote", "dawid_skene"):
        full = tiny["full_overlap"][method]
        assert set(full) >= FIGURES
        assert full["judgments_per_task"] == 5.0
        assert full["accuracy"] == 1.0  # four of five answers are always right
        assert 0.0 <= full["ece"] <= 1.0

    assert set(tiny["targets"]) == set(TARGETS)
    for figures in tiny["targets"].values():
        assert set(figures) >= DYNAMIC
        assert 1.0 <= figures["judgments_per_task"] <= 5.0
        assert figures["judgments"] == round(figures["judgments_per_task"] * TASKS)
        assert 0.5 <= figures["accuracy"] <= 1.0  # at worst the first answer, right 9 times in 10
        assert 0.0 <= figures["ece"] <= 1.0
        assert figures["errors"] == {}  # every recorded answer the queue asked for was accepted
        assert figures["refits"] >= 1  # the platform asks for one after 20 responses
        assert sum(b["tasks"] for b in figures["reliability"]) == TASKS
        assert sum(figures["statuses"].values()) == TASKS
    assert set(tiny["goals"]["targets"]) == set(TARGETS)
    assert set(tiny["goals"]["all_met_at"]) <= set(TARGETS)
    assert tiny["goals"]["applies"] is False  # 5 answers per task: under the goals' 9

    throughput = report["throughput"]
    assert throughput["judgments"] == sum(f["judgments"] for f in tiny["targets"].values())
    assert throughput["judgments_per_second"] > 0
    assert all(Path(p).stat().st_size > 0 for p in report["plots"])
    assert len(report["plots"]) == (2 if plots else 0)


def test_the_same_seeds_replay_the_same_judgments_and_pool_over_seeds(tmp_path: Path) -> None:
    data = _crowds(tmp_path / "data")
    first = _replay(data, tmp_path / "a.json", "--no-plots", "--seed", "3", "4")
    second = _replay(data, tmp_path / "b.json", "--no-plots", "--seed", "3", "4")
    assert first["seeds"] == [3, 4]
    keys = ("accuracy", "judgments", "ece", "statuses", "seeds")
    for target in TARGETS:
        a, b = first["datasets"]["tiny"]["targets"][target], second["datasets"]["tiny"]["targets"][target]
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
        each = a["seeds"].values()
        assert set(a["seeds"]) == {"3", "4"}
        assert a["accuracy"] == pytest.approx(sum(f["accuracy"] for f in each) / 2)  # same tasks per seed
        assert a["judgments_per_task"] == pytest.approx(sum(f["judgments_per_task"] for f in each) / 2)
        assert a["judgments"] == round(a["judgments_per_task"] * TASKS * 2)
        assert sum(a["statuses"].values()) == TASKS * 2


@pytest.fixture(scope="module")
def replay_module() -> Iterator[Any]:
    """benchmarks/replay/run.py imported in-process (registered: its dataclasses look themselves up)."""
    name = "benchmarks_replay_run"
    spec = importlib.util.spec_from_file_location(name, RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def test_a_gold_set_is_marked_gold_and_reported(tmp_path: Path) -> None:
    report = _replay(_crowds(tmp_path / "data"), tmp_path / "gold.json", "--no-plots", "--gold", "10")
    assert report["gold"] == 10
    for figures in report["datasets"]["tiny"]["targets"].values():
        assert figures["statuses"].get("gold") == 10  # the first ten tasks of the queue, once answered
        assert sum(figures["statuses"].values()) == TASKS and figures["errors"] == {}


def test_a_missing_data_folder_is_a_clear_error(
    replay_module: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        replay_module.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.json")])
    assert exited.value.code == 2
    assert "is not a folder" in capsys.readouterr().out
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("option", [["--targets", "0.5"], ["--targets", "1.0"], ["--annotators", "0"]])
def test_bad_options_are_refused_naming_the_option(
    replay_module: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        replay_module.parse_args([str(tmp_path), *option])
    assert exited.value.code == 2
    assert option[0] in capsys.readouterr().err

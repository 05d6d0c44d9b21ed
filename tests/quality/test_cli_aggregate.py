"""`truthset aggregate` on small CSV files, through Typer's CliRunner."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from truthset.cli import app


@pytest.fixture()
def crowd_files(tmp_path: Path, crowd_maker) -> tuple[Path, Path]:
    task, worker, label, truth = crowd_maker(n_tasks=120)
    answers = tmp_path / "answers.csv"
    with answers.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "worker", "label"])
        w.writerows(zip((f"t{t}" for t in task), (f"w{x}" for x in worker), label, strict=True))
    gold = tmp_path / "truth.csv"
    with gold.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "label"])
        w.writerows((f"t{t}", v) for t, v in enumerate(truth))
    return answers, gold


@pytest.mark.parametrize("method", ["ds", "mv", "wawa", "ods", "mace", "glad"])
def test_aggregate_prints_accuracy_and_ece(crowd_files, tmp_path: Path, method: str) -> None:
    answers, gold = crowd_files
    out = tmp_path / "results.csv"
    result = CliRunner().invoke(
        app, ["aggregate", str(answers), "--method", method, "--truth", str(gold), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "ECE" in result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 120
    assert set(rows[0]) == {"task", "label", "confidence"}
    assert 0.0 <= float(rows[0]["confidence"]) <= 1.0


def test_aggregate_numeric_prints_mae(tmp_path: Path) -> None:
    answers = tmp_path / "ratings.csv"
    answers.write_text("task,worker,label\nt1,a,1\nt1,b,3\nt2,a,10\nt2,b,20\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("task,label\nt1,2\nt2,14\n")
    result = CliRunner().invoke(app, ["aggregate", str(answers), "--method", "mean", "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    assert "MAE" in result.output and "0.5000" in result.output  # |2-2| and |15-14| -> 0.5


def test_aggregate_rejects_unknown_method(crowd_files) -> None:
    answers, _ = crowd_files
    result = CliRunner().invoke(app, ["aggregate", str(answers), "--method", "nope"])
    assert result.exit_code != 0


def test_quality_works_without_pandas() -> None:
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "from truthset.quality import DawidSkene, MajorityVote, krippendorff_alpha\n"
        "rows = (['a', 'a', 'b', 'b'], [1, 2, 1, 2], ['x', 'x', 'y', 'x'])\n"
        "assert DawidSkene().fit(rows).labels_['a'] == 'x'\n"
        "assert MajorityVote().fit(rows).labels_ == {'a': 'x', 'b': 'x'}\n"
        "krippendorff_alpha(rows)\n"
        "import truthset.quality as q; assert 'pandas' not in [m for m in sys.modules if sys.modules[m]]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

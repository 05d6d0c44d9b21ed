"""Every user-facing setting, command and spec example is documented, and the examples work."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from truthset.cli import app
from truthset.config import Settings
from truthset.questions import Spec

DOCS = Path(__file__).parent.parent / "docs"


def _blocks(name: str, language: str) -> list[str]:
    text = (DOCS / name).read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    missing = [f"TRUTHSET_{name.upper()}" for name in Settings.model_fields if f"TRUTHSET_{name.upper()}" not in text]
    assert not missing, f"undocumented settings in docs/settings.md: {missing}"


def _command_paths(group: typer.Typer) -> list[str]:
    root = get_command(group)
    paths = []

    def walk(command, prefix: str) -> None:
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, f"{prefix} {name}".strip())
        else:
            paths.append(prefix)

    walk(root, "")
    return paths


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    commands = _command_paths(app)
    assert "serve" in commands and "users add" in commands
    missing = [c for c in commands if f"truthset {c}" not in text]
    assert not missing, f"undocumented commands in docs/cli.md: {missing}"


def test_spec_examples_in_docs() -> None:
    good, bad, *_ = _blocks("questions.md", "json")
    Spec.model_validate(json.loads(good))
    with pytest.raises(ValueError, match=r"questions\[0\]\.options"):
        Spec.model_validate(json.loads(bad))


def test_question_type_spec_examples_in_docs() -> None:
    """Each type's own example (a ```json spec block in docs/questions.md) is a valid spec."""
    examples = _blocks("questions.md", "json spec")
    assert len(examples) >= 2
    for example in examples:
        Spec.model_validate(json.loads(example))


def test_chat_review_example_in_docs() -> None:
    """The chatbot-review example (ranking + a rubric and spans per answer + text) is a valid spec."""
    text = (DOCS / "questions.md").read_text().split("## Example: reviewing two chatbot answers", 1)[1]
    spec = Spec.model_validate(json.loads(re.search(r"```json spec\n(.*?)```", text, flags=re.S).group(1)))
    assert [q["type"] for q in spec.questions] == ["ranking", "rubric", "spans", "text"]


def test_cli_console_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUTHSET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRUTHSET_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # where relative paths in the examples land (the backup directory)
    runner = CliRunner()
    (block,) = _blocks("cli.md", "console")
    lines = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    assert lines
    for line in lines:
        args = shlex.split(line)[1:]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{line}\n{result.output}"
    listed = runner.invoke(app, ["users", "list"]).output
    assert "ann@acme.test" in listed and "owner@acme.test" in listed
    assert (tmp_path / "truthset-backup" / "backup.json").is_file()


def test_the_auto_label_example_in_models_md() -> None:
    """The policy block is a valid policy, and the worked example's eligibility table is what the
    service computes (services/auto_label.py: the lower end of the Jeffreys interval)."""
    from truthset.schemas import QualityPolicy
    from truthset.services.auto_label import Measured, predictive_accuracy

    (block,) = _blocks("models.md", "json auto-label")
    policy = QualityPolicy.model_validate(json.loads(block)["quality"]).auto_label
    assert policy is not None and policy.min_accuracy == 0.95
    text = (DOCS / "models.md").read_text().split("### When a model may auto-label", 1)[1]
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+)-([\d.]+) \| (yes|no)", text, flags=re.M)
    assert len(rows) == 4
    for n, right, accuracy, low, high, eligible in rows:
        measured = Measured("w", int(n), float(right))
        assert f"{measured.accuracy:.3f}" == accuracy
        assert [f"{v:.3f}" for v in measured.interval] == [low, high]
        assert measured.eligible(policy.model_copy(update={"min_verified": 1})) is (eligible == "yes")
    # the stated confidence's example: a band's lower end gates, its predictive probability is stated
    n, right, low, stated = re.search(
        r"With (\d+) of (\d+) verified predictions\s+in a band, for example, the lower end is ([\d.]+) and the stated"
        r" confidence (\d\.\d+)",
        text,
    ).groups()
    assert f"{Measured('w', int(n), float(right)).interval[0]:.3f}" == low
    assert f"{predictive_accuracy(float(right), int(n)):.3f}" == stated

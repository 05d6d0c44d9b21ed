"""TRL preference pairs, loaded with `datasets` as TRL loads a JSONL dataset."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from datasets import Dataset

from truthset.errors import InvalidInput
from truthset.services.formats import preferences

if TYPE_CHECKING:
    from conftest import Org

PAIRWISE: dict[str, Any] = {
    "fields": [{"name": "prompt", "type": "text"}, {"name": "answers", "type": "responses"}],
    "questions": [
        {"name": "better", "type": "ranking", "field": "answers", "allow_tie": True, "strength": ["much", "slightly"]}
    ],
}
CHAT: dict[str, Any] = {
    "fields": [{"name": "chat", "type": "conversation"}, {"name": "answers", "type": "responses"}],
    "questions": [{"name": "order", "type": "ranking", "field": "answers", "mode": "order"}],
}


def load(project: dict, rows: list[dict], tmp_path: Path) -> Dataset:
    out = io.BytesIO()
    tasks = preferences.WRITER.write(project, iter(rows), out)
    path = tmp_path / "preferences.jsonl"
    path.write_bytes(out.getvalue())
    dataset = Dataset.from_json(str(path), cache_dir=str(tmp_path / "cache"))
    assert tasks == len(set(dataset["task_id"]))
    return dataset


def test_pairwise_winners_are_chosen_and_ties_are_left_out(org: Org, labelled: Callable, tmp_path: Path) -> None:
    items = [
        {"data": {"prompt": "Say hi", "answers": ["hello", {"text": "hi there", "model": "b"}]}, "unique_id": "a"},
        {"data": {"prompt": "Count", "answers": ["1 2 3", "one two"]}, "unique_id": "b"},
    ]
    answers = [
        [{"better": {"winner": 1, "strength": "much"}}, {"better": {"winner": 0, "strength": "slightly"}}],
        [{"better": {"winner": 1, "strength": "slightly"}}, {"better": {"winner": 1, "strength": "much"}}],
    ]
    project, rows = labelled(org, PAIRWISE, items, answers)
    dataset = load(project, rows, tmp_path)
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert dataset.num_rows == 1  # task b: one vote each way is a tie, not a preference
    row = dataset[0]
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("Say hi", "hi there", "hello")
    assert (row["unique_id"], row["chosen_index"], row["rejected_index"]) == ("a", 1, 0)
    assert row["confidence"] > 0.5 and row["strength"] in ("much", "slightly")


def test_an_order_gives_the_best_against_each_other_in_conversational_form(
    org: Org, labelled: Callable, tmp_path: Path
) -> None:
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    items = [{"data": {"chat": chat, "answers": ["Lyon", "Paris, I think", "Paris."]}}]
    project, rows = labelled(org, CHAT, items, [[{"order": {"order": [2, 1, 0]}}]] * 3)
    dataset = load(project, rows, tmp_path)
    assert dataset.num_rows == 2
    assert dataset[0]["prompt"] == chat
    pairs = {(r["chosen"][0]["content"], r["rejected"][0]["content"]): r["confidence"] for r in dataset}
    assert set(pairs) == {("Paris.", "Paris, I think"), ("Paris.", "Lyon")}
    assert 0.5 < pairs[("Paris.", "Paris, I think")] < pairs[("Paris.", "Lyon")] < 1
    assert all(r["chosen"][0]["role"] == r["rejected"][0]["role"] == "assistant" for r in dataset)


def test_a_spec_without_a_ranking_or_a_prompt_is_refused(org: Org) -> None:
    with pytest.raises(InvalidInput, match="preferences: the spec has no ranking question"):
        preferences.WRITER.check(org.make_project())
    no_prompt = {"fields": [PAIRWISE["fields"][1]], "questions": PAIRWISE["questions"]}
    with pytest.raises(InvalidInput, match="no conversation or text field to use as the prompt"):
        preferences.WRITER.check(org.make_project(spec=no_prompt))


def test_a_reviewer_s_fix_is_a_preference_like_any_other(org: Org, labelled: Callable, tmp_path: Path) -> None:
    """A fix outranks the crowd: the pair follows the reviewer's winner and strength, and the result
    states it as the crowd's would (the winner's index, not the stored ``{"winner", "shown_order"}``),
    so every export reads it (a fixed pairwise task once made the preference export fail)."""
    from truthset.services import export, formats, review

    items = [{"data": {"prompt": "Say hi", "answers": ["hello", "hi there"]}, "unique_id": "a"}]
    answers = [[{"better": {"winner": 0, "strength": "much"}}], [{"better": {"winner": 0, "strength": "slightly"}}]]
    project, rows = labelled(org, PAIRWISE, items, answers)
    task_id = rows[0]["task_id"]
    fix = {"better": {"winner": 1, "strength": "slightly"}}
    review.submit_review(org.db, org.principal_for("reviewer"), task_id, "fix", answer=fix)
    rows = list(export.export_rows(org.db, org.owner.principal, project["id"]))
    question = rows[0]["result"]["questions"]["better"]
    assert rows[0]["answer"] == {"better": 1} and question["method"] == review.FIX_METHOD
    assert question["crowd"]["answer"] == 0 and question["crowd"]["details"]["votes"] == {"0": 2}
    row = load(project, rows, tmp_path)[0]
    assert (row["chosen"], row["rejected"], row["strength"]) == ("hi there", "hello", "slightly")
    assert row["confidence"] == question["confidence"] < 1.0
    for name in ("parquet", "csv"):
        out, writer = io.BytesIO(), formats.get(name)
        writer.write(project, iter(rows), out)
        if name == "parquet":
            import pyarrow.parquet as pq

            assert pq.read_table(out).to_pylist()[0]["answer"] == {"better": "1"}  # JSON text, docs/formats.md
        else:
            assert "answer.better" in out.getvalue().decode().splitlines()[0]
            assert out.getvalue().decode().splitlines()[1].split(",").count("1") >= 1


def test_a_fixed_order_and_a_fixed_tie(org: Org, labelled: Callable, tmp_path: Path) -> None:
    from truthset.services import export, review

    items = [{"data": {"chat": [{"role": "user", "content": "Hi"}], "answers": ["a", "b", "c"]}, "unique_id": "c"}]
    given = [[{"order": {"order": [0, 1, 2]}}], [{"order": {"order": [0, 1, 2]}}]]
    project, rows = labelled(org, CHAT, items, given)
    reviewer = org.principal_for("reviewer")
    review.submit_review(org.db, reviewer, rows[0]["task_id"], "fix", answer={"order": {"order": [2, 0, 1]}})
    (row,) = export.export_rows(org.db, org.owner.principal, project["id"])
    assert row["answer"] == {"order": [2, 0, 1]}
    pairs = load(project, [row], tmp_path)
    assert sorted((p["chosen_index"], p["rejected_index"]) for p in pairs) == [(2, 0), (2, 1)]

    items = [{"data": {"prompt": "Count", "answers": ["1 2 3", "one two"]}, "unique_id": "d"}]
    answers = [[{"better": {"winner": 0, "strength": "much"}}], [{"better": {"winner": 0, "strength": "much"}}]]
    project, rows = labelled(org, PAIRWISE, items, answers)
    review.submit_review(org.db, reviewer, rows[0]["task_id"], "fix", answer={"better": {"winner": "tie"}})
    (row,) = export.export_rows(org.db, org.owner.principal, project["id"])
    question = row["result"]["questions"]["better"]
    assert question["answer"] is None and question["tie"] == [0, 1]
    with pytest.raises(Exception):  # noqa: B017 (no pair at all: datasets refuses an empty file)
        load(project, [row], tmp_path)

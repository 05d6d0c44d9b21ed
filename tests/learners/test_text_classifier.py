"""The built-in text model: learns above chance, reports calibration, refuses too little data, saves safely."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from truthset.learners import Task, check_answer
from truthset.learners.text_classifier import (
    MIN_PER_CLASS,
    ModelFileRefused,
    NotEnoughData,
    TextClassifier,
    find_pairs,
    load,
    text_inputs,
)
from truthset.questions import get

from .synthetic import product_pairs, tagged, tickets


def question(kind: str, options: list[str], **extra: object):
    return get(kind).config_model.model_validate({"name": "q", "type": kind, "options": options, **extra})


TOPIC = question("label", ["billing", "shipping", "bug"])


def accuracy(predictions, labels) -> float:
    return float(np.mean([p.answer == y for p, y in zip(predictions, labels, strict=True)]))


def test_learns_topics_above_chance_and_reports_calibration() -> None:
    tasks, labels = tickets(240, seed=1)
    model = TextClassifier(TOPIC)
    report = model.evaluate(tasks, labels)
    assert report.n_examples == 240
    assert report.classes == {"billing": 80, "shipping": 80, "bug": 80} or sum(report.classes.values()) == 240
    assert report.method == "5-fold stratified cross-validation"
    assert report.baseline_accuracy < 0.4
    assert report.accuracy > report.baseline_accuracy + 0.3  # ~0.85 with 10% of the labels flipped
    assert 0.0 <= report.ece < 0.15  # calibrated: the score says how often it is right
    assert abs(report.mean_score - report.accuracy) < 0.15
    assert report.version == model.version and model.version.startswith("truthset-text-")

    new, truth = tickets(90, seed=2)  # tasks it never saw
    predictions = model.predict(new)
    assert [p.task_key for p in predictions] == [t.key for t in new]
    assert {p.question for p in predictions} == {"q"}
    assert all(0.0 <= p.score <= 1.0 for p in predictions)
    assert all(check_answer(TOPIC, p.answer) == p.answer for p in predictions)
    assert accuracy(predictions, truth) > 0.6
    assert set(predictions[0].details["probabilities"]) == {"billing", "shipping", "bug"}


def test_the_report_measures_the_verified_labels_apart() -> None:
    tasks, labels = tickets(240, seed=1)
    rng = np.random.default_rng(9)
    # the 60 verified tasks are the hard ones: their labels have nothing to do with their words
    hard = set(rng.choice(240, size=60, replace=False).tolist())
    labels = [str(rng.choice(["billing", "shipping", "bug"])) if i in hard else y for i, y in enumerate(labels)]
    verified = [i in hard for i in range(240)]
    report = TextClassifier(TOPIC).evaluate(tasks, labels, verified)
    assert report.verified_examples == 60
    assert report.verified_accuracy < 0.6 < report.accuracy  # about chance (1/3) on them, not on the rest
    assert report.verified_ece is not None and report.verified_ece > 0.1  # the scores are not for them
    plain = TextClassifier(TOPIC).evaluate(tasks, labels)
    assert (plain.verified_examples, plain.verified_accuracy, plain.verified_ece) == (0, None, None)
    with pytest.raises(ValueError, match="verified: 3 flags for 240 tasks"):
        TextClassifier(TOPIC).evaluate(tasks, labels, [True] * 3)


def test_pairs_of_records_get_similarity_features() -> None:
    tasks, labels = product_pairs(200, seed=3)
    assert find_pairs(sorted(text_inputs(tasks[0].data))) == [
        ("left.description", "right.description"),
        ("left.name", "right.name"),
    ]
    model = TextClassifier(question("label", ["same", "different"]))
    report = model.evaluate(tasks, labels)
    assert model.fitted_.pairs == [("left.description", "right.description"), ("left.name", "right.name")]
    assert report.accuracy > report.baseline_accuracy + 0.25  # words alone cannot tell "same"
    test_tasks, truth = product_pairs(100, seed=4)
    assert accuracy(model.predict(test_tasks), truth) > 0.75


def test_labels_question_one_vs_rest() -> None:
    tags = question("labels", ["urgent", "refund", "angry"])
    tasks, labels = tagged(200, seed=5)
    model = TextClassifier(tags)
    report = model.evaluate(tasks, labels)
    assert report.method == "5-fold cross-validation"
    assert report.accuracy > report.baseline_accuracy + 0.3  # exact match of the whole set
    predictions = model.predict(tagged(50, seed=6)[0])
    for p in predictions:
        assert isinstance(p.answer, list) and check_answer(tags, p.answer) == p.answer
        assert 0.0 <= p.score <= 1.0


def test_labels_respects_max_selected() -> None:
    tags = question("labels", ["urgent", "refund", "angry"], max_selected=1)
    tasks, labels = tagged(200, seed=5)
    model = TextClassifier(tags).fit(tasks, labels)
    assert all(len(p.answer) <= 1 for p in model.predict(tasks[:40]))


def test_not_enough_data_is_refused_with_the_counts() -> None:
    tasks, labels = tickets(3 * (MIN_PER_CLASS - 1), seed=7, noise=0.0)
    with pytest.raises(NotEnoughData, match=r"not enough data for 'q': 10 labeled tasks .* billing 9"):
        TextClassifier(TOPIC).fit(tasks, labels)


def test_a_rare_class_is_left_out_and_reported() -> None:
    tasks, labels = tickets(120, seed=8, noise=0.0)
    rare = [i for i, y in enumerate(labels) if y == "bug"][3:]  # keep three bug tickets
    tasks = [t for i, t in enumerate(tasks) if i not in rare]
    labels = [y for i, y in enumerate(labels) if i not in rare]
    model = TextClassifier(TOPIC)
    report = model.evaluate(tasks, labels)
    assert report.excluded == {"bug": 3}
    assert set(report.classes) == {"billing", "shipping"}
    assert {p.answer for p in model.predict(tasks)} <= {"billing", "shipping"}


def test_bad_input_names_the_field() -> None:
    tasks, labels = tickets(30)
    with pytest.raises(ValueError, match=r"labels\[0\]: 'nope' is not an option"):
        TextClassifier(TOPIC).fit(tasks, ["nope", *labels[1:]])
    with pytest.raises(ValueError, match="labels: 29 labels for 30 tasks"):
        TextClassifier(TOPIC).fit(tasks, labels[1:])
    rating = get("rating").config_model.model_validate({"name": "r", "type": "rating"})
    with pytest.raises(ValueError, match="question: the text classifier learns label and labels"):
        TextClassifier(rating)
    with pytest.raises(RuntimeError, match="not fitted"):
        TextClassifier(TOPIC).predict(tasks)


def test_version_follows_data_and_settings() -> None:
    tasks, labels = tickets(60, seed=9)
    one = TextClassifier(TOPIC).fit(tasks, labels).version
    assert TextClassifier(TOPIC).fit(tasks, labels).version == one
    assert TextClassifier(TOPIC).fit(tasks[1:], labels[1:]).version != one


def test_the_same_data_trains_the_same_model() -> None:
    """Retraining on unchanged data must give the same scores (a prediction stored under a version is
    re-uploaded unchanged, never refused as a different answer); liblinear shuffles, so it is seeded."""
    tasks, labels = tickets(120, seed=4)
    new, _ = tickets(30, seed=5)
    first = TextClassifier(TOPIC).fit(tasks, labels).predict(new)
    second = TextClassifier(TOPIC).fit(tasks, labels).predict(new)
    assert [(p.answer, p.score) for p in first] == [(p.answer, p.score) for p in second]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    tasks, labels = product_pairs(120, seed=10)
    model = TextClassifier(question("label", ["same", "different"]))
    model.evaluate(tasks, labels)
    path = tmp_path / "model.skops"
    digest = model.save(path)
    loaded = load(path, digest)
    assert loaded.version == model.version
    assert loaded.report_ == model.report_
    assert loaded.fitted_.pairs == model.fitted_.pairs
    assert loaded.predict(tasks[:20]) == model.predict(tasks[:20])
    assert [p.score for p in loaded.predict(tasks[:20])] == [p.score for p in model.predict(tasks[:20])]


def test_load_refuses_a_file_the_server_did_not_write(tmp_path: Path) -> None:
    import skops.io

    tasks, labels = tickets(60, seed=11)
    path = tmp_path / "model.skops"
    digest = TextClassifier(TOPIC).fit(tasks, labels).save(path)
    with pytest.raises(ModelFileRefused, match="SHA-256 differs"):
        load(path, "0" * 64)
    # a file holding a type no truthset model has (here a numpy function object) is refused unloaded
    evil = tmp_path / "evil.skops"
    skops.io.dump({"meta": "{}", "pipeline": np.load}, evil)
    with pytest.raises(ModelFileRefused, match="holds types a truthset model never has"):
        load(evil, None)
    assert load(path, digest).version


# shared/ lies beside the checkout (CI, /work/main) or beside the folder of worktrees
_NEAR = [Path(__file__).parents[3], Path(__file__).parents[4]]
PRODUCT = next(
    (p / "shared" / "data" / "crowd" / "product" for p in _NEAR if (p / "shared" / "data").is_dir()), _NEAR[0]
)


@pytest.mark.skipif(not (PRODUCT / "items.jsonl").exists(), reason="the shared product data is not here")
def test_real_product_pairs_from_the_shared_data() -> None:
    """Entity matching on real product records (Abt-Buy via the crowd data): above the majority baseline."""
    with (PRODUCT / "truth.csv").open() as handle:
        truth = {row["task"]: row["label"] for row in csv.DictReader(handle)}
    with (PRODUCT / "items.jsonl").open() as handle:
        items = [json.loads(line) for _, line in zip(range(600), handle, strict=False)]
    tasks = [Task(i["task"], {"left": i["left"], "right": i["right"]}) for i in items]
    labels = ["same" if truth[i["task"]] == "1" else "different" for i in items]
    report = TextClassifier(question("label", ["same", "different"])).evaluate(tasks, labels)
    assert report.accuracy > report.baseline_accuracy + 0.03
    assert report.ece < 0.08


def test_text_inputs_of_nested_data_and_conversations() -> None:
    data = {
        "chat": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "answers": ["one", {"text": "two"}],
        "meta": {"price": 12.5, "flag": True, "empty": " "},
    }
    assert text_inputs(data) == {
        "chat": "user: hi\nassistant: hello",
        "answers.0": "one",
        "answers.1.text": "two",
        "meta.price": "12.5",
    }
    assert find_pairs(["answers.0", "answers.1", "meta.price"]) == [("answers.0", "answers.1")]
    assert find_pairs(["a.0.text", "a.1.text", "a.2.text"]) == []  # three candidates: name the pairs

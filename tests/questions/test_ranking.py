"""The `ranking` question type: config, answers, blind shuffled display, Bradley-Terry results, agreement."""

from __future__ import annotations

import numpy as np
import pytest

from truthset.questions import AnswerError, CompiledSpec, Spec
from truthset.questions.ranking import QUESTION, RankingQuestion, comparisons, position_bias, shown_order

SPEC = {
    "fields": [{"name": "prompt", "type": "text"}, {"name": "answers", "type": "responses"}],
    "questions": [{"name": "better", "type": "ranking", "field": "answers", "allow_tie": True}],
}
PAIR = RankingQuestion(name="better", field="answers", allow_tie=True, strength=["much", "slightly"])
ORDER = RankingQuestion(name="order", field="answers", mode="order", allow_tie=True)


def test_a_question_must_name_a_responses_field() -> None:
    bad = {**SPEC, "questions": [{"name": "better", "type": "ranking", "field": "prompt"}]}
    expected = r"questions\[0\]\.field: 'prompt' is a text field; a ranking question needs a responses field"
    with pytest.raises(ValueError, match=expected):
        Spec.model_validate(bad)
    with pytest.raises(ValueError, match=r"questions\[0\]\.mode"):
        Spec.model_validate({**SPEC, "questions": [{"name": "b", "type": "ranking", "field": "answers", "mode": "x"}]})
    twice = {"name": "b", "type": "ranking", "field": "answers", "strength": ["a", "a"]}
    with pytest.raises(ValueError, match=r"questions\[0\]\.strength: strength captions must be different"):
        Spec.model_validate({**SPEC, "questions": [twice]})


def test_pairwise_answers() -> None:
    assert QUESTION.validate_answer(PAIR, {"winner": 1, "strength": "much"}) == {"winner": 1, "strength": "much"}
    assert QUESTION.validate_answer(PAIR, {"winner": "tie"}) == {"winner": "tie"}
    # a client's shown_order is dropped: the server records its own
    assert QUESTION.validate_answer(PAIR, {"winner": 0, "strength": "slightly", "shown_order": [0, 1]}) == {
        "winner": 0,
        "strength": "slightly",
    }
    for bad, message in [
        ({"winner": 2, "strength": "much"}, "winner must be 0, 1 or 'tie'"),
        ({"winner": True, "strength": "much"}, "winner must be"),
        ({"winner": 0}, "strength must be one of"),
        ({"winner": "tie", "strength": "much"}, "a tie has no strength"),
        ({"winner": 0, "extra": 1}, "unknown key"),
        ("A", "must be an object"),
    ]:
        with pytest.raises(AnswerError, match=message):
            QUESTION.validate_answer(PAIR, bad)
    with pytest.raises(AnswerError, match="does not allow a tie"):
        QUESTION.validate_answer(RankingQuestion(name="b", field="answers"), {"winner": "tie"})


def test_order_answers() -> None:
    assert QUESTION.validate_answer(ORDER, {"order": [2, [3, 0], [1]]}) == {"order": [2, [0, 3], 1]}
    for bad, message in [
        ({"order": [0, 0, 1]}, "every candidate exactly once"),
        ({"order": [0, 2]}, "every candidate exactly once"),
        ({"order": []}, "order must be a list"),
        ({"order": [0, "1"]}, "candidate indexes"),
    ]:
        with pytest.raises(AnswerError, match=message):
            QUESTION.validate_answer(ORDER, bad)
    strict = RankingQuestion(name="o", field="answers", mode="order")
    with pytest.raises(AnswerError, match="does not allow ties"):
        QUESTION.validate_answer(strict, {"order": [[0, 1]]})


def test_the_shown_order_is_seeded_by_the_assignment() -> None:
    assert shown_order("asg-1", "answers", 4) == shown_order("asg-1", "answers", 4)
    assert sorted(shown_order("asg-1", "answers", 4)) == [0, 1, 2, 3]
    orders = {tuple(shown_order(f"asg-{i}", "answers", 4)) for i in range(50)}
    assert len(orders) > 10  # different assignments, different orders


def test_the_spec_binds_the_shown_order_and_hides_model_names() -> None:
    spec = CompiledSpec(SPEC)
    data = {"prompt": "hi", "answers": [{"text": "A", "model": "gpt", "id": "r1"}, {"content": "B", "model": "llama"}]}
    spec.validate_data(data)
    with pytest.raises(ValueError, match=r"data\.answers must have exactly 2 responses"):
        spec.validate_data({"prompt": "hi", "answers": ["a", "b", "c"]})
    shown, display = spec.worker_view(data, "asg-1")
    assert shown["answers"] == [{"text": "A"}, {"content": "B"}]
    assert display == {"answers": shown_order("asg-1", "answers", 2)}
    bound = spec.bind_answer(spec.validate_answer({"better": {"winner": 1}}), data, "asg-1")
    assert bound == {"better": {"winner": 1, "shown_order": display["answers"]}}
    assert spec.comparable(bound) == {"better": {"winner": 1}}
    shows = CompiledSpec({**SPEC, "questions": [{**SPEC["questions"][0], "show_models": True}]})
    assert shows.worker_view(data, "asg-1")[0]["answers"] == data["answers"]


def test_an_order_must_name_the_tasks_candidates() -> None:
    spec = CompiledSpec(
        {
            "fields": [{"name": "answers", "type": "responses"}],
            "questions": [{"name": "order", "type": "ranking", "field": "answers", "mode": "order"}],
        }
    )
    data = {"answers": ["a", "b", "c"]}
    with pytest.raises(AnswerError, match="order: order must name each of the 3 candidates"):
        spec.bind_answer(spec.validate_answer({"order": {"order": [1, 0]}}), data, "asg")


def _aggregate(question: RankingQuestion, values: list[dict]) -> object:
    return QUESTION.aggregate(question, values, [f"w{i}" for i in range(len(values))])


def test_pairwise_result_by_bradley_terry() -> None:
    one = _aggregate(PAIR, [{"winner": 0, "strength": "much"}])
    assert one.value == 0 and one.tie is None and 0.7 < one.confidence < 0.8  # one vote: never certain
    three = _aggregate(PAIR, [{"winner": 1, "strength": "much"}] * 3)
    assert three.value == 1 and three.confidence > one.confidence and three.details["strength"] == {"much": 3}
    split = _aggregate(PAIR, [{"winner": 0, "strength": "much"}, {"winner": 1, "strength": "much"}])
    assert split.value is None and split.tie == [0, 1] and split.confidence == pytest.approx(0.5)
    ties = _aggregate(PAIR, [{"winner": "tie"}] * 3)
    assert ties.value is None and ties.tie == [0, 1]
    assert ties.details["votes"] == {"tie": 3}


def test_order_result_with_a_tie() -> None:
    agree = _aggregate(ORDER, [{"order": [2, 0, 3, 1]}, {"order": [2, 0, 3, 1]}, {"order": [2, 0, 1, 3]}])
    assert agree.value == [2, 0, 3, 1] and 0.5 < agree.confidence < 1.0
    tied = _aggregate(ORDER, [{"order": [[0, 1], 2]}, {"order": [[0, 1], 2]}])
    assert tied.value == [[0, 1], 2] and tied.confidence > 0.6
    # two workers who reverse each other: nothing can be told apart
    reversed_ = _aggregate(ORDER, [{"order": [0, 1, 2]}, {"order": [2, 1, 0]}])
    assert reversed_.value == [[0, 1, 2]] and reversed_.confidence == 0.5


def test_comparisons_by_rank_breaking() -> None:
    workers, left, right, winner = comparisons(ORDER, [{"order": [2, [0, 1]]}], ["w"])
    assert list(zip(left, right, winner, strict=True)) == [(0, 1, 0), (0, 1, 1), (0, 2, 2), (1, 2, 2)]
    assert workers == ["w"] * 4


def test_agreement_and_position_bias() -> None:
    tasks = np.array([0, 0, 1, 1])
    workers = np.array([0, 1, 0, 1])
    values = [
        {"winner": 0, "shown_order": [0, 1]},  # first shown won
        {"winner": 0, "shown_order": [1, 0]},  # second shown won
        {"winner": 1, "shown_order": [1, 0]},  # first shown won
        {"winner": "tie", "shown_order": [0, 1]},  # no decision
    ]
    measures = QUESTION.agreement(PAIR, tasks, workers, values)
    assert measures["pairwise_agreement"] == 0.5  # task 0 agrees, task 1 does not
    assert measures["first_shown_wins"] == pytest.approx(2 / 3) and measures["first_shown_n"] == 3
    orders = [{"order": [0, 1, 2], "shown_order": [0, 1, 2]}, {"order": [0, 2, 1], "shown_order": [2, 1, 0]}]
    measures = QUESTION.agreement(ORDER, np.array([0, 0]), np.array([0, 1]), orders)
    assert measures["kendall_tau"] == pytest.approx(1 / 3)  # 2 of 3 pairs concordant
    assert measures["pairwise_agreement"] == pytest.approx(2 / 3)
    # first answer: shown 0,1,2 and ranked 0,1,2 (3 of 3 earlier-shown won); second: shown 2,1,0,
    # ranked 0,2,1: pairs (0,1) earlier 1 lost, (0,2) earlier 2 lost, (1,2) earlier 2 won -> 4 of 6
    assert position_bias(ORDER, orders) == (pytest.approx(4 / 6), 6)

"""A question asked for each candidate of a responses field (`for_each`): one copy per candidate."""

from __future__ import annotations

import pytest

from truthset.questions import AnswerError, CompiledSpec, Spec, asked_questions, expanded_questions
from truthset.services.completion import resolve

FIELDS = [{"name": "prompt", "type": "text"}, {"name": "answers", "type": "responses", "count": 2}]
QUESTIONS = [
    {"name": "better", "type": "ranking", "field": "answers"},
    {"name": "grade", "type": "rating", "for_each": "answers", "min": 1, "max": 5},
    {"name": "problems", "type": "spans", "for_each": "answers", "labels": ["error"], "required": False},
]


def spec(questions: list | None = None, fields: list | None = None) -> dict:
    return Spec.model_validate({"fields": fields or FIELDS, "questions": questions or QUESTIONS}).model_dump()


def test_copies_are_named_by_the_candidates_index_in_place_of_the_question() -> None:
    compiled = CompiledSpec(spec())
    names = [(q.name, q.candidate, q.group) for q in compiled.questions]
    assert names == [
        ("better", None, "better"),
        ("grade-0", 0, "grade"),
        ("grade-1", 1, "grade"),
        ("problems-0", 0, "problems"),
        ("problems-1", 1, "problems"),
    ]
    # the stored spec keeps the question as written, once
    assert [q["name"] for q in spec()["questions"]] == ["better", "grade", "problems"]
    assert "candidate" not in spec()["questions"][1]


def test_spans_of_a_copy_are_checked_against_its_candidates_text() -> None:
    compiled = CompiledSpec(spec())
    data = {"prompt": "p", "answers": ["short", {"content": "a longer reply"}]}
    answer = {
        "better": {"winner": 1},
        "grade-0": 2,
        "grade-1": 4,
        "problems-1": [{"start": 2, "end": 8, "label": "error"}],
    }
    assert compiled.validate_answer(answer, data)["problems-1"] == [{"start": 2, "end": 8, "label": "error"}]
    too_long = {**answer, "problems-0": [{"start": 0, "end": 8, "label": "error"}]}
    with pytest.raises(AnswerError, match=r"problems-0: span 0-8 ends past the end of the text \(5 characters\)"):
        compiled.validate_answer(too_long, data)
    with pytest.raises(AnswerError, match="grade-1: an answer is required"):
        compiled.validate_answer({"better": {"winner": 1}, "grade-0": 2}, data)


def test_copies_aggregate_apart() -> None:
    compiled = CompiledSpec(spec())
    answers = [
        {"better": {"winner": 1}, "grade-0": 1, "grade-1": 5},
        {"better": {"winner": 1}, "grade-0": 1, "grade-1": 5},
    ]
    result = compiled.aggregate(answers, ["w1", "w2"])
    assert (result["grade-0"].value, result["grade-1"].value) == (1, 5)


@pytest.mark.parametrize(
    ("questions", "fields", "message"),
    [
        ([{**QUESTIONS[1], "for_each": "prompt"}], None, r"questions\[0\]\.for_each: 'prompt' is a text field"),
        ([{**QUESTIONS[1], "for_each": "nope"}], None, r"questions\[0\]\.for_each: 'nope' is not a field of the spec"),
        ([{**QUESTIONS[0], "for_each": "answers"}], None, "a ranking question cannot be asked for each candidate"),
        ([{**QUESTIONS[1], "candidate": 1}], None, r"questions\[0\]\.candidate: set by truthset"),
        ([QUESTIONS[1], {"name": "grade-1", "type": "text"}], None, "duplicate question names: grade-1"),
        ([QUESTIONS[1]], [{"name": "answers", "type": "responses"}], "needs a `count`"),
        (
            [QUESTIONS[2] | {"field": "prompt"}],
            None,
            "asked for each candidate of 'answers', the spans are marked on it",
        ),
        (
            [QUESTIONS[1]],
            [{"name": "answers", "type": "text", "count": 2}],
            "count: only a responses field has a count",
        ),
    ],
)
def test_bad_for_each_specs_name_the_problem(questions: list, fields: list | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(questions, fields)


def test_a_task_must_have_the_counted_candidates() -> None:
    with pytest.raises(ValueError, match=r"data\.answers must have exactly 2 responses"):
        CompiledSpec(spec()).validate_data({"prompt": "p", "answers": ["a", "b", "c"]})


def test_the_policy_of_a_question_applies_to_each_copy_unless_a_copy_is_named() -> None:
    stored = spec()
    quality = {
        "min_overlap": 1,
        "max_overlap": 5,
        "target_confidence": 0.8,
        "deciding": ["better", "grade"],
        "questions": {"grade": {"target_confidence": 0.9}, "grade-1": {"target_confidence": 0.95}},
    }
    rules = resolve(quality, stored)
    assert [rule.name for rule in rules.deciding] == ["better", "grade-0", "grade-1"]
    assert (rules.questions["grade-0"].target, rules.questions["grade-1"].target) == (0.9, 0.95)
    assert not rules.questions["problems-0"].deciding
    assert [q["group"] for q in expanded_questions(stored)] == ["better", "grade", "grade", "problems", "problems"]


def test_the_questions_asked_read_from_a_stored_spec_are_the_expanded_ones() -> None:
    """asked_questions (for export writers: it loads no question type) names and types the same
    questions, in the same order, as expanded_questions, for every demo spec as stored."""
    from truthset import demo

    for project in demo.PROJECTS:
        stored = Spec.model_validate(project.spec).model_dump(mode="json")
        expanded = [(q["name"], q["type"]) for q in expanded_questions(stored)]
        assert asked_questions(stored) == expanded, project.name
    assert ("grade-1", "rubric") in asked_questions(demo.CHAT_SPEC)

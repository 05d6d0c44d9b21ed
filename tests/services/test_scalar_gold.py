"""Gold scoring of `number` (within its tolerance) and `rubric` (scores only, comments not compared)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from truthset.services import gold

if TYPE_CHECKING:
    from conftest import Org

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "count", "type": "number", "min": 0, "max": 100, "tolerance": 2},
        {
            "name": "grade",
            "type": "rubric",
            "criteria": [{"name": "accuracy", "comment": "optional"}, {"name": "tone", "min": 1, "max": 3}],
        },
    ],
}


def test_a_number_is_right_within_its_tolerance_and_a_rubric_on_its_scores(org: Org) -> None:
    project = org.make_project(spec=SPEC)
    truth = {"count": 40, "grade": {"accuracy": {"score": 4, "comment": "one slip"}, "tone": {"score": 2}}}
    close = {"count": 42, "grade": {"accuracy": {"score": 4}, "tone": {"score": 2}}}
    assert gold.grade(project, truth, close) == {"count": True, "grade": True}
    off = {"count": 42.5, "grade": {"accuracy": {"score": 4, "comment": "one slip"}, "tone": {"score": 3}}}
    assert gold.grade(project, truth, off) == {"count": False, "grade": False}
    assert gold.grade(project, truth, {}) == {"count": False, "grade": False}  # unanswered: wrong

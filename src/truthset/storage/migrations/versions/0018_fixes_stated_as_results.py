"""Reviewers' fixes stated as a result states an answer

A reviewer's fix became the result's answer as the response stored it, so a fixed ranking question
held ``{"winner": 1, "shown_order": [0, 1]}`` (or ``{"order": [...], "shown_order": [...]}``) where
every other result holds the winner's index (or the order), and a fixed rubric kept its comments.
The preference export failed on such a task, and typed columns read it wrong. The code now states a
fix as the type's aggregate states an answer (``CompiledSpec.as_result``); this rewrites the fixes
stored before, in the result's ``answer`` and in its question's entry.

The rewrite is by the stored answer's shape, not by the spec (a migration must not depend on code
that changes later): a ranking's stored form is an object of only ``winner``/``strength``/
``shown_order`` or of only ``order``/``shown_order``; a rubric's, an object whose every value is an
object with a ``score`` (and perhaps a ``comment``). Only questions whose method is ``review_fix``
are touched. Downgrade leaves the rewritten answers as they are (the old form is no better).

Revision ID: 0018
Revises: 0017
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

FIX_METHOD = "review_fix"
RANKING_KEYS = ({"winner", "strength", "shown_order"}, {"order", "shown_order"})


def upgrade() -> None:
    bind = op.get_bind()
    tasks = sa.table("tasks", sa.column("id", sa.String(24)), sa.column("result", sa.JSON()))
    reviewed = sa.table(
        "tasks",
        sa.column("id", sa.String(24)),
        sa.column("result", sa.JSON()),
        sa.column("review_status", sa.String(12)),
    )
    # a fix leaves review_status "fixed"; a later acceptance makes it "accepted" and keeps the fix
    query = sa.select(reviewed.c.id, reviewed.c.result).where(reviewed.c.review_status.in_(["fixed", "accepted"]))
    for task_id, stored in bind.execute(query).all():
        result = json.loads(stored) if isinstance(stored, str) else stored
        if isinstance(result, dict) and _restate(result):
            bind.execute(sa.update(tasks).where(tasks.c.id == task_id).values(result=result))


def _restate(result: dict[str, Any]) -> bool:
    """Rewrite the result's fixed questions in place; whether anything changed."""
    changed = False
    answers = result.get("answer") if isinstance(result.get("answer"), dict) else {}
    for name, question in (result.get("questions") or {}).items():
        if not isinstance(question, dict) or question.get("method") != FIX_METHOD:
            continue
        stated = _stated(question.get("answer"))
        if stated is None:
            continue
        answer, tie, details = stated
        question["answer"], question["tie"] = answer, tie or False
        if details is not None:
            question["details"] = details
        if name in answers:
            answers[name] = answer
        changed = True
    return changed


def _stated(value: Any) -> tuple[Any, list[int] | None, dict[str, Any] | None] | None:
    """(answer, tie, details) of a stored ranking or rubric answer; None for any other value."""
    if not isinstance(value, dict) or not value:
        return None
    keys = set(value)
    if "winner" in keys and keys <= RANKING_KEYS[0]:
        winner, strength = value["winner"], value.get("strength")
        details = {"votes": {str(winner): 1}, "strength": {strength: 1} if strength is not None else None}
        return (None, [0, 1], details) if winner == "tie" else (winner, None, details)
    if "order" in keys and keys <= RANKING_KEYS[1]:
        return list(value["order"]), None, None
    parts = list(value.values())
    rubric = all(isinstance(part, dict) and "score" in part and set(part) <= {"score", "comment"} for part in parts)
    if rubric and any("comment" in part for part in parts):
        return {criterion: {"score": part["score"]} for criterion, part in value.items()}, None, None
    return None


def downgrade() -> None:
    pass

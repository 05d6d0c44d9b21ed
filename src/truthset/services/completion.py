"""When a task is done: a project's quality policy resolved per question, and the decision after a response.

The policy (``schemas.QualityPolicy``) says, per question, ``min_overlap``, ``max_overlap`` and
``target_confidence``. After each response the task completes as soon as every *deciding* question
has reached its target (and its ``min_overlap``), asks for one more worker while one is below target,
and at ``max_overlap`` completes flagged low-confidence or goes to review, as the policy says. A fixed
overlap is ``min_overlap = max_overlap``; a task created with its own ``overlap`` keeps it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from truthset.questions import expanded_questions
from truthset.schemas import QualityPolicy


@dataclass(frozen=True, slots=True)
class QuestionRule:
    name: str
    min_overlap: int
    max_overlap: int
    target: float | None  # None: no confidence target, the question completes at min_overlap
    deciding: bool


class Outcome(StrEnum):
    MORE = "more"  # ask one more worker
    COMPLETE = "complete"  # every deciding question reached its target
    FLAGGED = "flagged"  # complete at max_overlap, below target on some deciding question
    REVIEW = "review"  # complete below target, sent to a reviewer


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    below_target: tuple[str, ...] = ()  # deciding questions under their target

    @property
    def complete(self) -> bool:
        return self.outcome is not Outcome.MORE


@dataclass(frozen=True)
class CompletionRules:
    questions: dict[str, QuestionRule]
    at_max_overlap: str
    policy: QualityPolicy

    @cached_property
    def deciding(self) -> list[QuestionRule]:
        return [rule for rule in self.questions.values() if rule.deciding]

    @property
    def initial_overlap(self) -> int:
        """Judgments a new task is first asked for."""
        return max(rule.min_overlap for rule in self.deciding)

    @property
    def max_overlap(self) -> int:
        return max(rule.max_overlap for rule in self.deciding)

    def decide(self, count: int, confidence: Mapping[str, float | None], fixed_overlap: int | None = None) -> Decision:
        """What happens to a task with ``count`` responses whose questions have these confidences."""
        below = tuple(
            rule.name
            for rule in self.deciding
            if rule.target is not None and (confidence.get(rule.name) or 0.0) < rule.target
        )
        if fixed_overlap is not None:
            if count < fixed_overlap:
                return Decision(Outcome.MORE, below)
            return self._done(below)
        for rule in self.deciding:
            if count < rule.min_overlap or (rule.name in below and count < rule.max_overlap):
                return Decision(Outcome.MORE, below)
        return self._done(below)

    def _done(self, below: tuple[str, ...]) -> Decision:
        if not below:
            return Decision(Outcome.COMPLETE)
        return Decision(Outcome.REVIEW if self.at_max_overlap == "review" else Outcome.FLAGGED, below)


_cache: dict[tuple[str, Any], CompletionRules] = {}
_lock = threading.Lock()


def completion_rules(project: Mapping[str, Any]) -> CompletionRules:
    """The project's policy resolved per question (cached per project version)."""
    key = (project["id"], project["updated_at"])
    rules = _cache.get(key)
    if rules is None:
        rules = resolve(project["quality"], project["spec"])
        with _lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[key] = rules
    return rules


def resolve(quality: Mapping[str, Any], spec: Mapping[str, Any]) -> CompletionRules:
    """Rules per question a task asks. A question asked for each candidate (``grade-0``, ``grade-1``)
    takes the policy the spec's name (``grade``) is given, unless one copy is named itself."""
    policy = QualityPolicy.model_validate(dict(quality))
    questions = expanded_questions(spec)
    deciding = policy.deciding
    if deciding is None:
        deciding = [q["name"] for q in questions if q.get("required", True)] or [q["name"] for q in questions]
    rules = {}
    for question in questions:
        name = question["name"]
        own = policy.questions.get(name) or policy.questions.get(question["group"])
        low = (own.min_overlap if own else None) or policy.min_overlap or 1
        high = max(low, (own.max_overlap if own else None) or policy.max_overlap or low)
        target = (own.target_confidence if own else None) or policy.target_confidence
        rules[name] = QuestionRule(name, low, high, target, name in deciding or question["group"] in deciding)
    return CompletionRules(rules, policy.at_max_overlap, policy)

"""`ranking`: compare model responses, pairwise (A vs B) or as a full N-way order.

The candidates are a ``responses`` field of the task. Answers name candidates by their index in the
task's data, never by where they were shown, so aggregation does not depend on display order. Each
worker sees the candidates in an order shuffled from their assignment (:func:`shown_order`); the
server records that order in the stored answer (``shown_order``) so position bias can be measured.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator
from scipy.special import expit
from scipy.stats import kendalltau

from truthset.quality import BradleyTerry, WorkerModel
from truthset.questions._registry import (
    NAME_PATTERN,
    Aggregate,
    AnswerError,
    QuestionConfig,
    Stated,
    require_field,
)

TIE = "tie"
#: The two classes of a compared pair ``(i, j)``, ``i < j``, in its fitted worker model: the answer put
#: the lower-indexed candidate above the other, or the higher-indexed one.
FIRST, SECOND = "first", "second"
#: The method of a result weighed by the fitted model of compared pairs.
PAIRS_METHOD = "dawid_skene_pairs"
#: A Bradley-Terry win probability within this of 1/2 cannot tell two candidates apart: a tie.
TIE_MARGIN = 0.05
#: Keys of an answer the server fills in; a client's own value is dropped.
SERVER_KEYS = ("shown_order",)


class RankingQuestion(QuestionConfig):
    type: Literal["ranking"] = "ranking"
    field: str = Field(pattern=NAME_PATTERN, description="The `responses` field whose candidates are compared.")
    mode: Literal["pairwise", "order"] = Field("pairwise", description="A vs B, or a full order of N candidates.")
    allow_tie: bool = Field(False, description="Whether a worker may call candidates equally good.")
    strength: list[str] = Field(
        default_factory=list, max_length=5, description='Pairwise: how much better, e.g. ["much", "slightly"].'
    )
    show_models: bool = Field(False, description="Show model names to workers (default: a blind comparison).")

    @field_validator("strength")
    @classmethod
    def _strength(cls, values: list[str]) -> list[str]:
        if any(not v.strip() or len(v) > 100 for v in values):
            raise ValueError("each strength is a non-empty caption of at most 100 characters")
        if len(set(values)) != len(values):
            raise ValueError("strength captions must be different")
        return values


def shown_order(seed: str, field: str, n: int) -> list[int]:
    """The order (task indexes) one assignment shows ``n`` candidates of ``field`` in.

    Seeded by the assignment id through SHA-256, so every process and every reload agree, and
    different workers (different assignments) see different orders.
    """
    digest = hashlib.sha256(f"{seed}\x00{field}".encode()).digest()
    order = list(range(n))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def _groups(order: Sequence[Any]) -> list[list[int]]:
    """An order's entries as groups: ``[2, [0, 3], 1]`` -> ``[[2], [0, 3], [1]]``."""
    return [list(entry) if isinstance(entry, list) else [entry] for entry in order]


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class RankingType:
    name: ClassVar[str] = "ranking"
    config_model: ClassVar[type[QuestionConfig]] = RankingQuestion
    server_keys: ClassVar[tuple[str, ...]] = SERVER_KEYS

    # --- the spec and the data ----------------------------------------------------------------

    def check_spec(self, question: RankingQuestion, fields: Mapping[str, str]) -> None:
        """The question's ``field`` must be a ``responses`` field of the spec."""
        require_field(question, fields, "responses")

    def validate_data(self, question: RankingQuestion, data: Mapping[str, Any]) -> None:
        candidates = data.get(question.field)
        if candidates is None:
            return
        if question.mode == "pairwise" and len(candidates) != 2:
            raise ValueError(f"data.{question.field} must have exactly 2 responses to compare in {question.name}")
        if question.mode == "order" and len(candidates) < 2:
            raise ValueError(f"data.{question.field} must have at least 2 responses to order")

    def display(self, question: RankingQuestion, data: Mapping[str, Any], seed: str) -> dict[str, list[int]]:
        """The order this assignment (``seed``) shows the candidates in, by field."""
        candidates = data.get(question.field)
        if not isinstance(candidates, list):
            return {}
        return {question.field: shown_order(seed, question.field, len(candidates))}

    def blind_fields(self, question: RankingQuestion) -> set[str]:
        """Fields whose candidates a worker sees without model names or ids."""
        return set() if question.show_models else {question.field}

    # --- answers --------------------------------------------------------------------------------

    def validate_answer(self, question: RankingQuestion, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise AnswerError('must be an object, e.g. {"winner": 0} or {"order": [2, 0, 1]}')
        if question.mode == "pairwise":
            return self._pairwise(question, value)
        return self._order(question, value)

    def _pairwise(self, question: RankingQuestion, value: Mapping[str, Any]) -> dict[str, Any]:
        allowed = {"winner", "strength", *SERVER_KEYS}
        if extra := sorted(set(value) - allowed):
            raise AnswerError(f"unknown key(s) {extra}; a pairwise answer has winner and strength")
        winner = value.get("winner")
        if winner == TIE:
            if not question.allow_tie:
                raise AnswerError("winner: this question does not allow a tie")
        elif not (_is_index(winner) and winner < 2):
            choices = "0, 1 or 'tie'" if question.allow_tie else "0 or 1"
            raise AnswerError(f"winner must be {choices} (a candidate's index in the task data)")
        out: dict[str, Any] = {"winner": winner}
        strength = value.get("strength")
        if question.strength and winner != TIE:
            if strength not in question.strength:
                raise AnswerError(f"strength must be one of {question.strength}")
            out["strength"] = strength
        elif strength is not None:
            raise AnswerError("strength is not asked here" if not question.strength else "a tie has no strength")
        return out

    def _order(self, question: RankingQuestion, value: Mapping[str, Any]) -> dict[str, Any]:
        if extra := sorted(set(value) - {"order", *SERVER_KEYS}):
            raise AnswerError(f"unknown key(s) {extra}; an order answer has order")
        order = value.get("order")
        if not isinstance(order, list) or len(order) < 1:
            raise AnswerError("order must be a list of candidate indexes, best first")
        normalised: list[Any] = []
        for entry in order:
            group = entry if isinstance(entry, list) else [entry]
            if not group or not all(_is_index(i) for i in group):
                raise AnswerError("order entries are candidate indexes (or lists of tied indexes)")
            if len(group) > 1 and not question.allow_tie:
                raise AnswerError("order: this question does not allow ties")
            normalised.append(sorted(group) if len(group) > 1 else group[0])
        flat = sorted(i for group in _groups(normalised) for i in group)
        if flat != list(range(len(flat))):
            raise AnswerError("order must name every candidate exactly once")
        return {"order": normalised}

    def bind(
        self, question: RankingQuestion, value: dict[str, Any], data: Mapping[str, Any], seed: str | None
    ) -> dict[str, Any]:
        """Check the answer against the task's candidates; record the order this assignment showed.

        ``seed`` None: the candidates were shown as imported (a reviewer's page).
        """
        n = len(data.get(question.field) or [])
        if question.mode == "order" and sum(len(g) for g in _groups(value["order"])) != n:
            raise AnswerError(f"order must name each of the {n} candidates exactly once")
        order = list(range(n)) if seed is None else shown_order(seed, question.field, n)
        return {**value, "shown_order": order}

    def as_result(self, question: RankingQuestion, value: Any) -> Stated:
        """One answer as the aggregate states it: pairwise, the winner's index (a tie: none, both
        tied) with its vote and strength in the details; an order, the order. The order shown is
        the response's, not the result's."""
        if question.mode == "order":
            return Stated(list(value["order"]))
        winner, strength = value["winner"], value.get("strength")
        details = {"votes": {str(winner): 1}, "strength": {strength: 1} if strength is not None else None}
        return Stated(None, [0, 1], details) if winner == TIE else Stated(winner, None, details)

    def gold_matches(self, question: RankingQuestion, expected: Any, given: Any) -> bool:
        """Right when it names the same winner (and strength) or order; the order shown is no part of it."""
        return _without_server_keys(expected) == _without_server_keys(given)

    # --- aggregation ----------------------------------------------------------------------------

    def aggregate(
        self, question: RankingQuestion, values: Sequence[Any], workers: Sequence[str], model: Any = None
    ) -> Aggregate:
        """Bradley-Terry over the task's comparisons (see :func:`comparisons`); ties stay ties.

        Pairwise: the answer is the winner's index, and the confidence Bradley-Terry's probability
        that it is the better one (with the estimator's weak prior: one vote gives 0.74, never
        certainty). When that probability is within ``TIE_MARGIN`` of 1/2 the result is a tie of both.
        Order: candidates by score, best first; neighbours the scores cannot tell apart form a tied
        group; the confidence is the weakest probability that a group is above the next one (1/2
        when everything is tied).
        """
        n = _candidates_in(question, values)
        if isinstance(model, WorkerModel) and FIRST in model.classes:
            return _fitted_result(question, values, workers, model, n)
        scores = _scores(comparisons(question, values, workers), n)
        if question.mode == "pairwise":
            return _pairwise_result(question, values, float(expit(scores[0] - scores[1])), "bradley_terry")
        return _order_result(scores, lambda upper, lower: float(expit(scores[upper] - scores[lower])), "bradley_terry")

    def compared_pairs(self, question: RankingQuestion, value: Mapping[str, Any]) -> list[tuple[int, int, str]]:
        """The pairs of candidates an answer decides (see :func:`compared_pairs`): the platform fits a
        worker model over every decided pair of a project (``truthset.questions.compared_pairs_of``)."""
        return compared_pairs(question, value)

    # --- agreement ------------------------------------------------------------------------------

    def agreement(
        self, question: RankingQuestion, tasks: Any, workers: Any, values: Sequence[Any]
    ) -> dict[str, float | None]:
        """Pairwise agreement and Kendall's tau between workers on a task, and position bias."""
        by_task: dict[int, list[dict[int, float]]] = {}
        for task, value in zip(np.asarray(tasks).tolist(), values, strict=True):
            by_task.setdefault(task, []).append(_ranks(question, value))
        agree, taus = [], []
        for ranked in by_task.values():
            for a, b in itertools.combinations(ranked, 2):
                items = sorted(set(a) & set(b))
                pairs = list(itertools.combinations(items, 2))
                agree.extend(np.sign(a[i] - a[j]) == np.sign(b[i] - b[j]) for i, j in pairs)
                if question.mode == "order" and len(items) >= 2:
                    tau = kendalltau([a[i] for i in items], [b[i] for i in items]).statistic
                    if not np.isnan(tau):
                        taus.append(tau)
        first_wins, first_n = position_bias(question, values)
        out: dict[str, float | None] = {
            "pairwise_agreement": float(np.mean(agree)) if agree else None,
            "first_shown_wins": first_wins,
            "first_shown_n": float(first_n),
        }
        if question.mode == "order":
            out["kendall_tau"] = float(np.mean(taus)) if taus else None
        return out


def _without_server_keys(value: Any) -> Any:
    return {k: v for k, v in value.items() if k not in SERVER_KEYS} if isinstance(value, Mapping) else value


def _ranks(question: RankingQuestion, value: Mapping[str, Any]) -> dict[int, float]:
    """Candidate -> rank (0 is best; tied candidates share a rank)."""
    if question.mode == "pairwise":
        winner = value["winner"]
        return {0: 0.0, 1: 0.0} if winner == TIE else {winner: 0.0, 1 - winner: 1.0}
    return {i: float(rank) for rank, group in enumerate(_groups(value["order"])) for i in group}


def comparisons(
    question: RankingQuestion, values: Sequence[Any], workers: Sequence[str]
) -> tuple[list[str], list[int], list[int], list[int]]:
    """The answers as Bradley-Terry input (worker, left, right, winner), by rank-breaking.

    Every pair of candidates an answer orders is one comparison; a pair it calls equal is one win
    each way (so a tie pulls the two together about as hard as a vote pulls them apart).
    """
    out: tuple[list[str], list[int], list[int], list[int]] = ([], [], [], [])
    for worker, value in zip(workers, values, strict=True):
        ranks = _ranks(question, value)
        for i, j in itertools.combinations(sorted(ranks), 2):
            if ranks[i] == ranks[j]:
                winners: tuple[int, ...] = (i, j)
            else:
                winners = (i if ranks[i] < ranks[j] else j,)
            for winner in winners:
                for column, item in zip(out, (worker, i, j, winner), strict=True):
                    column.append(item)
    return out


def _candidates_in(question: RankingQuestion, values: Sequence[Any]) -> int:
    if question.mode == "pairwise":
        return 2
    return max(sum(len(g) for g in _groups(v["order"])) for v in values)


def _scores(pairs: tuple[list[str], list[int], list[int], list[int]], n: int) -> np.ndarray:
    """Bradley-Terry log-strengths of candidates ``0..n-1`` (0 for one never compared)."""
    scores = np.zeros(n)
    if pairs[0]:
        model = BradleyTerry().fit(pairs)
        for item, score in model.scores_.items():
            scores[int(item)] = score
    return scores


def compared_pairs(question: RankingQuestion, value: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    """The pairs of candidates an answer decides, each ``(i, j, FIRST or SECOND)`` with ``i < j``:
    which of the two it put above the other. A pair it calls equal decides nothing.

    Each pair of each task is an item of the project's fitted model (two classes): how often each
    worker puts the better of two candidates above the other, measured like a label's confusion
    matrix, so a careless or contrarian judge stops moving preferences.
    """
    ranks = _ranks(question, value)
    return [
        (i, j, FIRST if ranks[i] < ranks[j] else SECOND)
        for i, j in itertools.combinations(sorted(ranks), 2)
        if ranks[i] != ranks[j]
    ]


def _fitted_result(
    question: RankingQuestion, values: Sequence[Any], workers: Sequence[str], model: WorkerModel, n: int
) -> Aggregate:
    """The answers weighed by the project's fitted model of compared pairs: each pair's posterior that
    its lower-indexed candidate is the better one, from the answers that decided it (1/2 when none
    did). Pairwise: the winner and its posterior. Order: candidates by the sum of their chances of
    beating each other one (a Copeland score with probabilities), grouped as in the unfitted order.
    """
    votes: dict[tuple[int, int], tuple[list[str], list[str]]] = {}
    for worker, value in zip(workers, values, strict=True):
        for i, j, label in compared_pairs(question, value):
            who, labels = votes.setdefault((i, j), ([], []))
            who.append(worker)
            labels.append(label)
    first = model.classes.index(FIRST)
    p_first = {pair: float(model.posterior(*votes[pair])[first]) for pair in votes}

    def above(upper: int, lower: int) -> float:
        if upper < lower:
            return p_first.get((upper, lower), 0.5)
        return 1.0 - p_first.get((lower, upper), 0.5)

    if question.mode == "pairwise":
        return _pairwise_result(question, values, above(0, 1), PAIRS_METHOD)
    scores = np.array([sum(above(i, j) for j in range(n) if j != i) for i in range(n)])
    return _order_result(scores, above, PAIRS_METHOD)


def _pairwise_result(question: RankingQuestion, values: Sequence[Any], p_first: float, method: str) -> Aggregate:
    winner = 0 if p_first >= 0.5 else 1
    confidence = max(p_first, 1.0 - p_first)
    votes = Counter(str(v["winner"]) for v in values)
    strengths = Counter(v["strength"] for v in values if v.get("strength") is not None and v["winner"] == winner)
    details = {
        "p_better": {"0": round(p_first, 6), "1": round(1.0 - p_first, 6)},
        "votes": dict(votes),
        "strength": dict(strengths) if question.strength else None,
    }
    tied = confidence - 0.5 <= TIE_MARGIN
    return Aggregate(
        value=None if tied else winner,
        confidence=confidence,
        method=method,
        details=details,
        tie=[0, 1] if tied else None,
    )


def _order_result(scores: np.ndarray, above: Callable[[int, int], float], method: str) -> Aggregate:
    """Candidates by score, best first; neighbours whose chance of being in that order (``above``) is
    within ``TIE_MARGIN`` of 1/2 form a tied group; the confidence is the weakest link's chance."""
    ranked = [int(i) for i in np.argsort(-scores, kind="stable")]
    groups: list[list[int]] = [[ranked[0]]]
    links = [0.5]  # all tied: no more sure of one order than of its reverse
    for upper, lower in itertools.pairwise(ranked):
        p_above = above(upper, lower)
        if p_above - 0.5 <= TIE_MARGIN:
            groups[-1].append(lower)
        else:
            groups.append([lower])
            links.append(p_above)
    order = [sorted(g) if len(g) > 1 else g[0] for g in groups]
    return Aggregate(
        value=order,
        confidence=min(links[1:]) if len(links) > 1 else links[0],
        method=method,
        details={"scores": {str(i): round(float(s), 6) for i, s in enumerate(scores)}},
        tie=None,
    )


def position_bias(question: RankingQuestion, values: Sequence[Any]) -> tuple[float | None, int]:
    """Share of decided comparisons won by the candidate shown first of the two, and their count.

    Pairwise: how often the candidate shown first won. Order: over every pair an answer ordered,
    how often the one shown earlier was put above the other. 0.5 is no bias.
    """
    wins = n = 0
    for value in values:
        shown = value.get("shown_order")
        if not isinstance(shown, list):
            continue
        position = {item: p for p, item in enumerate(shown)}
        ranks = _ranks(question, value)
        for i, j in itertools.combinations(sorted(ranks), 2):
            if ranks[i] == ranks[j] or i not in position or j not in position:
                continue
            earlier = i if position[i] < position[j] else j
            better = i if ranks[i] < ranks[j] else j
            wins += earlier == better
            n += 1
    return (wins / n if n else None), n


QUESTION = RankingType()

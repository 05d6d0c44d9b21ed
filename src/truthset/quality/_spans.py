"""Text spans (named entities): matching spans across workers, voting per matched span, span F1.

A span is ``(start, end, label)`` with half-open character offsets ``[start, end)``. Two spans
*match* when their character IoU (Jaccard index of the two offset ranges: shared characters over
characters covered by either) reaches a threshold; the threshold 1.0 is exact matching (same start
and end). Matching is one-to-one per worker: a cluster of matched spans holds at most one span of
each worker, and every pair of spans in a cluster matches (complete linkage), so a chain of
overlapping spans never drifts into one cluster.

Voting per cluster follows the rule used for every type without worker models: a span is kept when
more than half of the workers marked it, dropped when fewer than half did, and undecided (a tie)
at exactly half; its label is the majority of the labels its markers gave, a tie when the top
labels have equal votes (never resolved by order). Confidence is Laplace's rule of succession,
``(agree + 1) / (n + 2)``: the chance that one more worker would agree, 2/3 for a single answer.

References: the Jaccard index, P. Jaccard, "The distribution of the flora in the alpine zone",
New Phytologist 11(2):37-50, 1912, https://doi.org/10.1111/j.1469-8137.1912.tb05611.x; greedy
one-to-one matching by overlap as in M. Everingham et al., "The PASCAL Visual Object Classes (VOC)
Challenge", IJCV 88:303-338, 2010, https://doi.org/10.1007/s11263-009-0275-4; pairwise F1 as the
agreement of span annotations, G. Hripcsak and A. S. Rothschild, "Agreement, the F-measure, and
reliability in information retrieval", JAMIA 12(3):296-298, 2005, https://doi.org/10.1197/jamia.M1733.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

__all__ = [
    "SpanDecision",
    "aggregate_spans",
    "match_spans",
    "pairwise_span_f1",
    "span_f1_counts",
    "span_iou",
]

Span = tuple[int, int, Any]  # (start, end, label), offsets half-open
Status = Literal["kept", "dropped", "tie"]


def span_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Character IoU of two half-open ranges: shared characters over characters in either."""
    shared = min(a[1], b[1]) - max(a[0], b[0])
    if shared <= 0:
        return 0.0
    return shared / (max(a[1], b[1]) - min(a[0], b[0]))


def _overlapping_pairs(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j`` in start order, of spans that share at least one character.

    ``starts``/``ends`` must be sorted by start. After sorting, span ``j > i`` overlaps span ``i``
    exactly when it starts before ``i`` ends, so a binary search bounds each span's partners: the
    work grows with the overlapping pairs, not with the square of the spans.
    """
    n = starts.size
    upper = np.searchsorted(starts, ends, side="left")  # first span starting at or after each end
    counts = np.maximum(upper - np.arange(n) - 1, 0)
    first = np.repeat(np.arange(n), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return first, first + 1 + offsets


def _pair_ious(starts: np.ndarray, ends: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    shared = np.minimum(ends[i], ends[j]) - np.maximum(starts[i], starts[j])
    union = np.maximum(ends[i], ends[j]) - np.minimum(starts[i], starts[j])
    return np.where(shared > 0, shared / np.maximum(union, 1), 0.0)


def match_spans(
    answers: Sequence[Sequence[Span]], *, threshold: float = 1.0, by_label: bool = False
) -> list[list[tuple[int, int]]]:
    """Group the spans of several workers' answers to one text into clusters of matching spans.

    ``answers[w]`` is worker ``w``'s list of ``(start, end, label)``. Returns clusters as lists of
    ``(worker index, span index)``, each holding at most one span per worker, every pair in it with
    IoU >= ``threshold`` (and the same label when ``by_label``); every span is in exactly one
    cluster. Clusters are merged greedily from the most overlapping pair down (ties in start order),
    so the result does not depend on the order of the workers. ``threshold`` 1.0 matches exact
    offsets only.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    flat = [(int(s), int(e), label, w, k) for w, spans in enumerate(answers) for k, (s, e, label) in enumerate(spans)]
    flat.sort(key=lambda item: (item[0], item[1], str(item[2]), item[3], item[4]))
    starts = np.array([f[0] for f in flat], dtype=np.int64)
    ends = np.array([f[1] for f in flat], dtype=np.int64)
    i, j = _overlapping_pairs(starts, ends)
    iou = _pair_ious(starts, ends, i, j)
    worker = np.array([f[3] for f in flat], dtype=np.int64)
    keep = (iou >= threshold - 1e-12) & (worker[i] != worker[j])
    if by_label:
        keep &= np.array([flat[a][2] == flat[b][2] for a, b in zip(i, j, strict=True)], dtype=bool)
    i, j, iou = i[keep], j[keep], iou[keep]
    order = np.lexsort((j, i, -iou))  # most overlapping pairs first; equal IoU in start order
    clusters = _complete_linkage(flat, i[order], j[order], threshold)
    return [[(flat[m][3], flat[m][4]) for m in members] for members in clusters]


def _complete_linkage(flat: list[Any], first: np.ndarray, second: np.ndarray, threshold: float) -> list[list[int]]:
    """Merge the candidate pairs in order while every cross pair matches and no worker repeats."""
    cluster_of = list(range(len(flat)))
    members: dict[int, list[int]] = {k: [k] for k in range(len(flat))}
    for a, b in zip(first.tolist(), second.tolist(), strict=True):
        ca, cb = cluster_of[a], cluster_of[b]
        if ca == cb or not _can_merge(flat, members[ca], members[cb], threshold):
            continue
        members[ca].extend(members.pop(cb))
        for m in members[ca]:
            cluster_of[m] = ca
    return [sorted(group) for _, group in sorted(members.items())]


def _can_merge(flat: list[Any], left: list[int], right: list[int], threshold: float) -> bool:
    if {flat[m][3] for m in left} & {flat[m][3] for m in right}:
        return False  # one span per worker in a cluster
    return all(
        span_iou((flat[a][0], flat[a][1]), (flat[b][0], flat[b][1])) >= threshold - 1e-12 for a in left for b in right
    )


@dataclass(frozen=True, slots=True)
class SpanDecision:
    """The vote on one cluster of matched spans.

    ``status`` is ``kept`` (more than half of the ``workers`` marked it), ``dropped`` (fewer than
    half) or ``tie`` (exactly half, or equal top labels, or equally supported offsets). ``label``
    is None when the labels tie; ``candidates`` then lists every ``(start, end, label)`` the
    evidence cannot tell apart. ``marked`` workers marked the span, ``agree`` of them with ``label``.
    """

    start: int
    end: int
    label: Any
    status: Status
    confidence: float
    marked: int
    agree: int
    workers: int
    candidates: tuple[Span, ...] = ()


def aggregate_spans(
    answers: Sequence[Sequence[Span]],
    *,
    threshold: float = 1.0,
    by_label: bool = False,
    allow_overlap: bool = True,
) -> list[SpanDecision]:
    """Match the spans of ``answers`` (one list per worker) and vote on each cluster.

    Offsets of a cluster are the ``(start, end)`` most of its members gave; between equally common
    ones, the one with the highest summed IoU to all members (the medoid); a remaining tie is a tie.
    Without ``allow_overlap``, kept spans that overlap each other are resolved by their number of
    agreeing workers, and equal support is a tie of both. Decisions come sorted by offsets.
    """
    n = len(answers)
    decisions = [
        _decide([answers[w][k] for w, k in cluster], n)
        for cluster in match_spans(answers, threshold=threshold, by_label=by_label)
    ]
    if not allow_overlap:
        decisions = _resolve_overlaps(decisions)
    return sorted(decisions, key=lambda d: (d.start, d.end, str(d.label)))


def _succession(agree: int, n: int) -> float:
    return (agree + 1) / (n + 2)


def _decide(members: list[Span], n: int) -> SpanDecision:
    # plain dicts, not Counter: a submit that completes a task decides every cluster of its text
    marked = len(members)
    offset_votes: dict[tuple[int, int], int] = {}
    label_votes: dict[Any, int] = {}
    for s, e, label in members:
        offset_votes[(s, e)] = offset_votes.get((s, e), 0) + 1
        label_votes[label] = label_votes.get(label, 0) + 1
    offsets = _consensus_offsets(offset_votes, members)
    agree = max(label_votes.values())
    labels = sorted((label for label, count in label_votes.items() if count == agree), key=str)
    candidates = tuple((s, e, label) for s, e in offsets for label in labels)
    if 2 * marked < n:
        status, confidence = "dropped", _succession(n - marked, n)
    elif 2 * marked == n:
        status, confidence = "tie", _succession(marked, n)
    elif len(candidates) > 1:  # as sure as the support of the best single candidate
        status, confidence = "tie", _succession(min(agree, offset_votes[offsets[0]]), n)
    else:
        status, confidence = "kept", _succession(agree, n)
    start, end = offsets[0]
    label = labels[0] if len(labels) == 1 else None
    return SpanDecision(start, end, label, status, confidence, marked, agree, n, candidates if status != "kept" else ())


def _consensus_offsets(votes: dict[tuple[int, int], int], members: list[Span]) -> list[tuple[int, int]]:
    """The most common offsets; between equally common ones the medoid; the tied rest in order."""
    if len(votes) == 1:
        return list(votes)
    top = max(votes.values())
    common = sorted(o for o, c in votes.items() if c == top)
    if len(common) == 1:
        return common
    support = {o: sum(span_iou(o, (s, e)) for s, e, _ in members) for o in common}
    best = max(support.values())
    return [o for o in common if support[o] >= best - 1e-12]


def _resolve_overlaps(decisions: list[SpanDecision]) -> list[SpanDecision]:
    """Kept spans that overlap: the better supported one stays; equal support makes both a tie."""
    kept = sorted((d for d in decisions if d.status == "kept"), key=lambda d: (d.start, d.end))
    losers: dict[int, SpanDecision] = {}
    for a_index, a in enumerate(kept):
        for b in kept[a_index + 1 :]:
            if b.start >= a.end:
                break
            if a.agree != b.agree:
                loser = a if a.agree < b.agree else b
                losers[id(loser)] = _with_status(loser, "dropped")
            else:
                for d in (a, b):
                    losers.setdefault(id(d), _with_status(d, "tie"))
    return [losers.get(id(d), d) for d in decisions]


def _with_status(decision: SpanDecision, status: Status) -> SpanDecision:
    candidates = decision.candidates or ((decision.start, decision.end, decision.label),)
    return replace(decision, status=status, candidates=candidates)


# --- agreement ---------------------------------------------------------------------------------------


def span_f1_counts(a: Sequence[Span], b: Sequence[Span], *, threshold: float = 1.0) -> tuple[int, int, int]:
    """``(matched, len(a), len(b))`` for two workers' spans on one text (labels must agree to match).

    ``2 * matched / (len(a) + len(b))`` is their F1, the same whichever worker is the reference.
    The matching is :func:`match_spans`' for two workers (greedy one-to-one, most overlapping pair
    first), done in plain Python: agreement figures call this once per pair of workers per task.
    Identical spans (IoU 1) are matched first, as the greedy order would; only the rest is searched.
    """
    if not threshold > 0.0:
        raise ValueError("threshold must be in (0, 1]")
    counts_a, counts_b = Counter(map(tuple, a)), Counter(map(tuple, b))
    shared = counts_a & counts_b
    exact = sum(shared.values())
    if threshold >= 1.0 or exact == len(a) or exact == len(b):
        return exact, len(a), len(b)
    rest_a, rest_b = list((counts_a - shared).elements()), list((counts_b - shared).elements())
    return exact + _greedy_matches(rest_a, rest_b, threshold), len(a), len(b)


def _greedy_matches(a: list[Span], b: list[Span], threshold: float) -> int:
    # equal IoUs are taken in match_spans' order (by start, end, label; a before b), so both agree
    ranked = sorted(
        [(s[0], s[1], str(s[2]), 0, k) for k, s in enumerate(a)]
        + [(s[0], s[1], str(s[2]), 1, k) for k, s in enumerate(b)]
    )
    rank = {(w, k): r for r, (*_, w, k) in enumerate(ranked)}
    pairs = sorted(
        (negative_iou, min(rank[0, i], rank[1, j]), max(rank[0, i], rank[1, j]), i, j)
        for negative_iou, i, j in _candidate_pairs(a, b, threshold)
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    for *_, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return len(used_a)


def _candidate_pairs(a: Sequence[Span], b: Sequence[Span], threshold: float) -> list[tuple[float, int, int]]:
    """``(-iou, i, j)`` for every span ``a[i]`` matching ``b[j]`` (same label, IoU >= threshold).

    ``b`` is searched in start order: the spans starting before ``a[i]`` ends, scanned back while
    the longest end so far still reaches past ``a[i]``'s start.
    """
    order = sorted(range(len(b)), key=lambda k: (b[k][0], b[k][1]))
    starts = [b[k][0] for k in order]
    reach = list(itertools.accumulate((b[k][1] for k in order), max))
    out = []
    for i, (start, end, label) in enumerate(a):
        k = bisect.bisect_left(starts, end) - 1
        while k >= 0 and reach[k] > start:
            j = order[k]
            if b[j][2] == label:
                iou = span_iou((start, end), (b[j][0], b[j][1]))
                if iou >= threshold - 1e-12:
                    out.append((-iou, i, j))
            k -= 1
    return out


def pairwise_span_f1(
    tasks: Sequence[Any], workers: Sequence[Any], answers: Sequence[Sequence[Span]], *, threshold: float = 1.0
) -> float:
    """Micro-averaged F1 over every pair of workers who answered the same task.

    Sums ``2 * matched`` and ``len(a) + len(b)`` over all pairs before dividing, so a pair that both
    marked nothing adds nothing; NaN when no pair marked any span. A worker's first answer to a task
    counts (one answer per worker and task, as the platform stores them).
    """
    by_task: dict[Any, dict[Any, Sequence[Span]]] = {}
    for task, worker, spans in zip(tasks, workers, answers, strict=True):
        by_task.setdefault(task, {}).setdefault(worker, spans)
    if threshold >= 1.0:
        matched, total = _exact_pair_counts(by_task.values())
    else:
        matched = total = 0
        for answered in by_task.values():
            for a, b in itertools.combinations(answered.values(), 2):
                m, len_a, len_b = span_f1_counts(a, b, threshold=threshold)
                matched += m
                total += len_a + len_b
    return 2 * matched / total if total else float("nan")


def _exact_pair_counts(tasks: Iterable[dict[Any, Sequence[Span]]]) -> tuple[int, int]:
    """Exact matches summed over worker pairs without forming the pairs.

    A span that ``c`` workers of a task marked (each at most once) is matched by ``c (c - 1) / 2``
    pairs; each worker's spans are counted in the ``m - 1`` pairs of the task's ``m`` workers.
    """
    matched = total = 0
    for answered in tasks:
        m = len(answered)
        if m < 2:
            continue
        marked = Counter(span for spans in answered.values() for span in set(map(tuple, spans)))
        matched += sum(c * (c - 1) // 2 for c in marked.values())
        total += (m - 1) * sum(len(spans) for spans in answered.values())
    return matched, total

"""Span matching, voting and span F1 on small hand-worked cases, plus matching invariants."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthset.quality import aggregate_spans, match_spans, pairwise_span_f1, span_f1_counts, span_iou


def test_span_iou_counts_characters() -> None:
    assert span_iou((0, 10), (0, 10)) == 1.0
    assert span_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert span_iou((0, 4), (4, 8)) == 0.0  # half-open: touching spans share nothing
    assert span_iou((2, 4), (0, 10)) == pytest.approx(0.2)


def test_exact_matching_groups_equal_offsets_only() -> None:
    a = [(0, 5, "PER"), (10, 15, "LOC")]
    b = [(0, 5, "ORG"), (10, 14, "LOC")]
    clusters = match_spans([a, b], threshold=1.0)
    assert sorted(map(sorted, clusters)) == [[(0, 0), (1, 0)], [(0, 1)], [(1, 1)]]


def test_overlap_matching_uses_the_threshold() -> None:
    a = [(10, 15, "LOC")]
    b = [(10, 14, "LOC")]  # IoU 4/5
    assert len(match_spans([a, b], threshold=0.8)) == 1
    assert len(match_spans([a, b], threshold=0.81)) == 2


def test_by_label_keeps_labels_apart() -> None:
    answers = [[(0, 5, "PER")], [(0, 5, "ORG")]]
    assert len(match_spans(answers, by_label=False)) == 1
    assert len(match_spans(answers, by_label=True)) == 2


def test_complete_linkage_stops_a_chain() -> None:
    # a~b and b~c overlap by 2/3, but a and c only by 1/3: one pair matches, the third span stays alone
    answers = [[(0, 4, "X")], [(1, 5, "X")], [(2, 6, "X")]]
    clusters = match_spans(answers, threshold=0.5)
    assert sorted(len(c) for c in clusters) == [1, 2]


def test_one_span_per_worker_in_a_cluster() -> None:
    # worker 0 marked two nested spans; worker 1's span can join only one of them
    answers = [[(0, 10, "X"), (0, 9, "X")], [(0, 10, "X")]]
    clusters = match_spans(answers, threshold=0.5)
    assert sorted(map(sorted, clusters)) == [[(0, 0), (1, 0)], [(0, 1)]]


def test_spans_that_agree_on_offsets() -> None:
    text_spans = [(0, 5, "PER"), (16, 22, "LOC")]
    decisions = aggregate_spans([text_spans, text_spans, text_spans])
    assert [(d.start, d.end, d.label, d.status) for d in decisions] == [
        (0, 5, "PER", "kept"),
        (16, 22, "LOC", "kept"),
    ]
    assert all(d.confidence == pytest.approx(4 / 5) for d in decisions)  # (3 + 1) / (3 + 2)


def test_a_span_two_of_three_marked_is_kept_one_of_three_dropped() -> None:
    decisions = aggregate_spans([[(0, 5, "PER"), (7, 9, "ORG")], [(0, 5, "PER")], []])
    kept, dropped = decisions
    assert (kept.start, kept.end, kept.label, kept.status, kept.marked) == (0, 5, "PER", "kept", 2)
    assert kept.confidence == pytest.approx(3 / 5)
    assert (dropped.start, dropped.status) == (7, "dropped")
    assert dropped.confidence == pytest.approx(3 / 5)  # two of three left it out


def test_label_majority_and_label_tie() -> None:
    three = aggregate_spans([[(0, 5, "PER")], [(0, 5, "PER")], [(0, 5, "ORG")]])
    assert (three[0].label, three[0].status, three[0].agree) == ("PER", "kept", 2)
    two = aggregate_spans([[(0, 5, "PER")], [(0, 5, "ORG")]])[0]
    assert (two.label, two.status) == (None, "tie")
    assert set(two.candidates) == {(0, 5, "ORG"), (0, 5, "PER")}
    assert two.confidence == pytest.approx(2 / 4)


def test_half_of_the_workers_is_a_tie() -> None:
    decision = aggregate_spans([[(0, 5, "PER")], []])[0]
    assert decision.status == "tie"
    assert decision.candidates == ((0, 5, "PER"),)
    assert decision.confidence == pytest.approx(2 / 4)


def test_one_answer_is_never_certain() -> None:
    decision = aggregate_spans([[(3, 8, "PER")]])[0]
    assert decision.status == "kept"
    assert decision.confidence == pytest.approx(2 / 3)


def test_overlap_consensus_takes_the_most_common_offsets() -> None:
    decisions = aggregate_spans([[(0, 10, "ORG")], [(0, 10, "ORG")], [(0, 9, "ORG")]], threshold=0.5)
    assert [(d.start, d.end, d.status, d.marked) for d in decisions] == [(0, 10, "kept", 3)]


def test_overlap_consensus_medoid_breaks_a_count_tie() -> None:
    # three different offsets, once each: (1, 10) overlaps the two others most
    decisions = aggregate_spans([[(0, 10, "X")], [(1, 10, "X")], [(1, 11, "X")]], threshold=0.5)
    assert [(d.start, d.end, d.status) for d in decisions] == [(1, 10, "kept")]


def test_overlap_offsets_that_the_evidence_cannot_order_are_a_tie() -> None:
    decision = aggregate_spans([[(0, 10, "X")], [(0, 11, "X")]], threshold=0.5)[0]
    assert decision.status == "tie"
    assert set(decision.candidates) == {(0, 10, "X"), (0, 11, "X")}
    assert decision.confidence == pytest.approx(2 / 4)  # each offsets given by one worker of two


def test_no_overlap_resolves_kept_spans_that_overlap() -> None:
    # each worker's spans are apart, yet the consensus A (0-10) and B (8-14) overlap
    a = [[(0, 10, "A")], [(0, 10, "A")], [(0, 7, "A"), (8, 14, "B")], [(9, 14, "B")], [(8, 14, "B")]]
    both = aggregate_spans(a, threshold=0.5, allow_overlap=True)
    assert [(d.start, d.end, d.status) for d in both] == [(0, 10, "kept"), (8, 14, "kept")]
    tied = aggregate_spans(a, threshold=0.5, allow_overlap=False)  # 3 agree on each: the evidence cannot choose
    assert [(d.start, d.status) for d in tied] == [(0, "tie"), (8, "tie")]
    a[3] = [(9, 14, "C")]  # now B has two agreeing labels against A's three
    resolved = aggregate_spans(a, threshold=0.5, allow_overlap=False)
    assert [(d.start, d.label, d.status) for d in resolved] == [(0, "A", "kept"), (8, "B", "dropped")]


def test_span_f1_counts_exact_and_overlap() -> None:
    a = [(0, 5, "PER"), (10, 15, "LOC")]
    b = [(0, 5, "PER"), (10, 14, "LOC"), (20, 25, "ORG")]
    assert span_f1_counts(a, b) == (1, 2, 3)
    assert span_f1_counts(a, b, threshold=0.5) == (2, 2, 3)
    assert span_f1_counts([(0, 5, "PER")], [(0, 5, "ORG")]) == (0, 1, 1)  # the label must agree


def test_span_f1_counts_break_equal_overlaps_like_match_spans() -> None:
    # b0 overlaps a0 and a1 alike (IoU 0.6), b1 only a0: greedy order decides between one and two matches
    a = [(0, 10, "X"), (4, 14, "X")]
    b = [(4, 10, "X"), (0, 6, "X")]
    clusters = match_spans([a, b], threshold=0.5, by_label=True)
    assert span_f1_counts(a, b, threshold=0.5)[0] == sum(len(c) == 2 for c in clusters)


def test_pairwise_span_f1_is_micro_averaged() -> None:
    tasks = ["t1", "t1", "t1", "t2", "t2"]
    workers = ["a", "b", "c", "a", "b"]
    answers = [[(0, 5, "P")], [(0, 5, "P")], [], [(1, 2, "P"), (3, 4, "P")], [(1, 2, "P")]]
    # pairs on t1: a-b 1 of (1+1), a-c 0 of (1+0), b-c 0 of (1+0); on t2: a-b 1 of (2+1)
    assert pairwise_span_f1(tasks, workers, answers) == pytest.approx(2 * 2 / (2 + 1 + 1 + 3))
    assert math.isnan(pairwise_span_f1(["t"], ["a"], [[(0, 1, "P")]]))


spans_of = st.lists(
    st.tuples(st.integers(0, 30), st.integers(1, 8), st.sampled_from(["A", "B"])).map(
        lambda t: (t[0], t[0] + t[1], t[2])
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(spans_of, min_size=1, max_size=5), st.sampled_from([1.0, 0.5, 0.3]), st.booleans())
def test_matching_invariants(answers: list, threshold: float, by_label: bool) -> None:
    clusters = match_spans(answers, threshold=threshold, by_label=by_label)
    members = [m for c in clusters for m in c]
    assert sorted(members) == sorted((w, k) for w, spans in enumerate(answers) for k in range(len(spans)))
    for cluster in clusters:
        assert len({w for w, _ in cluster}) == len(cluster)  # one span per worker
        spans = [answers[w][k] for w, k in cluster]
        for x in spans:
            for y in spans:
                assert span_iou(x[:2], y[:2]) >= threshold - 1e-9
                assert not by_label or x[2] == y[2]
    # the clusters do not depend on the order of the workers
    reordered = match_spans(answers[::-1], threshold=threshold, by_label=by_label)
    n = len(answers)
    as_spans = sorted(sorted(answers[w][k] + (w,) for w, k in c) for c in clusters)
    as_spans_reordered = sorted(sorted(answers[::-1][w][k] + (n - 1 - w,) for w, k in c) for c in reordered)
    assert as_spans == as_spans_reordered


@settings(max_examples=200, deadline=None)
@given(st.lists(spans_of, min_size=1, max_size=5), st.sampled_from([1.0, 0.5, 0.3]), st.booleans())
def test_decision_invariants(answers: list, threshold: float, allow_overlap: bool) -> None:
    decisions = aggregate_spans(answers, threshold=threshold, by_label=allow_overlap, allow_overlap=allow_overlap)
    n = len(answers)
    for d in decisions:
        assert 0 < d.confidence <= (n + 1) / (n + 2)  # never certain
        assert d.workers == n and 1 <= d.marked <= n and 1 <= d.agree <= d.marked
        assert d.status == "kept" or d.candidates  # what is not kept says what it was
        assert (d.status == "kept") <= (2 * d.marked > n)  # kept only by more than half
    kept = sorted((d.start, d.end) for d in decisions if d.status == "kept")
    if not allow_overlap:
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(kept))


@settings(max_examples=300, deadline=None)
@given(spans_of, spans_of, st.sampled_from([1.0, 0.5, 0.3]))
def test_span_f1_counts_agree_with_match_spans(a: list, b: list, threshold: float) -> None:
    """The plain-Python matching of two workers gives match_spans' count, equal IoUs included."""
    clusters = match_spans([a, b], threshold=threshold, by_label=True)
    assert span_f1_counts(a, b, threshold=threshold) == (sum(len(c) == 2 for c in clusters), len(a), len(b))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), spans_of), max_size=12), st.sampled_from([1.0, 0.5]))
def test_pairwise_span_f1_sums_the_pairs(rows: list, threshold: float) -> None:
    """The pooled figure equals the sum over every pair of workers on a task, formed one by one."""
    rows = [(t, w, sorted(set(spans))) for t, w, spans in rows]  # answers as the platform stores them
    first: dict = {}
    for t, w, spans in rows:
        first.setdefault((t, w), spans)
    matched = total = 0
    for (t1, w1), a in first.items():
        for (t2, w2), b in first.items():
            if t1 == t2 and w1 < w2:
                m, len_a, len_b = span_f1_counts(a, b, threshold=threshold)
                matched, total = matched + m, total + len_a + len_b
    f1 = pairwise_span_f1([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], threshold=threshold)
    assert (math.isnan(f1) and total == 0) or f1 == pytest.approx(2 * matched / total)

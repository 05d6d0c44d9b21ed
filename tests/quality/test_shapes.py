"""Shapes on an image: IoU, clustering across workers, consensus, pairwise matching (worked by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthset.quality import box_iou, cluster_shapes, match_pair, median_box, medoid, polygon_iou


def test_box_iou_by_hand() -> None:
    # 10x10 boxes, the second shifted 5 right: intersection 50, union 150
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]]))
    assert iou == pytest.approx(np.array([[1 / 3, 0.0, 1.0]]))


def test_box_iou_of_empty_boxes_is_zero_not_nan() -> None:
    assert box_iou(np.array([[3, 3, 0, 0]]), np.array([[3, 3, 0, 0]])).tolist() == [[0.0]]


def test_polygon_iou_matches_the_box_iou_of_the_same_squares() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
    shifted = square + np.array([5, 0])
    triangle = np.array([[0, 0], [10, 0], [0, 10]])  # half the square
    iou = polygon_iou([square], [shifted, triangle])
    assert iou == pytest.approx(np.array([[1 / 3, 0.5]]))


def test_a_self_intersecting_polygon_is_made_valid_not_zero() -> None:
    bowtie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]])  # two triangles of area 25 each
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
    assert polygon_iou([bowtie], [square])[0, 0] == pytest.approx(0.5)


def test_two_of_three_boxes_overlap_consensus_near_them_third_an_outlier() -> None:
    boxes = np.array([[10, 10, 100, 50], [12, 11, 98, 52], [300, 300, 50, 50]])
    workers = np.array([0, 1, 2])
    clusters = cluster_shapes(box_iou(boxes, boxes), workers)
    assert clusters[0] == clusters[1] != clusters[2]
    consensus = median_box(boxes[clusters == clusters[0]])
    # edges: left median(10, 12) = 11, top 10.5, right median(110, 110) = 110, bottom median(60, 63) = 61.5
    assert consensus == pytest.approx([11, 10.5, 99, 51])


def test_one_worker_never_draws_one_object_twice() -> None:
    # worker 0 drew two near-identical boxes: they stay apart; worker 1's box joins the closer one
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [0, 0, 10, 10]])
    clusters = cluster_shapes(box_iou(boxes, boxes), np.array([0, 0, 1]))
    assert clusters[0] != clusters[1] and clusters[2] == clusters[0]


def test_clusters_below_the_threshold_stay_apart() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10]])  # IoU 1/3
    assert len(set(cluster_shapes(box_iou(boxes, boxes), np.array([0, 1])).tolist())) == 2
    assert len(set(cluster_shapes(box_iou(boxes, boxes), np.array([0, 1]), threshold=0.3).tolist())) == 1


def test_medoid_is_the_member_most_like_the_others() -> None:
    iou = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.4], [0.2, 0.4, 1.0]])
    assert medoid(iou) == 1  # mean IoU: 0.55, 0.65, 0.3


def test_match_pair_counts_unmatched_shapes_as_zero() -> None:
    # A drew two boxes, B one matching A's second at IoU 0.8 with the same label
    iou = np.array([[0.0], [0.8]])
    match = match_pair(iou, ["car", "person"], ["person"])
    assert match.mean_iou == pytest.approx(0.4)  # 0.8 over max(2, 1)
    assert match.f1 == pytest.approx(2 / 3)  # 2 * 1 / (2 + 1)
    assert match_pair(iou, ["car", "person"], ["car"]).f1 == 0.0  # matched, but another label
    assert match_pair(np.zeros((0, 0)), [], []).mean_iou == 1.0  # both saw nothing: full agreement


boxes_strategy = st.lists(
    st.tuples(*[st.floats(0, 500, allow_nan=False)] * 2, *[st.floats(0.5, 200, allow_nan=False)] * 2),
    min_size=1,
    max_size=12,
)


@given(boxes_strategy)
@settings(max_examples=80, deadline=None)
def test_box_iou_is_symmetric_bounded_and_one_on_itself(boxes: list[tuple[float, ...]]) -> None:
    a = np.array(boxes)
    iou = box_iou(a, a)
    assert np.allclose(iou, iou.T) and (iou >= 0).all() and (iou <= 1 + 1e-12).all()
    assert np.allclose(np.diag(iou), 1.0)


@given(boxes_strategy, st.lists(st.integers(0, 3), min_size=12, max_size=12))
@settings(max_examples=80, deadline=None)
def test_a_cluster_never_holds_two_shapes_of_one_worker(boxes: list[tuple[float, ...]], owners: list[int]) -> None:
    a = np.array(boxes)
    workers = np.array(owners[: len(a)])
    clusters = cluster_shapes(box_iou(a, a), workers)
    for cluster in set(clusters.tolist()):
        members = workers[clusters == cluster]
        assert len(set(members.tolist())) == len(members)

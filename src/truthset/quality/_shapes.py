"""Shapes on an image (boxes, polygons): overlap, clustering across workers, consensus, agreement.

The method is the usual one for crowdsourced object detection: shapes drawn by different workers
are matched by intersection over union (IoU), a cluster of matched shapes is an object when more
than half of the workers drew it, and its consensus shape is the median box (or, for polygons, the
medoid: the member with the highest mean IoU to the others).

References: Sorokin, A. and Forsyth, D. "Utility data annotation with Amazon Mechanical Turk",
CVPR Workshops 2008, doi:10.1109/CVPRW.2008.4562953; Papadopoulos, D. P. et al. "Extreme clicking
for efficient object annotation", ICCV 2017, doi:10.1109/ICCV.2017.528 (median of crowd boxes);
Everingham, M. et al. "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 88, 2010,
doi:10.1007/s11263-009-0275-4 (IoU >= 0.5 as a match).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Shapes overlapping at least this much are the same object (PASCAL VOC's criterion).
DEFAULT_IOU = 0.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n x 4: x, y, width, height) with every box in ``b`` (m x 4): n x m."""
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    inter_w = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0.0, None)
    inter_h = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0.0, None)
    inter = inter_w * inter_h
    union = (a[:, 2:3] * a[:, 3:4]) + (b[:, 2] * b[:, 3]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def polygon_iou(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> np.ndarray:
    """IoU of every polygon in ``a`` with every polygon in ``b`` (each a k x 2 array of points).

    Exact areas from GEOS through shapely (vectorised over all pairs); a self-intersecting outline
    is first made valid (shapely.make_valid), so a figure-eight counts its two lobes, not zero.
    """
    # imported here: only polygon questions need GEOS, and importing it costs every other process
    import shapely

    def geometries(polygons: Sequence[np.ndarray]) -> np.ndarray:
        shapes = np.empty(len(polygons), dtype=object)
        shapes[:] = [shapely.Polygon(np.asarray(p, dtype=float)) for p in polygons]  # rings differ in length
        return shapely.make_valid(shapes)

    ga, gb = geometries(a), geometries(b)
    if ga.size == 0 or gb.size == 0:
        return np.zeros((ga.size, gb.size))
    inter = shapely.area(shapely.intersection(ga[:, None], gb[None, :]))
    union = shapely.area(ga)[:, None] + shapely.area(gb)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def cluster_shapes(iou: np.ndarray, workers: np.ndarray, threshold: float = DEFAULT_IOU) -> np.ndarray:
    """Group shapes of different workers that outline the same object; returns a cluster id per shape.

    Average-linkage agglomeration under a cannot-link constraint: pairs are merged from the most
    overlapping down, two clusters join only when they share no worker (a worker draws an object
    once) and their mean pairwise IoU is at least ``threshold``. Deterministic: ties in IoU are
    broken by shape index, never by chance.
    """
    n = len(workers)
    cluster = np.arange(n)
    rows, cols = np.triu_indices(n, k=1)
    overlap = iou[rows, cols]
    keep = (overlap >= threshold) & (workers[rows] != workers[cols])
    order = np.lexsort((cols[keep], rows[keep], -overlap[keep]))
    for i, j in zip(rows[keep][order], cols[keep][order], strict=True):
        ci, cj = cluster[i], cluster[j]
        if ci == cj:
            continue
        left, right = np.flatnonzero(cluster == ci), np.flatnonzero(cluster == cj)
        if np.intersect1d(workers[left], workers[right]).size:
            continue
        if iou[np.ix_(left, right)].mean() >= threshold:
            cluster[right] = ci
    _, ids = np.unique(cluster, return_inverse=True)
    return ids


def median_box(boxes: np.ndarray) -> np.ndarray:
    """The consensus of several boxes (x, y, width, height): the median of each edge.

    Medians of the left, top, right and bottom edges, not of width and height: one sloppy box moves
    no edge of the consensus as long as most boxes agree on it.
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    left, top = np.median(boxes[:, 0]), np.median(boxes[:, 1])
    right, bottom = np.median(boxes[:, 0] + boxes[:, 2]), np.median(boxes[:, 1] + boxes[:, 3])
    return np.array([left, top, right - left, bottom - top])


def medoid(iou: np.ndarray) -> int:
    """Index of the shape with the highest mean IoU to the others of its cluster (the first on a tie)."""
    n = iou.shape[0]
    if n <= 2:
        return 0  # two shapes are equally central: the first (stable); the question marks it undecided if needed
    mean = (iou.sum(axis=1) - np.diag(iou)) / (n - 1)
    return int(np.argmax(mean))


@dataclass(frozen=True, slots=True)
class PairMatch:
    """How two workers' shapes on one image match (Hungarian matching on IoU)."""

    mean_iou: float  # matched IoUs summed over max(n_a, n_b): an unmatched shape counts 0; both empty 1
    f1: float  # F1 of shapes matched at IoU >= threshold with the same label; both empty 1


def match_pair(
    iou: np.ndarray, labels_a: Sequence[str], labels_b: Sequence[str], threshold: float = DEFAULT_IOU
) -> PairMatch:
    """Match one worker's shapes (rows of ``iou``) to another's (columns) one to one, maximising IoU."""
    n_a, n_b = iou.shape
    if n_a == 0 and n_b == 0:
        return PairMatch(1.0, 1.0)
    if n_a == 0 or n_b == 0:
        return PairMatch(0.0, 0.0)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    matched = iou[rows, cols]
    same = np.array([labels_a[r] == labels_b[c] for r, c in zip(rows, cols, strict=True)], dtype=bool)
    true_positives = int(np.count_nonzero((matched >= threshold) & same))
    return PairMatch(float(matched.sum() / max(n_a, n_b)), 2.0 * true_positives / (n_a + n_b))

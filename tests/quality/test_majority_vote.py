"""MajorityVote and Wawa on hand-computed examples, for both input forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from truthset.quality import MajorityVote, Wawa, vote_shares

ROWS = (["t1", "t1", "t1", "t2", "t2"], ["a", "b", "c", "a", "b"], ["x", "y", "x", "y", "x"])


def test_majority_vote_tuple_input_returns_dicts() -> None:
    mv = MajorityVote().fit(ROWS)
    assert mv.labels_ == {"t1": "x", "t2": "x"}  # t2 is a 1-1 tie: smallest label wins
    assert mv.probas_["t1"] == pytest.approx({"x": 2 / 3, "y": 1 / 3})
    assert mv.probas_["t2"] == pytest.approx({"x": 0.5, "y": 0.5})
    assert mv.skills_ == pytest.approx({"a": 0.5, "b": 0.5, "c": 1.0})


def test_majority_vote_dataframe_input_returns_pandas() -> None:
    df = pd.DataFrame(dict(zip(["task", "worker", "label"], ROWS, strict=True)))
    mv = MajorityVote().fit(df)
    assert isinstance(mv.labels_, pd.Series)
    assert mv.labels_.to_dict() == {"t1": "x", "t2": "x"}
    assert isinstance(mv.probas_, pd.DataFrame)
    assert list(mv.probas_.columns) == ["x", "y"]
    np.testing.assert_allclose(mv.probas_.loc["t1"].to_numpy(), [2 / 3, 1 / 3])
    assert mv.skills_.to_dict() == pytest.approx({"a": 0.5, "b": 0.5, "c": 1.0})


def test_fit_returns_self() -> None:
    mv = MajorityVote()
    assert mv.fit(ROWS) is mv


def test_tie_breaks_to_smallest_label_regardless_of_row_order() -> None:
    rows = (["t", "t"], ["a", "b"], [3, 1])
    assert MajorityVote().fit(rows).labels_ == {"t": 1}
    rows = (["t", "t"], ["b", "a"], [1, 3])
    assert MajorityVote().fit(rows).labels_ == {"t": 1}


def test_wawa_downweights_disagreeing_worker() -> None:
    # worker "bad" always disagrees with the majority, so on the 1-1 tie task the good worker wins
    tasks = ["t1", "t1", "t1", "t2", "t2", "t2", "t3", "t3"]
    workers = ["g", "h", "bad", "g", "h", "bad", "g", "bad"]
    labels = ["b", "b", "a", "b", "b", "a", "b", "a"]
    wawa = Wawa().fit((tasks, workers, labels))
    assert wawa.labels_["t3"] == "b"
    # the plain vote on t3 is a tie won by "a", so g agrees 2 of 3 times and bad 1 of 3
    assert wawa.skills_ == pytest.approx({"g": 2 / 3, "h": 1.0, "bad": 1 / 3})


def test_mismatched_lengths_rejected() -> None:
    with pytest.raises(ValueError):
        MajorityVote().fit((["t"], ["a", "b"], [1]))


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=12))
def test_vote_shares_is_majority_vote_for_one_task(labels: list[str]) -> None:
    """The single-task vote the platform uses at completion agrees with the batch estimator."""
    fitted = MajorityVote().fit((["t"] * len(labels), [f"w{i}" for i in range(len(labels))], labels))
    shares = vote_shares(labels)
    assert shares == pytest.approx(fitted.probas_["t"])
    assert list(shares) == sorted(shares)
    assert max(shares, key=shares.__getitem__) == fitted.labels_["t"]


def test_vote_shares_weighted_and_degenerate() -> None:
    assert vote_shares(["x", "y", "y"], weights=[3.0, 1.0, 1.0]) == pytest.approx({"x": 0.6, "y": 0.4})
    assert vote_shares(["x", "y"], weights=[0.0, 0.0]) == {"x": 0.5, "y": 0.5}  # no evidence: uniform
    assert vote_shares([True, False, True]) == pytest.approx({False: 1 / 3, True: 2 / 3})

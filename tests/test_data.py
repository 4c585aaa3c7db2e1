"""Interactions, confidence transforms, splits and dataset loaders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import Interactions
from recsys.data.confidence import Binary, Linear, Log
from recsys.data.datasets import MovieLens100K, SyntheticDataset
from recsys.data.splits import RandomHoldout, TemporalSplit
from recsys.errors import (
    DataFormatError,
    DataNotFoundError,
    EmptyDataError,
    RecsysError,
    UnknownIdError,
)


def pairs(part: Interactions) -> set[tuple[int, int]]:
    m = part.matrix.tocoo()
    return set(zip(m.row.tolist(), m.col.tolist()))


# -- Interactions --------------------------------------------------------------------------
def test_from_arrays_merges_repeats_and_maps_ids():
    data = Interactions.from_arrays(
        users=np.array(["b", "a", "b", "b"]),
        items=np.array([10, 20, 10, 30]),
        strengths=np.array([1.0, 2.0, 3.0, 0.0]),
        timestamps=np.array([5, 6, 4, 9]),
    )
    assert data.user_ids.tolist() == ["a", "b"]
    assert data.item_ids.tolist() == [10, 20, 30]
    dense = data.matrix.toarray()
    assert dense.tolist() == [[0, 2, 0], [4, 0, 0]]  # (b, 10) summed; strength 0 dropped
    assert data.timestamps.tolist() == [6, 4]  # earliest time of the repeated pair
    assert data.user_index(["b"]).tolist() == [1]
    with pytest.raises(UnknownIdError, match="'zz'"):
        data.user_index(["zz"])


def test_subset_keeps_shape_and_ids():
    data = SyntheticDataset(n_users=50, n_items=30, mean_interactions=8).load()
    mask = np.zeros(data.nnz, dtype=bool)
    mask[::3] = True
    part = data.subset(mask)
    assert part.matrix.shape == data.matrix.shape
    assert part.nnz == mask.sum()
    assert pairs(part) <= pairs(data)
    assert part.user_ids is data.user_ids


# -- confidence ----------------------------------------------------------------------------
def test_confidence_formulas():
    r = np.array([0.5, 1.0, 3.0, 10.0])
    np.testing.assert_allclose(Binary(4.0)(r), [5.0] * 4)
    np.testing.assert_allclose(Linear(2.0)(r), 1 + 2.0 * r, rtol=1e-6)
    np.testing.assert_allclose(Log(3.0, eps=0.5)(r), 1 + 3.0 * np.log(1 + r / 0.5), rtol=1e-6)
    with pytest.raises(ValueError):
        Log(1.0, eps=0.0)


# -- splits --------------------------------------------------------------------------------
@pytest.mark.parametrize("splitter", [RandomHoldout(0.2, 0.1), TemporalSplit(0.2, 0.1)])
def test_split_parts_are_disjoint_and_complete(splitter):
    data = SyntheticDataset(n_users=200, n_items=100, mean_interactions=15).load()
    split = splitter(data, seed=3)
    train, val, test = pairs(split.train), pairs(split.val), pairs(split.test)
    assert not (train & test) and not (train & val) and not (val & test)
    assert train | val | test == pairs(data)
    assert len(test) == pytest.approx(0.2 * data.nnz, rel=0.1)
    assert len(val) == pytest.approx(0.1 * data.nnz, rel=0.15)
    # strengths travel with their pairs
    assert split.train.matrix.sum() + split.val.matrix.sum() + split.test.matrix.sum() == (
        pytest.approx(data.matrix.sum())
    )


def test_random_holdout_is_per_user_and_seeded():
    data = SyntheticDataset(n_users=100, n_items=80, mean_interactions=12).load()
    split = RandomHoldout(0.2, 0.1)(data, seed=1)
    counts = np.diff(data.matrix.indptr)
    n_test = np.diff(split.test.matrix.indptr)
    np.testing.assert_array_equal(n_test, np.minimum(np.floor(0.2 * counts + 0.5), counts - 1))
    assert (np.diff(split.train.matrix.indptr) >= 1).all()
    again = RandomHoldout(0.2, 0.1)(data, seed=1)
    other = RandomHoldout(0.2, 0.1)(data, seed=2)
    assert pairs(again.test) == pairs(split.test)
    assert pairs(other.test) != pairs(split.test)


def test_temporal_split_orders_time():
    data = SyntheticDataset(n_users=100, n_items=50, mean_interactions=10).load()
    split = TemporalSplit(0.25, 0.1)(data, seed=0)
    assert split.train.timestamps.max() < split.val.timestamps.min()
    assert split.val.timestamps.max() < split.test.timestamps.min()


def test_temporal_split_needs_timestamps():
    data = Interactions.from_arrays(np.arange(10) % 3, np.arange(10))
    with pytest.raises(Exception, match="needs timestamps"):
        TemporalSplit()(data, 0)


def test_empty_part_after_split_is_a_clear_error():
    # one interaction per user: a per-user holdout leaves every pair in training
    data = Interactions.from_arrays(np.arange(20), np.arange(20) % 7)
    with pytest.raises(EmptyDataError, match="left no test interactions"):
        RandomHoldout(0.2, 0.1)(data, 0)


# -- datasets ------------------------------------------------------------------------------
def test_synthetic_is_seeded_and_shaped():
    a = SyntheticDataset(n_users=120, n_items=60, mean_interactions=10, seed=5).load()
    b = SyntheticDataset(n_users=120, n_items=60, mean_interactions=10, seed=5).load()
    c = SyntheticDataset(n_users=120, n_items=60, mean_interactions=10, seed=6).load()
    assert a.matrix.shape == (120, 60)
    assert (a.matrix != b.matrix).nnz == 0 and (a.timestamps == b.timestamps).all()
    assert (a.matrix != c.matrix).nnz > 0
    assert np.diff(a.matrix.indptr).min() >= 5


@pytest.mark.parametrize("k", [1, 7, 59, 60])
def test_synthetic_top_columns_equal_a_full_sort(k):
    """The generator's partial sort picks each row's k best columns in the order a full
    descending argsort gives (so the generated data did not change when it replaced one)."""
    from recsys.data.datasets.synthetic import _top_columns

    keys = np.random.default_rng(k).gumbel(size=(40, 60))
    np.testing.assert_array_equal(_top_columns(keys, k), np.argsort(-keys, axis=1)[:, :k])


def test_synthetic_popularity_exponent_concentrates_interactions():
    def top_share(exponent):
        data = SyntheticDataset(
            n_users=300, n_items=500, mean_interactions=10, popularity_exponent=exponent
        ).load()
        pop = np.sort(np.diff(data.matrix.tocsc().indptr))[::-1]
        return pop[:50].sum() / pop.sum()  # share of the top 10% of items

    flat, zipf = top_share(0.0), top_share(1.0)
    assert zipf > flat + 0.05 and zipf > 0.35


def test_ml100k_loads(shared_data):
    data = MovieLens100K(shared_data / "ml-100k").load()
    assert (data.n_users, data.n_items, data.nnz) == (943, 1682, 100_000)
    assert set(np.unique(data.matrix.data).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    liked = MovieLens100K(shared_data / "ml-100k", min_rating=4, binarize=True).load()
    assert liked.nnz == 55_375 and set(liked.matrix.data.tolist()) == {1.0}


def test_missing_data_folder_names_path_and_env(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        MovieLens100K(tmp_path / "nowhere" / "ml-100k").load()
    assert str(tmp_path / "nowhere" / "ml-100k") in str(e.value)
    assert "RECSYS_DATA_DIR" in str(e.value)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [("7\t8\t3\n", "3 field(s)"), ("7\t8\tfive\t881250949\n", "'rating' is 'five'")],
)
def test_malformed_u_data_names_file_and_line(tmp_path, bad, problem):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    good = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
    (folder / "u.data").write_text(good + bad + good)
    with pytest.raises(DataFormatError) as e:
        MovieLens100K(folder).load()
    assert f"{folder / 'u.data'}:3:" in str(e.value)
    assert problem in str(e.value)


# -- data-dependent confidences --------------------------------------------------------------
def small_counts(seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 15, 120)
    items = rng.integers(0, 10, 120)
    return Interactions.from_arrays(users, items, rng.integers(1, 9, 120).astype(float))


def test_bm25_and_tfidf_match_brute_force():
    from recsys.data.confidence import BM25, TfIdf

    train = small_counts(0)
    part = small_counts(1)  # statistics come from train, lengths from the part
    dense_train, dense = train.matrix.toarray(), part.matrix.toarray()
    n_users = (dense_train.sum(1) > 0).sum()
    idf = np.maximum(np.log(n_users) - np.log1p((dense_train > 0).sum(0)), 0)
    mean_len = dense_train.sum(1)[dense_train.sum(1) > 0].mean()
    k1, b = 1.2, 0.75
    bm25 = BM25(alpha=2.0, k1=k1, b=b).fit(train).matrix(part).toarray()
    tfidf = TfIdf(alpha=3.0).fit(train).matrix(part).toarray()
    for u, i in zip(*np.nonzero(dense)):
        r, norm = dense[u, i], (1 - b) + b * dense[u].sum() / mean_len
        assert bm25[u, i] == pytest.approx(1 + 2.0 * r * (k1 + 1) / (k1 * norm + r) * idf[i])
        assert tfidf[u, i] == pytest.approx(1 + 3.0 * np.sqrt(r) * idf[i])


def test_dwell_needs_the_feature():
    from recsys.data.confidence import Dwell
    from recsys.errors import RecsysError

    with pytest.raises(RecsysError, match="needs the per-pair feature 'dwell'"):
        Dwell().fit(small_counts()).values(small_counts())


# -- more splits, filters, summary -----------------------------------------------------------
def test_leave_one_out_takes_the_last_by_time():
    from recsys.data.splits import LeaveOneOut

    data = SyntheticDataset(n_users=80, n_items=60, mean_interactions=8).load()
    split = LeaveOneOut(by="time")(data, seed=0)
    for u in range(data.n_users):
        row = slice(data.matrix.indptr[u], data.matrix.indptr[u + 1])
        times = np.sort(data.timestamps[row])
        te = split.test.timestamps[split.test.matrix.indptr[u] : split.test.matrix.indptr[u + 1]]
        va = split.val.timestamps[split.val.matrix.indptr[u] : split.val.matrix.indptr[u + 1]]
        assert te.tolist() == [times[-1]] and va.tolist() == [times[-2]]
    assert pairs(split.train) | pairs(split.val) | pairs(split.test) == pairs(data)


def test_strong_generalization_holds_out_whole_users():
    from recsys.data.splits import StrongGeneralization

    data = SyntheticDataset(n_users=200, n_items=60, mean_interactions=10).load()
    split = StrongGeneralization(test_users=0.1, val_users=0.1, holdout_ratio=0.2)(data, 1)
    train_users = set(np.flatnonzero(np.diff(split.train.matrix.indptr)))
    test_users = set(np.flatnonzero(np.diff(split.test.matrix.indptr)))
    val_users = set(np.flatnonzero(np.diff(split.val.matrix.indptr)))
    history_users = set(np.flatnonzero(np.diff(split.fold_in.matrix.indptr)))
    assert len(test_users) == len(val_users) == 20
    assert not (train_users & (test_users | val_users)) and not (test_users & val_users)
    assert history_users == test_users | val_users
    parts = [split.train, split.val, split.test, split.fold_in]
    assert set().union(*map(pairs, parts)) == pairs(data)
    n = np.diff(data.matrix.indptr)
    for u in test_users:
        scored = np.diff(split.test.matrix.indptr)[u]
        assert scored == max(1, np.floor(0.2 * n[u] + 0.5))


def test_strong_generalization_counts_and_items_no_training_user_has():
    from recsys.data.splits import StrongGeneralization

    data = SyntheticDataset(n_users=300, n_items=400, mean_interactions=8).load()
    split = StrongGeneralization(test_users=40, val_users=25, holdout_ratio=0.2)(data, 3)
    assert len(np.flatnonzero(np.diff(split.test.matrix.indptr))) == 40
    assert len(np.flatnonzero(np.diff(split.val.matrix.indptr))) == 25
    trained = set(np.flatnonzero(np.bincount(split.train.matrix.indices, minlength=400)))
    held = [split.val, split.test, split.fold_in]
    dropped = pairs(data) - set().union(split_pairs := pairs(split.train), *map(pairs, held))
    assert dropped and all(i not in trained for _, i in dropped)  # only untrained items
    for part in held:
        assert set(part.matrix.indices) <= trained
    # every held-out pair on a trained item is kept somewhere
    held_users = set(np.flatnonzero(np.diff(split.fold_in.matrix.indptr)))
    expected = {(u, i) for u, i in pairs(data) if u in held_users and i in trained}
    assert set().union(*map(pairs, held)) == expected and not split_pairs & expected
    with pytest.raises(RecsysError, match="only"):
        StrongGeneralization(test_users=200, val_users=150)(data, 3)
    with pytest.raises(RecsysError, match="share in"):
        StrongGeneralization(test_users=2.5)


def test_min_counts_is_one_pass_items_then_users():
    from recsys.data.filters import MinCounts

    data = SyntheticDataset(n_users=300, n_items=200, mean_interactions=6).load()
    out = MinCounts(min_user=5, min_item=10)(data)
    frame = pd.DataFrame(sorted(pairs(data)), columns=["u", "i"])
    frame = frame[frame.groupby("i")["u"].transform("size") >= 10]
    frame = frame[frame.groupby("u")["i"].transform("size") >= 5]
    expected = {(data.user_ids[u], data.item_ids[i]) for u, i in frame.itertuples(index=False)}
    assert {(out.user_ids[u], out.item_ids[i]) for u, i in pairs(out)} == expected


def test_kcore_leaves_only_dense_enough_users_and_items():
    from recsys.data.filters import KCore

    data = SyntheticDataset(n_users=300, n_items=200, mean_interactions=6).load()
    out = KCore(min_user=5, min_item=8)(data)
    assert np.diff(out.matrix.indptr).min() >= 5
    assert np.bincount(out.matrix.indices, minlength=out.n_items).min() >= 8
    assert out.n_items < data.n_items and out.nnz < data.nnz
    # ids still name the same pairs
    kept = {(out.user_ids[u], out.item_ids[i]) for u, i in pairs(out)}
    assert kept <= {(data.user_ids[u], data.item_ids[i]) for u, i in pairs(data)}


def test_summary_statistics():
    from recsys.data.summary import gini, summarize

    assert gini(np.ones(10)) == pytest.approx(0.0)
    x = np.array([0, 0, 0, 10.0])
    brute = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert gini(x) == pytest.approx(brute)
    data = small_counts()
    s = summarize(data)
    assert (s["users"], s["items"], s["interactions"]) == (data.n_users, data.n_items, data.nnz)
    per_item = np.bincount(data.matrix.indices, minlength=data.n_items)
    assert s["per_item_max"] == per_item.max()
    assert s["top1pct_items_share"] == pytest.approx(per_item.max() / data.nnz)


def test_million_song_dataset_triplets(tmp_path):
    from recsys.data.datasets import MillionSongDataset

    folder = tmp_path / "msd"
    folder.mkdir()
    lines = ["b80\tSOAKIMP\t1", "a11\tSOZZZZZ\t5", "b80\tSOAAAAA\t2", "a11\tSOAKIMP\t3"]
    (folder / "train_triplets.txt").write_text("\n".join(lines) + "\n")
    data = MillionSongDataset(str(folder)).load()
    assert list(data.user_ids) == ["a11", "b80"]
    assert list(data.item_ids) == ["SOAAAAA", "SOAKIMP", "SOZZZZZ"]
    got = {(data.user_ids[u], data.item_ids[i]): data.matrix[u, i] for u, i in pairs(data)}
    assert got == {(u, s): float(c) for u, s, c in (line.split("\t") for line in lines)}
    assert set(MillionSongDataset(str(folder), binarize=True).load().matrix.data) == {1.0}
    (folder / "train_triplets.txt").write_text("a11\tSOA\t1\nb80\tSOB\n")
    with pytest.raises(DataFormatError, match="line 2"):
        MillionSongDataset(str(folder)).load()
    with pytest.raises(DataNotFoundError, match="msd"):
        MillionSongDataset(str(tmp_path / "absent")).load()

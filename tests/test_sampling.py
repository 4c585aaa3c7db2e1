"""The batched triple sampler: shapes, rejection of seen negatives, popularity negatives."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.models.sampling import TripleSampler


def dense_train(seed: int = 0, m: int = 30, n: int = 12, density: float = 0.5) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((m, n)) < density).astype(np.float32))


@pytest.mark.parametrize("n_negatives", [1, 7])
def test_negatives_are_never_training_pairs_of_their_user(n_negatives):
    train = dense_train()
    dense = train.toarray() > 0
    sampler = TripleSampler(train, "cpu", reject_seen=True, max_rounds=100)
    g = torch.Generator().manual_seed(0)
    users, pos, neg = sampler.sample(2000, g, n_negatives=n_negatives)
    assert users.shape == pos.shape == (2000,)
    assert neg.shape == ((2000,) if n_negatives == 1 else (2000, n_negatives))
    assert dense[users.numpy(), pos.numpy()].all()  # positives are training pairs
    neg2 = neg.reshape(2000, -1).numpy()
    assert not dense[users.numpy()[:, None], neg2].any()
    # without rejection, about half of the negatives hit a training pair (density 0.5)
    raw = TripleSampler(train, "cpu", reject_seen=False)
    users, _, neg = raw.sample(2000, g, n_negatives=n_negatives)
    hit = dense[users.numpy()[:, None], neg.reshape(2000, -1).numpy()].mean()
    assert 0.4 < hit < 0.6


def test_popularity_negatives_follow_training_popularity():
    rng = np.random.default_rng(1)
    counts = np.array([1, 2, 4, 8, 16, 32])
    rows = np.concatenate([rng.choice(200, size=c, replace=False) for c in counts])
    cols = np.repeat(np.arange(6), counts)
    train = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(200, 6))
    sampler = TripleSampler(train, "cpu", negatives="popularity", reject_seen=False)
    _, _, neg = sampler.sample(20000, torch.Generator().manual_seed(0), n_negatives=3)
    freq = np.bincount(neg.flatten().numpy(), minlength=6) / neg.numel()
    np.testing.assert_allclose(freq, counts / counts.sum(), atol=0.01)


@pytest.mark.parametrize("negatives", ["uniform", "popularity"])
@pytest.mark.parametrize("n_negatives", [12, 2])
def test_shared_negatives_are_distinct_and_masked_exactly_where_seen(negatives, n_negatives):
    """Rows of about 9 items: with 12 negatives the CPU kernel walks each user's row, with 2
    it searches the row for each negative; the mask is the same truth either way."""
    train = dense_train(seed=2, m=40, n=30, density=0.3)
    dense = train.toarray() > 0
    sampler = TripleSampler(train, "cpu", negatives=negatives, reject_seen=True)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        users, pos, neg, mask = sampler.sample_shared(64, n_negatives, g)
        assert neg.shape == (n_negatives,) and mask.shape == (64, n_negatives)
        assert len(torch.unique(neg)) == n_negatives
        assert dense[users.numpy(), pos.numpy()].all()
        want = ~dense[users.numpy()[:, None], neg.numpy()[None, :]]
        np.testing.assert_array_equal(mask.numpy(), want)
    no_reject = TripleSampler(train, "cpu", reject_seen=False)
    assert no_reject.sample_shared(64, 12, g)[3].all()
    with pytest.raises(ValueError, match="n_negatives"):
        sampler.sample_shared(8, 31, g)


@pytest.mark.parametrize("negatives", ["uniform", "popularity"])
def test_grouped_negatives_are_masked_where_seen_or_repeated(negatives):
    train = dense_train(seed=3, m=40, n=30, density=0.3)
    dense = train.toarray() > 0
    sampler = TripleSampler(train, "cpu", negatives=negatives, reject_seen=True)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        users, pos, neg, mask = sampler.sample_shared(64, 12, g, groups=8)
        assert neg.shape == (8, 12) and mask.shape == (64, 12)
        assert dense[users.numpy(), pos.numpy()].all()
        for r in range(64):
            row = neg[r // 8].tolist()
            kept = [row[s] for s in range(12) if mask[r, s]]
            assert len(kept) == len(set(kept))  # a repeat counts once
            assert set(kept) == {i for i in row if not dense[users[r], i]}  # all unseen, once
    with pytest.raises(ValueError, match="divide"):
        sampler.sample_shared(64, 12, g, groups=7)

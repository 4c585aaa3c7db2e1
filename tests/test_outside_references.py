"""Our numbers against the standard tools' on the same inputs: every ranking metric against
ir-measures (trec_eval's definitions, through pytrec_eval), TF-IDF item vectors against
scikit-learn's TfidfVectorizer, BM25 and TF-IDF weights against implicit's."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.data.content import tfidf, tokenize
from recsys.data.interactions import Interactions
from recsys.evaluation.metrics import PER_USER
from recsys.evaluation.ranking import topk

ir_measures = pytest.importorskip("ir_measures")

N_USERS, N_ITEMS, K = 60, 40, (1, 5, 10, 20)


def random_run(seed: int):
    """Tie-free scores ``(users, items)`` and each user's relevant items (1 to 25, so that
    some users have more relevant items than the cut-off and some fewer)."""
    rng = np.random.default_rng(seed)
    scores = rng.permutation(N_USERS * N_ITEMS).reshape(N_USERS, N_ITEMS).astype(np.float32)
    relevant = [rng.choice(N_ITEMS, rng.integers(1, 26), replace=False) for _ in range(N_USERS)]
    return scores, relevant


def ours(scores: np.ndarray, relevant: list[np.ndarray], k: int) -> dict[str, np.ndarray]:
    items, _ = topk(torch.from_numpy(scores), k)
    truth = np.zeros(scores.shape, dtype=bool)
    for u, rel in enumerate(relevant):
        truth[u, rel] = True
    hits = torch.from_numpy(np.take_along_axis(truth, items.numpy(), 1).astype(np.float32))
    n_rel = torch.tensor([len(r) for r in relevant], dtype=torch.float32)
    return {name: f(hits, n_rel).double().numpy() for name, f in PER_USER.items()}


def theirs(scores: np.ndarray, relevant: list[np.ndarray], measure) -> np.ndarray:
    qrels = {f"u{u}": {f"i{i}": 1 for i in rel} for u, rel in enumerate(relevant)}
    run = {f"u{u}": {f"i{i}": float(s) for i, s in enumerate(row)} for u, row in enumerate(scores)}
    per_query = {m.query_id: m.value for m in ir_measures.iter_calc([measure], qrels, run)}
    return np.array([per_query[f"u{u}"] for u in range(len(relevant))])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", K)
def test_ranking_metrics_against_ir_measures(seed, k):
    """Ours and trec_eval's where both define the metric; where our normalisation differs by
    definition (map@k and recall_norm@k divide by min(k, T), trec_eval's AP@k and R@k by T,
    T the user's relevant items), the conversion is stated and applied."""
    from ir_measures import AP, RR, P, R, Success, nDCG

    scores, relevant = random_run(seed)
    mine = ours(scores, relevant, k)
    t = np.array([len(r) for r in relevant], dtype=np.float64)
    to_t = np.minimum(k, t) / t  # our min(k, T) normalisation to trec_eval's T
    pairs = {
        "recall": (R @ k, 1.0),
        "recall_norm": (R @ k, 1 / to_t),
        "precision": (P @ k, 1.0),
        "ndcg": (nDCG @ k, 1.0),
        "map": (AP @ k, 1 / to_t),
        "mrr": (RR @ k, 1.0),
        "hit_rate": (Success @ k, 1.0),
    }
    assert set(pairs) == set(PER_USER), "a metric without an outside check"
    for name, (measure, factor) in pairs.items():
        np.testing.assert_allclose(mine[name], theirs(scores, relevant, measure) * factor,
                                   rtol=1e-6, atol=1e-7, err_msg=f"{name}@{k}")  # fmt: skip


TEXTS = [
    "Election results: the count goes on in three states",
    "Football: the cup final, goals and the count of corners",
    "",  # an article without text
    "Three goals in the final minutes; the election of the captain",
    "Weather: rain, rain and more rain in the north",
    "The north votes: election turnout and results",
]


@pytest.mark.parametrize("min_df", [1, 2])
def test_tfidf_against_scikit_learn(min_df):
    text = pytest.importorskip("sklearn.feature_extraction.text")
    mine = tfidf(TEXTS, min_df=min_df).toarray()
    options = dict(sublinear_tf=True, smooth_idf=True, norm="l2", min_df=min_df)
    ref = text.TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, **options)
    want = ref.fit_transform(TEXTS).toarray()
    # the same terms, ours in order of first appearance, scikit-learn's alphabetical
    seen = list(dict.fromkeys(t for s in TEXTS for t in tokenize(s)))
    vocab = ref.vocabulary_
    ours_terms = [t for t in seen if t in vocab]
    assert mine.shape == want.shape and len(ours_terms) == len(vocab)
    np.testing.assert_allclose(mine, want[:, [vocab[t] for t in ours_terms]], atol=1e-6)


def random_counts(seed: int) -> sp.csr_matrix:
    """Users x items counts where every user has an item and no item has every user (so that
    our idf, over users with an item and clamped at 0, is implicit's)."""
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 9, (30, 20)) * (rng.random((30, 20)) < 0.3)
    dense[np.arange(30), rng.integers(1, 20, 30)] += 1  # item 0 is not forced on anyone
    dense[0] = 0
    dense[0, 5] = 3
    assert (dense > 0).any(1).all() and not (dense > 0).all(0).any()
    return sp.csr_matrix(dense.astype(np.float64))


@pytest.mark.parametrize(("k1", "b"), [(100.0, 0.8), (1.2, 0.75)])
def test_bm25_against_implicit(k1, b):
    nn = pytest.importorskip("implicit.nearest_neighbours")
    from recsys.data.confidence import BM25, TfIdf
    from recsys.models.neighbors import ItemKNN

    x = random_counts(0)
    data = Interactions(x.astype(np.float32), np.arange(x.shape[0]), np.arange(x.shape[1]))
    # the confidence: users as documents, c = 1 + alpha * w
    conf = BM25(alpha=2.0, k1=k1, b=b).fit(data).matrix(data).toarray()
    want = nn.bm25_weight(x, K1=k1, B=b).toarray()
    np.testing.assert_allclose(conf[x.toarray() > 0], 1 + 2.0 * want[x.toarray() > 0], rtol=1e-6)
    tfidf_conf = TfIdf(alpha=3.0).fit(data).matrix(data).toarray()
    want = nn.tfidf_weight(x.copy()).toarray()
    np.testing.assert_allclose(tfidf_conf[x.toarray() > 0], 1 + 3.0 * want[x.toarray() > 0],
                               rtol=1e-6)  # fmt: skip
    # item-kNN: items as documents over the binary matrix, as implicit's BM25Recommender
    model = ItemKNN(*x.shape, similarity="bm25", k1=k1, b=b)
    model.set_context(np.arange(x.shape[0]), np.arange(x.shape[1]), x.astype(np.float32))
    weighted, _ = model._weighted_items()
    binary = x.T.tocsr()
    binary.data[:] = 1.0
    want = nn.bm25_weight(binary, K1=k1, B=b).toarray()
    np.testing.assert_allclose(weighted.toarray(), want, rtol=1e-6, atol=1e-12)

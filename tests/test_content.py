"""Item content vectors and the content model, against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys.data.content import item_vectors, tfidf, tokenize
from recsys.data.datasets import PublisherSimulator, SyntheticDataset
from recsys.data.interactions import Interactions
from recsys.errors import RecsysError
from recsys.models.content import ContentKNN, recent_items


def test_tfidf_matches_its_definition():
    texts = ["Toy Story|Animation Comedy", "comedy comedy drama", "", "Drama: war_film"]
    got = tfidf(texts).toarray()
    docs = [tokenize(t) for t in texts]
    assert docs[3] == ["drama", "war", "film"]
    vocab = sorted({w for d in docs for w in d})
    want = np.zeros((len(texts), len(vocab)))
    for r, d in enumerate(docs):
        for w in set(d):
            df = sum(w in other for other in docs)
            want[r, vocab.index(w)] = (1 + math.log(d.count(w))) * (math.log(5 / (1 + df)) + 1)
        norm = np.linalg.norm(want[r])
        want[r] = want[r] / norm if norm else want[r]
    # the same columns, in the order tfidf meets the words
    order = []
    for d in docs:
        order += [w for w in d if w not in order]
    np.testing.assert_allclose(got, want[:, [vocab.index(w) for w in order]], atol=1e-12)


def test_content_vectors_group_articles_by_topic():
    sim = PublisherSimulator(n_readers=50, n_articles=300, initial_articles=40, days=5, seed=1)
    text = sim.item_text()
    v = item_vectors([text[i] for i in range(300)], dims=32)
    assert v.shape == (300, 32)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    topic = sim.truth.topics.argmax(1)
    cos = v @ v.T
    same = topic[:, None] == topic[None, :]
    np.fill_diagonal(same, False)
    across = ~same
    np.fill_diagonal(across, False)
    assert cos[same].mean() > cos[across].mean() + 0.3


def test_content_model_scores_the_recent_items_profile(tmp_path):
    data = SyntheticDataset(n_users=40, n_items=30, mean_interactions=8, seed=2).load()
    model = ContentKNN(data.n_users, data.n_items, dims=6, recent=3)
    text = SyntheticDataset(n_users=40, n_items=30, seed=2).item_text()
    vectors = item_vectors([text[i] for i in data.item_ids], dims=6)
    profile = recent_items(data, 3)
    model.item_vectors = torch.from_numpy(vectors)
    model.profile_indptr = torch.from_numpy(profile.indptr.astype(np.int64))
    model.profile_items = torch.from_numpy(profile.indices.astype(np.int64))
    users = torch.arange(40)
    want = profile.toarray() @ vectors @ vectors.T
    np.testing.assert_allclose(model.score(users).numpy(), want, rtol=1e-5, atol=1e-6)
    # the profile: each user's 3 latest items, by timestamp
    for u in range(40):
        row = slice(data.matrix.indptr[u], data.matrix.indptr[u + 1])
        latest = data.matrix.indices[row][np.argsort(-data.timestamps[row], kind="stable")][:3]
        assert set(profile[u].indices) == set(latest)
    untimed = Interactions(data.matrix, data.user_ids, data.item_ids, None, {})
    assert (recent_items(untimed, 3) != (data.matrix > 0)).nnz == 0  # no times: every item


def test_missing_content_and_encoders_are_clear_errors(tmp_path):
    from recsys.data.content import texts_for

    class NoText:
        name = "plain"

    with pytest.raises(RecsysError, match="no item content"):
        texts_for(NoText(), [1, 2])
    with pytest.raises(RecsysError, match="local model folder"):
        item_vectors(["a b"], encoder="sentence", model_path=str(tmp_path / "absent"))
    with pytest.raises(RecsysError, match="unknown content encoder"):
        item_vectors(["a b"], encoder="word2vec")

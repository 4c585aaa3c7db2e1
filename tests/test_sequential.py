"""SASRec and GRU4Rec: the model contract, sequence building, losses against brute force and
finite differences, order sensitivity and causality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.data.confidence import Linear
from recsys.data.interactions import Interactions
from recsys.data.training_data import TrainingData
from recsys.errors import ConfigError
from recsys.models.gru4rec import GRU4Rec
from recsys.models.sasrec import SASRec
from recsys.models.sequential import (
    bce_loss,
    bpr_max_loss,
    ce_loss,
    item_sequences,
    sequences_of_entries,
    training_pairs,
    windows,
)
from recsys.testing import ModelContract


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these tiny models run many times faster on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SMALL = {"hidden": 16, "max_len": 20, "lr": 0.01, "batch_size": 64}


class TestSASRecContract(ModelContract):
    model_class = SASRec
    model_args = {**SMALL, "loss": "bce"}
    epochs = 10


class TestGRU4RecContract(ModelContract):
    model_class = GRU4Rec
    model_args = {**SMALL, "loss": "ce"}
    epochs = 10


# -- sequences --------------------------------------------------------------------------------
def _random_interactions(seed: int = 0, timestamps: bool = True) -> Interactions:
    rng = np.random.default_rng(seed)
    n = 400
    users, items = rng.integers(0, 30, n), rng.integers(0, 50, n)
    ts = rng.integers(0, 20, n) if timestamps else None  # many ties
    return Interactions.from_arrays(users, items, None, ts)


def test_sequences_are_time_ordered_with_stable_ties_against_a_loop():
    data = _random_interactions()
    indptr, items = item_sequences(data)
    m = data.matrix
    for u in range(data.n_users):
        lo, hi = m.indptr[u], m.indptr[u + 1]
        entries = [(int(data.timestamps[p]), int(m.indices[p])) for p in range(lo, hi)]
        expected = [col for _, col in sorted(entries)]  # ties: column order (CSR's own)
        assert items[indptr[u] : indptr[u + 1]].tolist() == expected


def test_sequences_need_timestamps():
    with pytest.raises(ConfigError, match="no timestamps"):
        item_sequences(_random_interactions(timestamps=False), "model=sasrec")


@pytest.mark.parametrize("align", ["right", "left"])
def test_windows_against_a_loop(align):
    rng = np.random.default_rng(1)
    lengths = [0, 1, 3, 7, 12]
    indptr = np.r_[0, np.cumsum(lengths)]
    items = rng.integers(0, 9, indptr[-1])
    users = np.array([4, 0, 2, 1, 3, 4])
    got = windows(indptr, items, users, 5, align)
    for row, u in zip(got, users):
        seq = [int(i) + 1 for i in items[indptr[u] : indptr[u + 1]]][-5:]
        pad = [0] * (5 - len(seq))
        assert row.tolist() == (pad + seq if align == "right" else seq + pad)


def test_training_pairs_predict_the_next_item_only_from_items():
    tokens = torch.tensor([[0, 0, 3, 4, 5], [6, 7, 0, 0, 0]])
    inputs, targets, valid = training_pairs(tokens)
    assert valid.tolist() == [[False, False, True, True], [True, False, False, False]]
    assert targets[valid].tolist() == [4, 5, 7] and inputs[valid].tolist() == [3, 4, 6]


def test_folded_entries_keep_their_given_order():
    rows = np.array([1, 0, 1, 0, 1])
    cols = np.array([9, 4, 2, 8, 5])
    indptr, items = sequences_of_entries(rows, cols, 3)
    assert indptr.tolist() == [0, 2, 5, 5] and items.tolist() == [4, 8, 9, 2, 5]


# -- losses -----------------------------------------------------------------------------------
def _tiny(dtype=torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(2, 3, 4, dtype=dtype, generator=g)
    emb = torch.randn(6, 4, dtype=dtype, generator=g)  # 5 items + padding
    pos = torch.tensor([[2, 3, 0], [1, 5, 4]])
    neg = torch.tensor([[4, 1, 0], [3, 2, 2]])
    valid = pos > 0
    return h, emb, pos, neg, valid


def _sig(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def test_losses_against_brute_force():
    h, emb, pos, neg, valid = _tiny()
    shared = torch.tensor([1, 4, 5])
    bce, ce, bmax, n = 0.0, 0.0, 0.0, 0
    for b in range(2):
        for t in range(3):
            if not valid[b, t]:
                continue
            n += 1
            r = [float(h[b, t] @ emb[j]) for j in range(6)]
            bce += -np.log(_sig(r[pos[b, t]])) - np.log(1 - _sig(r[neg[b, t]]))
            ce += -r[pos[b, t]] + np.log(sum(np.exp(r[j]) for j in range(1, 6)))
            rj = [r[j] for j in shared.tolist()]
            s = np.exp(rj) / np.exp(rj).sum()
            bmax += -np.log(sum(sk * _sig(r[pos[b, t]] - x) for sk, x in zip(s, rj)))
            bmax += 0.5 * sum(sk * x * x for sk, x in zip(s, rj))
    assert float(bce_loss(h, emb, pos, neg, valid)) == pytest.approx(bce / n, rel=1e-10)
    assert float(ce_loss(h, emb, pos, valid)) == pytest.approx(ce / n, rel=1e-10)
    got = float(bpr_max_loss(h, emb, pos, shared, valid, reg=0.5))
    assert got == pytest.approx(bmax / n, rel=1e-10)


@pytest.mark.parametrize("name", ["bce", "ce", "bpr_max"])
def test_loss_gradients_against_finite_differences(name):
    h, emb, pos, neg, valid = _tiny()
    h.requires_grad_(True)
    emb.requires_grad_(True)
    shared = torch.tensor([1, 4, 5])

    def f(h, emb):
        if name == "bce":
            return bce_loss(h, emb, pos, neg, valid)
        if name == "ce":
            return ce_loss(h, emb, pos, valid)
        return bpr_max_loss(h, emb, pos, shared, valid, reg=0.5)

    assert torch.autograd.gradcheck(f, (h, emb))


def _cycle_data(n_users: int = 60, n_items: int = 12, length: int = 8) -> TrainingData:
    """Users who read items in a cycle: start s, then s + 1, s + 2, ... (mod n_items)."""
    rng = np.random.default_rng(0)
    users, items, ts = [], [], []
    for u in range(n_users):
        start = rng.integers(n_items)
        for t in range(length):
            users.append(u)
            items.append((start + t) % n_items)
            ts.append(1000 + 10 * t)
    train = Interactions.from_arrays(np.array(users), np.array(items), None, np.array(ts),
                                     item_ids=np.arange(n_items))  # fmt: skip
    return TrainingData.from_interactions(train, Linear(alpha=2.0))


def _fit(model, data: TrainingData, steps: int):
    """Train without a Trainer: ``steps`` optimizer steps of ``training_step``."""
    model.prepare(data)
    model.on_fit_start()
    opt = model.configure_optimizers()
    model.train()
    for step in range(steps):
        opt.zero_grad()
        model.training_step(None, step % model.steps_per_epoch()).backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("cls", [SASRec, GRU4Rec])
def test_model_loss_gradients_against_finite_differences(cls):
    """The whole model's loss (float64, dropout off) by its embeddings' gradient."""
    torch.manual_seed(0)
    data = _cycle_data(n_users=4, n_items=6, length=4)
    model = cls(4, 6, hidden=4, max_len=4, dropout=0.0, loss="ce").double()
    model.prepare(data)
    model.on_fit_start()
    inputs, targets, valid = training_pairs(model.training_batch(0))
    weight = model.item_emb.weight.detach().clone().requires_grad_(True)
    del model.item_emb.weight  # the embedding then reads the tensor under test

    def f(w):
        model.item_emb.weight = w
        return model.sequence_loss(model.hidden(inputs), targets, valid)

    assert torch.autograd.gradcheck(f, (weight,))


# -- order and causality ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SASRec, GRU4Rec])
def test_folded_order_matters_and_the_model_learns_the_next_item(cls):
    """Trained on cycles (s, s+1, s+2, ...), the model puts next the item after the history's
    last one, for training users and folded-in histories; the same items in another order
    give other scores (not a bag of items)."""
    torch.manual_seed(0)
    data = _cycle_data()
    model = _fit(cls(60, 12, hidden=16, max_len=6, dropout=0.0, loss="ce", lr=0.02), data, 60)
    history = torch.tensor([3, 4, 5])
    rows = torch.zeros(3, dtype=torch.int64)
    conf = torch.ones(3)
    forward = model.score_history(rows, history, conf, 1)[0]
    backward = model.score_history(rows, history.flip(0), conf, 1)[0]
    assert int(forward.argmax()) == 6
    assert (forward - backward).abs().max() > 1.0
    # the training users: the item after their sequence's last
    top = model.score_users(torch.arange(3)).argmax(1)
    indptr, items = item_sequences(data.train)
    assert top.tolist() == [(int(items[indptr[u + 1] - 1]) + 1) % 12 for u in range(3)]


@pytest.mark.parametrize("cls", [SASRec, GRU4Rec])
def test_states_after_a_prefix_ignore_later_items(cls):
    """Causality: h_t of two windows equal up to position t is the same whatever follows."""
    torch.manual_seed(0)
    model = cls(10, 30, hidden=8, max_len=12, dropout=0.2).eval()
    a = torch.randint(1, 31, (1, 12))
    b = a.clone()
    b[0, 7:] = torch.randint(1, 31, (5,))
    b[0, 7] = a[0, 7] % 30 + 1  # certainly different from position 7 on
    with torch.no_grad():
        ha, hb = model.hidden(a), model.hidden(b)
    torch.testing.assert_close(ha[0, :7], hb[0, :7], rtol=0, atol=1e-6)
    assert not torch.allclose(ha[0, 7:], hb[0, 7:], atol=1e-4)


def test_sasrec_padding_and_an_empty_history_give_finite_scores():
    model = SASRec(3, 20, hidden=8, max_len=6).eval()
    tokens = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 3, 7]])
    scores = model.scores_of_windows(tokens)
    assert torch.isfinite(scores).all()


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="model.loss"):
        SASRec(3, 5, loss="hinge")
    with pytest.raises(ValueError, match="model.heads"):
        SASRec(3, 5, hidden=10, heads=3)
    with pytest.raises(ValueError, match="model.max_len"):
        GRU4Rec(3, 5, max_len=0)


# -- serving ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SASRec, GRU4Rec])
def test_serving_passes_the_history_in_time_order_with_the_current_article_last(cls, monkeypatch):
    from recsys.serve import Recommender
    from recsys.serving import recommend_from_history

    torch.manual_seed(0)
    model = _fit(cls(60, 12, hidden=16, max_len=6, dropout=0.0, loss="ce", lr=0.02),
                 _cycle_data(), 60)  # fmt: skip
    seen = []
    score_history = model.score_history

    def recording(rows, cols, conf, n):
        seen.append(cols.tolist())
        return score_history(rows, cols, conf, n)

    monkeypatch.setattr(model, "score_history", recording)
    assert recommend_from_history(model, [3, 4, 5], k=1)["items"] == [6]
    recommend_from_history(model, [5, 3, 5, 4], k=1)
    assert seen == [[3, 4, 5], [3, 5, 4]]  # a repeated item counts at its last view
    rec = Recommender(model)
    monkeypatch.setattr(rec, "_similarity", lambda j: torch.zeros(1, 12))  # no content here
    seen.clear()
    assert rec.recommend(history=[7, 8], k=1)["items"] == [9]
    assert rec.recommend(history=[7, 8], context=9, k=1)["items"] == [10]
    assert rec.recommend(history=[9, 7, 8], context=9, k=1)["items"] == [10]
    rec.recommend(history=[8, 7], confidences=[1.0, 2.0], k=1)
    assert seen == [[7, 8], [7, 8, 9], [7, 8, 9], [8, 7]]

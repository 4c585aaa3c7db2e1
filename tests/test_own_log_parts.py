"""A user's own log with a given test part (split=predefined), candidate lists for the test
ranking (HR@10 and NDCG@10 on sampled candidates equal a brute-force computation), and
relevance limited to one event type."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from helpers import compose_config

from recsys.data.datamodule import RecsysDataModule
from recsys.data.events import Relevance
from recsys.errors import DataFormatError, RecsysError
from recsys.runs.fit import train

T0 = 1_700_000_000
N_USERS, N_ITEMS = 30, 40


def events(seed: int, n: int = 400, purchases: float = 0.2) -> list[tuple]:
    """(user, item, timestamp, type) rows: each user keeps to a taste group of items."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        u = int(rng.integers(0, N_USERS))
        i = int((u % 4) * 10 + rng.integers(0, 12)) % N_ITEMS
        kind = "purchase" if rng.random() < purchases else "view"
        rows.append((f"u{u}", f"i{i}", T0 + k * 60, kind))
    return rows


def write(path, rows, header: str = "user,item,timestamp,type") -> str:
    path.write_text("\n".join([header, *(",".join(map(str, r)) for r in rows)]) + "\n")
    return str(path)


def overrides(log: str, *more: str) -> list[str]:
    return ["data=events", f"data.path={log}", "data.columns.user=user",
            "data.columns.item=item", "data.columns.event_type=type", "logger=[]",
            "data_cache=false", *more]  # fmt: skip


def pairs_of(part) -> set[tuple[str, str]]:
    return {(str(part.user_ids[r]), str(part.item_ids[c]))
            for r, c in zip(part.rows(), part.matrix.indices)}  # fmt: skip


def test_a_given_test_file_is_the_test_part_of_split_predefined(tmp_path):
    train_rows, test_rows = events(0), events(1, n=80)
    test_rows.append(("newcomer", "i0", T0, "view"))  # a user only the test file has
    log, test = write(tmp_path / "train.csv", train_rows), write(tmp_path / "test.csv", test_rows)
    cfg = compose_config("train", overrides(log, f"data.test_path={test}", "split=predefined",
                                            "split.val_ratio=0.2"), tmp_path / "run")  # fmt: skip
    dm = RecsysDataModule.from_config(cfg)
    s = dm.split
    known = {(u, i) for u, i, _, _ in train_rows}
    given = {(u, i) for u, i, _, _ in test_rows}
    assert pairs_of(s.test) == given - known  # pairs in both stay training pairs only
    assert pairs_of(s.train) | pairs_of(s.val) == known
    assert "newcomer" in s.train.user_ids  # the id maps are the union of both files'
    assert len(s.train.user_ids) == len({u for u, *_ in train_rows + test_rows})
    assert s.val.nnz > 0 and dm.has_validation
    assert sorted(dm.dataset.source_files()) == sorted(
        [tmp_path / "train.csv", tmp_path / "test.csv"]
    )
    _, metrics = train(
        compose_config("train", [*cfg_list(cfg), "trainer.max_epochs=1"], tmp_path / "r2")
    )
    assert 0 <= metrics["test/ndcg@10"] <= 1

    without = compose_config("train", overrides(log, "split=predefined"), tmp_path / "x")
    with pytest.raises(RecsysError, match=r"data\.test_path .*data\.split_column"):
        RecsysDataModule.from_config(without)


def cfg_list(cfg) -> list[str]:
    """The data and split overrides of a composed config, to compose it again."""
    data, split = cfg.data, cfg.split
    return overrides(data.path, f"data.test_path={data.test_path}", "split=predefined",
                     f"split.val_ratio={split.val_ratio}")  # fmt: skip


def test_a_split_column_with_its_own_values(tmp_path):
    rows = [(*r, "holdout" if k % 5 == 0 else "fit") for k, r in enumerate(events(2))]
    log = write(tmp_path / "log.csv", rows, "user,item,timestamp,type,part")
    cfg = compose_config("train", overrides(log, "data.split_column=part", "split=predefined",
                                            "data.split_values={train:fit,test:holdout}"),
                         tmp_path / "run")  # fmt: skip
    s = RecsysDataModule.from_config(cfg).split
    known = {(u, i) for u, i, _, _, p in rows if p == "fit"}
    assert pairs_of(s.test) == {(u, i) for u, i, _, _, p in rows if p == "holdout"} - known
    assert pairs_of(s.train) == known
    rows[7] = (*rows[7][:4], "tset")  # row 8, line 9
    write(tmp_path / "log.csv", rows, "user,item,timestamp,type,part")
    with pytest.raises(
        DataFormatError, match=r"row 8 \(line 9\), column 'part': 'tset' says neither"
    ):
        RecsysDataModule.from_config(cfg)


class Scores(L.Callback):
    """The trained model's scores of every user and item, as the test ranked them."""

    def on_test_end(self, trainer, pl_module) -> None:
        dm = trainer.datamodule
        users = torch.arange(dm.n_users)
        self.scores = pl_module.score_users(users).cpu().numpy()
        self.user_ids, self.item_ids = dm.user_ids, dm.item_ids


def test_hr_and_ndcg_on_sampled_candidates_equal_a_brute_force_ranking(tmp_path):
    rows = events(3, n=500)
    log = write(tmp_path / "log.csv", rows)
    first = {}  # each pair's first time; the user's latest pair is held out (leave_one_out)
    for u, i, t, _ in rows:
        first.setdefault(u, {}).setdefault(i, t)
    seen = {u: set(times) for u, times in first.items()}
    last = {u: max(times, key=times.get) for u, times in first.items()}
    rng = np.random.default_rng(4)
    cand_rows, candidates = [], {}
    for u in sorted(seen):
        unseen = [f"i{j}" for j in range(N_ITEMS) if f"i{j}" not in seen[u]]
        picked = list(rng.choice(unseen, size=min(19, len(unseen)), replace=False))
        if u == "u0":  # a training item among the candidates: excluded from the ranking
            picked.append(next(iter(seen[u] - {last[u]})))
        candidates[u] = picked
        cand_rows += [(u, i) for i in picked]  # negatives only: held-out items are added
    cands = write(tmp_path / "candidates.csv", cand_rows, "reader,article")
    cfg_args = overrides(log, "split=leave_one_out", "split.validation=false", "model=als",
                         "trainer.max_epochs=3", f"data.candidates_path={cands}",
                         "data.candidates_columns.user=reader",
                         "data.candidates_columns.item=article", "callbacks=none")  # fmt: skip
    cfg = compose_config("train", cfg_args, tmp_path / "run")
    grab = Scores()
    _, metrics = train(cfg, callbacks=[grab])
    item = {str(i): k for k, i in enumerate(grab.item_ids)}
    hr, ndcg = [], []
    for r, u in enumerate(map(str, grab.user_ids)):
        if len(seen[u]) < 2 or u not in last:
            continue  # leave_one_out keeps a user with one pair in training only
        held = last[u]
        ranked = [i for i in [*candidates[u], held] if i == held or i not in seen[u]]
        ranked.sort(key=lambda i: (-grab.scores[r, item[i]], item[i]))
        rank = ranked.index(held) + 1
        hr.append(float(rank <= 10))
        ndcg.append(1 / np.log2(rank + 1) if rank <= 10 else 0.0)
    assert len(hr) > 20 and 0 < np.mean(hr) < 1
    assert metrics["test/hit_rate@10"] == pytest.approx(np.mean(hr), abs=1e-6)
    assert metrics["test/ndcg@10"] == pytest.approx(np.mean(ndcg), abs=1e-6)

    cached = [o for o in cfg_args if o != "data_cache=false"]  # a cache hit keeps them
    fresh = RecsysDataModule.from_config(compose_config("train", cached, tmp_path / "c"))
    again = RecsysDataModule.from_config(compose_config("train", cached, tmp_path / "c"))
    assert again.cache_hit and not fresh.cache_hit
    assert (again.split.test_candidates.matrix != fresh.split.test_candidates.matrix).nnz == 0
    n_listed = len(set(cand_rows)) + sum(1 for u in last if len(seen[u]) > 1)
    assert fresh.split.test_candidates.nnz == n_listed  # the file's, and each held-out item

    write(tmp_path / "candidates.csv", [*cand_rows[:5], ("u0", "i999")], "reader,article")
    with pytest.raises(
        DataFormatError,
        match=r"candidates\.csv, row 6 \(line 7\), column 'article': item 'i999' is not",
    ):
        RecsysDataModule.from_config(cfg)


def test_relevance_limited_to_purchases_evaluates_purchased_test_pairs_only(tmp_path):
    rows = events(5, n=600, purchases=0.15)
    log = write(tmp_path / "log.csv", rows)
    more = ["split=random", "split.val_ratio=0.1", "split.test_ratio=0.3"]
    plain = RecsysDataModule.from_config(compose_config("train", overrides(log, *more), tmp_path))
    cfg = compose_config("train", overrides(log, *more, "data.relevance.event_types=[purchase]"),
                         tmp_path / "run")  # fmt: skip
    dm = RecsysDataModule.from_config(cfg)
    bought = {(u, i) for u, i, _, kind in rows if kind == "purchase"}
    assert pairs_of(dm.split.test) == pairs_of(plain.split.test)  # the split is unchanged
    assert pairs_of(dm.held_out("test")) == pairs_of(dm.split.test) & bought
    assert pairs_of(dm.held_out("val")) == pairs_of(dm.split.val) & bought
    assert 0 < dm.held_out("test").nnz < dm.split.test.nnz
    batch = next(iter(dm.test_dataloader()))
    with_purchase = np.flatnonzero(np.diff(dm.held_out("test").matrix.indptr) > 0)
    assert np.array_equal(batch["users"].numpy(), with_purchase)  # only they are evaluated
    again = [
        *overrides(log, *more, "data.relevance.event_types=[purchase]"),
        "trainer.max_epochs=1",
    ]
    _, metrics = train(compose_config("train", again, tmp_path / "r"))
    assert 0 <= metrics["test/recall@10"] <= 1
    cached = [o for o in again if o != "data_cache=false"]  # relevance applies after the cache
    fresh = RecsysDataModule.from_config(compose_config("train", cached, tmp_path / "c"))
    hit = RecsysDataModule.from_config(compose_config("train", cached, tmp_path / "c"))
    assert hit.cache_hit and pairs_of(hit.held_out("test")) == pairs_of(dm.held_out("test"))
    assert pairs_of(fresh.held_out("test")) == pairs_of(dm.held_out("test"))
    test = dm.split.test  # a strength threshold, alone and with the event types
    strong = Relevance(min_strength=2).mask(test)
    assert np.array_equal(strong, test.matrix.data >= 2) and 0 < strong.sum() < test.nnz
    both = Relevance(event_types=["purchase"], min_strength=2).mask(test)
    assert np.array_equal(both, strong & (test.features["type:purchase"] > 0))
    typo = compose_config("train", overrides(log, *more, "data.relevance.event_types=[purchse]"),
                          tmp_path / "t")  # fmt: skip
    with pytest.raises(RecsysError, match="'purchse' is no event type of the log"):
        RecsysDataModule.from_config(typo)

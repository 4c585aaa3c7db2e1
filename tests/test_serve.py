"""Serving a widget (``recsys.serve``) against the simulator's truth: articles published after
training reach the readers whose tastes match them without retraining; freshness and topic
filters; the current article as context; related articles; ``recsys-recommend`` exports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import compose_config, run_main

from recsys.data.content import TextEncoder
from recsys.data.datasets.publisher_sim import DAY, START, PublisherSimulator
from recsys.models.checkpoint import load_model
from recsys.runs.fit import train
from recsys.serve import Recommender

TRAIN_DAYS, DAYS = 16, 20


def export_overrides(folder) -> list[str]:
    """``data=events`` on a ``write_export`` folder (as the worked example's data config)."""
    return [
        "data=events", f"data.path={folder}/views.csv", "data.columns.user=reader",
        "data.columns.item=article", "data.columns.timestamp=time",
        "data.columns.session=session", "data.columns.dwell=dwell_seconds",
        "data.columns.source=source", f"data.items.path={folder}/articles.csv",
        "data.items.columns.item=article", "data.items.columns.title=title",
        "data.items.columns.text=body", "data.items.columns.topic=section",
        "data.items.columns.published=published", "data.items.columns.length=words",
        "split=temporal", "split.val_ratio=0", "confidence=dwell", "logger=[]",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A simulated site; ALS and the hybrid trained on its first 16 days (the CMS as it was
    then); the full CMS table with the articles published in the 4 days after."""
    root = tmp_path_factory.mktemp("serve")
    sim = PublisherSimulator(n_readers=3000, n_articles=800, days=DAYS, initial_articles=100,
                             sessions_per_reader=4.0, seed=3)  # fmt: skip
    sim.write_export(root / "then", until_day=TRAIN_DAYS)
    sim.write_export(root / "now")
    models = {}
    for name, more in (("als", ["model.regularization=2", "model.factors=16"]),
                       ("hybrid", ["model.regularization=2", "model.factors=16", "model.n_min=3",
                                   "model.dims=24"])):  # fmt: skip
        cfg = compose_config(
            "train",
            [*export_overrides(root / "then"), f"model={name}", "trainer.max_epochs=8", *more],
            root / name,
        )
        train(cfg)
        models[name] = str(root / name / "checkpoints" / "last.ckpt")
    return sim, root, models


def _truth_index(ids) -> np.ndarray:
    return np.asarray([int(str(i)[1:]) for i in ids])


@pytest.mark.parametrize("name", ["als", "hybrid"])
def test_new_articles_reach_readers_whose_tastes_match_without_retraining(trained, name):
    sim, root, models = trained
    rec = Recommender.load(models[name], items=root / "now" / "articles.csv")
    new = [i for i in rec.item_ids[rec.n_known :]]
    assert len(new) > 50  # published after training: never seen by the model
    warm = [u for u, n in zip(rec.model.user_ids, np.diff(rec.model.seen.indptr)) if n >= 5]
    now = START + DAYS * DAY
    gains = []
    for user in warm[:300]:  # the window holds only the new articles
        top = rec.recommend(user=user, k=1, now=now, fresh_days=DAYS - TRAIN_DAYS)["items"]
        assert top and top[0] in new
        reader = int(str(user)[1:])
        affinity = sim.truth.affinity_pairs(reader, _truth_index(new))
        gains.append(sim.truth.affinity_pairs(reader, _truth_index(top))[0] - affinity.mean())
    gains = np.asarray(gains)
    # the picked new article suits the reader better than a new article at random does
    assert gains.mean() > 0.05 and gains.mean() > 4 * gains.std() / np.sqrt(len(gains))


def test_fresh_days_and_topics_filter_the_lists(trained):
    sim, root, models = trained
    rec = Recommender.load(models["als"])  # the run's own item table
    now = START + 12 * DAY
    for user in rec.model.user_ids[:50]:
        items = rec.recommend(user=user, k=10, now=now, fresh_days=2)["items"]
        published = sim.truth.published[_truth_index(items)]
        assert len(items) and np.all((published <= now) & (published >= now - 2 * DAY))
    topics = set(rec.topics[:50])
    wanted = sorted(topics)[:2]
    items = rec.recommend(user=rec.model.user_ids[0], k=20, topics=wanted)["items"]
    assert {rec.topics[rec.item_index([i])[0]] for i in items} <= set(wanted)
    items = rec.recommend(user=rec.model.user_ids[0], k=20, exclude_topics=wanted)["items"]
    assert not {rec.topics[rec.item_index([i])[0]] for i in items} & set(wanted)


@pytest.mark.parametrize("name", ["als", "hybrid"])
def test_the_current_article_pulls_the_list_toward_its_topics(trained, name):
    sim, root, models = trained
    rec = Recommender.load(models[name])
    rng = np.random.default_rng(0)
    topics = sim.truth.topics

    def similarity(context, items) -> float:
        return float((topics[_truth_index(items)] @ topics[_truth_index([context])[0]]).mean())

    known, new = [], []
    for user in np.asarray(rec.model.user_ids)[
        rng.choice(len(rec.model.user_ids), 150, replace=False)
    ]:
        context = rec.item_ids[rng.integers(rec.n_known)]
        plain = rec.recommend(user=user, k=10)["items"]
        leaning = rec.recommend(user=user, k=10, context=context)["items"]
        known.append(similarity(context, leaning) - similarity(context, plain))
        history = list(rec.item_ids[rng.choice(rec.n_known, 2, replace=False)])
        plain = rec.recommend(history=history, k=10)["items"]
        leaning = rec.recommend(history=history, k=10, context=context)["items"]
        new.append(similarity(context, leaning) - similarity(context, plain))
    for gains in (np.asarray(known), np.asarray(new)):
        assert gains.mean() > 0.1 and gains.mean() > 4 * gains.std() / np.sqrt(len(gains))


def test_related_articles_share_topics_and_exclude_the_article(trained):
    sim, root, models = trained
    rec = Recommender.load(models["hybrid"])
    topics = sim.truth.topics
    gains = []
    for item in rec.item_ids[:100]:
        related = rec.related(item, k=5)["items"]
        assert item not in related and len(related) == 5
        j = _truth_index([item])[0]
        gains.append(
            (topics[_truth_index(related)] @ topics[j]).mean() - (topics @ topics[j]).mean()
        )
    assert np.mean(gains) > 0.2


def test_a_text_encoder_places_training_texts_where_fitting_did():
    sim = PublisherSimulator(n_readers=10, n_articles=300, days=2, initial_articles=50, seed=0)
    texts = [sim.item_text()[i] for i in range(300)]
    encoder = TextEncoder("tfidf_svd", 16)
    fitted = encoder.fit(texts)
    np.testing.assert_allclose(encoder.transform(texts), fitted, atol=2e-5)
    again = TextEncoder.from_state(encoder.state())
    np.testing.assert_allclose(again.transform(texts[:7]), fitted[:7], atol=2e-5)
    assert not np.allclose(encoder.transform(["t0w1 t0w2"]), 0)
    np.testing.assert_array_equal(encoder.transform(["words never seen"]), 0)


def test_the_checkpoint_keeps_the_content_encoder(trained):
    _, _, models = trained
    model = load_model(models["hybrid"])
    assert model.content_encoder is not None
    texts = ["t1w0 t1w3 t2w0"]
    assert model.content_encoder.transform(texts).shape == (1, model.item_vectors.shape[1])


def test_recsys_recommend_exports_every_reader_and_the_related_table(trained, tmp_path, capsys):
    _, root, models = trained
    ckpt = models["als"]
    out = tmp_path / "lists.parquet"
    code, err, _ = run_main("recsys-recommend", [f"ckpt_path={ckpt}", "users=all", "k=5",
                                                 f"output={out}"], capsys)  # fmt: skip
    assert code == 0, err
    lists = pd.read_parquet(out)
    model = load_model(ckpt)
    assert lists["user"].nunique() == len(model.user_ids) and lists["rank"].max() == 5
    ids = tmp_path / "readers.txt"
    ids.write_text("\n".join(map(str, model.user_ids[:3])) + "\n")
    code, err, printed = run_main("recsys-recommend", [f"ckpt_path={ckpt}", f"users={ids}",
                                                       "k=4"], capsys)  # fmt: skip
    rows = [json.loads(line) for line in printed.splitlines()]
    assert code == 0 and [r["user"] for r in rows] == list(model.user_ids[:3])
    expected = lists[lists["user"] == str(model.user_ids[0])].sort_values("rank")["item"]
    assert rows[0]["items"] == list(expected[:4])
    related = tmp_path / "related.jsonl"
    code, err, _ = run_main("recsys-recommend", [f"ckpt_path={ckpt}", "related=true", "k=3",
                                                 f"output={related}"], capsys)  # fmt: skip
    table = [json.loads(line) for line in related.read_text().splitlines()]
    assert code == 0 and len(table) == len(model.item_ids) and all(len(r["items"]) == 3
                                                                   for r in table)  # fmt: skip
    code, err, printed = run_main("recsys-recommend", [f"ckpt_path={ckpt}", "context=a5",
                                                       "k=3", "fresh_days=3"], capsys)  # fmt: skip
    assert code == 2 and "now=" in err

"""How much the current article (``context``) pulls a served list toward its topics, against
the simulator's truth, by ``context_weight``: mean true topical similarity of the top 10 to
the current article (phi_context . phi_j) and mean true affinity of the top 10 to the reader.

Usage, from the repository root: python experiments/publisher_log/context_weight.py [OUT]
(trains ALS and the hybrid on a 3,000-reader simulated export into OUT, default
logs/context_weight; about a minute)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from recsys.config import compose_run_config
from recsys.data.datasets.publisher_sim import PublisherSimulator
from recsys.runs.fit import train
from recsys.serve import Recommender

DATA = [
    "data=events", "data.columns.user=reader", "data.columns.item=article",
    "data.columns.timestamp=time", "data.columns.session=session",
    "data.columns.dwell=dwell_seconds", "data.columns.source=source",
    "data.items.columns.item=article", "data.items.columns.title=title",
    "data.items.columns.text=body", "data.items.columns.topic=section",
    "data.items.columns.published=published", "data.items.columns.length=words",
    "split=temporal", "split.val_ratio=0", "confidence=dwell", "logger=[]",
]  # fmt: skip
MODELS = {
    "als": ["model.regularization=2", "model.factors=16"],
    "hybrid": ["model.regularization=2", "model.factors=16", "model.n_min=3", "model.dims=24"],
}


def ids(values) -> np.ndarray:
    return np.asarray([int(str(v)[1:]) for v in values])


def main(out: Path) -> None:
    sim = PublisherSimulator(n_readers=3000, n_articles=800, days=20, initial_articles=100,
                             sessions_per_reader=4.0, seed=3)  # fmt: skip
    sim.write_export(out / "export", until_day=16)
    files = [f"data.path={out}/export/views.csv", f"data.items.path={out}/export/articles.csv"]
    topics = sim.truth.topics
    print("| model | context_weight | known readers: topical similarity | affinity | "
          "new readers: topical similarity |\n|---|---|---|---|---|")  # fmt: skip
    for name, more in MODELS.items():
        run = out / name
        if not (run / "checkpoints" / "last.ckpt").exists():
            overrides = [*DATA, *files, f"model={name}", "trainer.max_epochs=8", *more]
            train(compose_run_config("train", overrides, run, root_dir=run))
        for weight in (0.0, 1.0, 2.0, 4.0):
            rec = Recommender.load(run / "checkpoints" / "last.ckpt", context_weight=weight)
            rng = np.random.default_rng(0)
            users = np.asarray(rec.model.user_ids)
            known, affinity, new = [], [], []
            for user in users[rng.choice(len(users), 150, replace=False)]:
                context = rec.item_ids[rng.integers(rec.n_known)]
                c = ids([context])[0]
                items = ids(rec.recommend(user=user, k=10, context=context)["items"])
                known.append((topics[items] @ topics[c]).mean())
                affinity.append(sim.truth.affinity_pairs(int(str(user)[1:]), items).mean())
                history = list(rec.item_ids[rng.choice(rec.n_known, 2, replace=False)])
                items = ids(rec.recommend(history=history, k=10, context=context)["items"])
                new.append((topics[items] @ topics[c]).mean())
            print(f"| {name} | {weight:g} | {np.mean(known):.3f} | {np.mean(affinity):.3f} | "
                  f"{np.mean(new):.3f} |")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "logs/context_weight"))

"""A trained model against a simulated dataset's truth: the mean NDCG@k of its lists against
the true affinities (``recsys.evaluation.truth.truth_ndcg``), for studies on ``publisher_sim``."""

from __future__ import annotations

import numpy as np
import torch

from recsys.evaluation.truth import truth_ndcg
from recsys.models.base import RecommenderModule


def mean_truth_ndcg(model: RecommenderModule, dm, k: int = 20, batch: int = 1024) -> float:
    """Mean over every reader the model was trained on of the NDCG@``k`` of its scores
    against the simulator's true affinities, training articles excluded; ``dm`` the set-up
    datamodule of the model's data (``recsys.runs.evaluate.checkpoint_datamodule``), whose
    dataset has a ``truth``."""
    readers = np.asarray(dm.user_ids, dtype=np.int64)
    articles = np.asarray(dm.item_ids, dtype=np.int64)
    seen = dm.split.train.matrix
    values = []
    with torch.no_grad():
        for lo in range(0, len(readers), batch):
            users = torch.arange(lo, min(lo + batch, len(readers)))
            scores = model.score_users(users)
            truth = dm.dataset.truth.affinity(readers[users.numpy()])[:, articles]
            values.append(truth_ndcg(scores, truth, seen[users.numpy()], k))
    return float(np.concatenate(values).mean())

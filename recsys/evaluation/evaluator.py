"""The Evaluator: full ranking over all items for batches of users, on the scores' device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from recsys.evaluation import metrics as M
from recsys.evaluation.ranking import topk


class Evaluator:
    """Full-ranking evaluation.

    For each evaluated user, every item is scored; the user's training items (and, when
    testing, validation items) are excluded; the top ``max(ks)`` are taken with ties broken
    by item index; and each metric is computed against the user's held-out items. Users with
    no held-out items are not evaluated (the DataModule counts them in the log). Memory is
    ``O(batch_size * n_items)``: the users x items score matrix is never built whole.

    Args:
        ks: cut-offs; each metric is reported as ``<stage>/<metric>@<k>``.
        metrics: names from ``recsys.evaluation.metrics.PER_USER`` and ``coverage``.
        batch_size: users scored at once.
    """

    def __init__(
        self,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = tuple(M.PER_USER) + M.AGGREGATE,
        batch_size: int = 1024,
    ) -> None:
        unknown = [m for m in metrics if m not in M.PER_USER and m not in M.AGGREGATE]
        if unknown:
            known = ", ".join([*M.PER_USER, *M.AGGREGATE])
            raise ValueError(f"unknown metric(s) {unknown}; known: {known}")
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must be positive cut-offs, got {list(ks)}")
        self.ks = sorted({int(k) for k in ks})
        self.metrics = list(metrics)
        self.batch_size = int(batch_size)

    def new_state(self, n_items: int) -> EvaluationState:
        return EvaluationState(n_items=n_items)

    def update(self, state: EvaluationState, scores: torch.Tensor, batch: dict) -> None:
        """Rank ``scores`` ``(B, n_items)`` for ``batch`` (see ``EvalBatches``) into ``state``."""
        users = batch["users"]
        b, n = scores.shape
        scores = scores.clone()
        scores[batch["exclude_rows"], batch["exclude_cols"]] = float("-inf")
        items, valid = topk(scores, max(self.ks))
        truth = torch.zeros((b, n), dtype=torch.bool, device=scores.device)
        truth[batch["truth_rows"], batch["truth_cols"]] = True
        hits = (torch.gather(truth, 1, items) & valid).float()
        n_rel = torch.bincount(batch["truth_rows"], minlength=b).float()
        values = {}
        for k in self.ks:
            for name in self.metrics:
                if name in M.PER_USER:
                    values[f"{name}@{k}"] = M.PER_USER[name](hits[:, :k], n_rel).cpu()
            if "coverage" in self.metrics:
                seen = state.covered.setdefault(k, torch.zeros(n, dtype=torch.bool))
                seen[items[:, :k][valid[:, :k]].cpu()] = True
        state.users.append(users.cpu())
        state.n_relevant.append(n_rel.cpu())
        state.values.append(values)

    def compute(self, state: EvaluationState, stage: str) -> dict[str, float]:
        """Means over evaluated users (float64), and coverage, named ``<stage>/<metric>@<k>``."""
        per_user = state.per_user()
        out = {}
        for k in self.ks:
            for name in self.metrics:
                key = f"{name}@{k}"
                if name in M.PER_USER:
                    out[f"{stage}/{key}"] = float(per_user[key].astype(np.float64).mean())
                else:
                    out[f"{stage}/{key}"] = float(state.covered[k].sum().item() / state.n_items)
        return out


@dataclass
class EvaluationState:
    """What one pass over the evaluation users accumulates."""

    n_items: int
    users: list = field(default_factory=list)
    n_relevant: list = field(default_factory=list)
    values: list = field(default_factory=list)
    covered: dict = field(default_factory=dict)

    def per_user(self) -> dict[str, np.ndarray]:
        """One array per metric, plus ``user`` (row index) and ``n_test``; one entry a user."""
        if not self.users:
            raise RuntimeError("no users were evaluated")
        out = {
            "user": torch.cat(self.users).numpy(),
            "n_test": torch.cat(self.n_relevant).numpy().astype(np.int64),
        }
        for key in self.values[0]:
            out[key] = torch.cat([v[key] for v in self.values]).numpy()
        return out

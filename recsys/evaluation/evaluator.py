"""The Evaluator: full ranking over all items for batches of users, on the scores' device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from recsys.evaluation import bias_metrics as BM
from recsys.evaluation import metrics as M
from recsys.evaluation.ranking import topk
from recsys.evaluation.topk_cpu import topk_excluding


class Evaluator:
    """Full-ranking evaluation.

    For each evaluated user, every item is scored (or, where the batch names candidates,
    only those are ranked); the user's training items (and, when testing, validation items)
    are excluded; the top ``max(ks)`` are taken with ties broken
    by item index; and each metric is computed against the user's held-out items. Users with
    no held-out items are not evaluated (the DataModule counts them in the log). Memory is
    ``O(batch_size * n_items)``: the users x items score matrix is never built whole.

    The metrics of ``recsys.evaluation.bias_metrics`` (IPS/SNIPS, popularity bias) and the
    user segments need statistics of the training part: ``prepare(data)`` takes them from
    the run's ``TrainingData`` before evaluating.

    Args:
        ks: cut-offs; each metric is reported as ``<stage>/<metric>@<k>``.
        metrics: names from ``recsys.evaluation.metrics.PER_USER``, ``coverage`` and
            ``recsys.evaluation.bias_metrics.ALL``.
        head_share: share of training interactions held by the head items (``aplt``).
        buckets: interaction shares that end the head and the mid bucket (``recall_head``,
            ``recall_mid``, ``recall_tail``).
        history_buckets: edges of the user segments by training interactions, e.g. [1, 3,
            10]: 0, 1-2, 3-9 and 10+; every per-user metric is also reported per segment as
            ``<stage>/<metric>@<k>/hist_<segment>`` (with ``<stage>/users/hist_<segment>``,
            the users in it), once the model hands over the users' training counts
            (``set_user_history``). None or empty: off.

    Users are scored in the batches of the DataModule (``eval_batch_size``).
    """

    def __init__(
        self,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = tuple(M.PER_USER) + M.AGGREGATE,
        head_share: float = 0.2,
        buckets: Sequence[float] = (0.2, 0.8),
        history_buckets: Sequence[int] | None = (1, 3, 10),
    ) -> None:
        known = [*M.PER_USER, *M.AGGREGATE, *BM.ALL]
        unknown = [m for m in metrics if m not in known]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(known)}")
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must be positive cut-offs, got {list(ks)}")
        if len(buckets) != 2 or not 0 < buckets[0] < buckets[1] < 1 or not 0 < head_share < 1:
            raise ValueError(
                f"need 0 < head_share < 1 and buckets = [a, b] with 0 < a < b < 1, got "
                f"{head_share} and {list(buckets)}"
            )
        self.ks = sorted({int(k) for k in ks})
        self.metrics = list(metrics)
        self.head_share, self.buckets = float(head_share), tuple(float(b) for b in buckets)
        self.items: BM.ItemStatistics | None = None
        edges = sorted({int(e) for e in (history_buckets or ())})
        if edges and edges[0] < 1:
            raise ValueError(f"history_buckets must be positive edges, got {edges}")
        self.history_edges = edges
        self.history: np.ndarray | None = None

    def prepare(self, data) -> None:
        """Take the training statistics that the metrics and segments need from ``data``
        (a ``recsys.data.training_data.TrainingData``)."""
        if self.needs_item_statistics:
            self.set_item_statistics(data.item_counts(), data.n_users, data.propensity)
        if self.history_edges:
            self.set_user_history(data.user_counts())

    def metric_names(self, stage: str) -> list[str]:
        """Every name ``compute`` can report for ``stage``: ``<stage>/<metric>@<k>``, and the
        per-segment ``<stage>/<metric>@<k>/hist_<segment>`` and ``<stage>/users/hist_<segment>``
        (catalogue metrics such as coverage have no segments)."""
        plain = [f"{stage}/{m}@{k}" for k in self.ks for m in self.metrics]
        segments = [
            f"{stage}/{m}@{k}/hist_{label}"
            for label in self.segment_labels()
            for k in self.ks
            for m in self.metrics
            if m not in (*M.AGGREGATE, *BM.CATALOGUE)
        ]
        users = [f"{stage}/users/hist_{label}" for label in self.segment_labels()]
        return plain + segments + users

    def set_user_history(self, counts: np.ndarray) -> None:
        """Training interactions per user row ``(n_users,)``, for the segments."""
        self.history = np.asarray(counts, dtype=np.int64)

    def segment_labels(self) -> list[str]:
        """``0``, ``1-2``, ``3-9``, ``10+`` for edges [1, 3, 10]."""
        bounds = [0, *self.history_edges]
        labels = [
            str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}" for lo, hi in zip(bounds, bounds[1:])
        ]
        return [*labels, f"{bounds[-1]}+"] if self.history_edges else []

    @property
    def needs_item_statistics(self) -> bool:
        return any(m in BM.ALL for m in self.metrics)

    def set_item_statistics(
        self, popularity: np.ndarray, n_users: int, propensity: np.ndarray | None = None
    ) -> None:
        """Training counts n_i ``(n_items,)``, the number of training users, and the item
        propensities theta_i (None: all 1) that the bias metrics read."""
        self.items = BM.ItemStatistics.build(
            popularity, n_users, propensity, self.head_share, self.buckets
        )

    def new_state(self, n_items: int) -> EvaluationState:
        return EvaluationState(n_items=n_items)

    def update(self, state: EvaluationState, scores: torch.Tensor, batch: dict) -> None:
        """Rank ``scores`` ``(B, n_items)`` for ``batch`` (see ``EvalBatches``) into ``state``."""
        users = batch["users"]
        b, n = scores.shape
        if (
            scores.device.type == "cpu"
            and scores.dtype == torch.float32
            and "candidate_rows" not in batch
        ):  # one read-only pass over the scores
            items, _, valid = topk_excluding(
                scores, batch["exclude_rows"], batch["exclude_cols"], max(self.ks)
            )
            items = items.clamp(min=0)  # unfilled slots: valid is False
        else:
            scores = scores.clone()
            if "candidate_rows" in batch:  # rank only the candidates
                allowed = torch.zeros((b, n), dtype=torch.bool, device=scores.device)
                allowed[batch["candidate_rows"], batch["candidate_cols"]] = True
                scores = scores.masked_fill(~allowed, float("-inf"))
            scores[batch["exclude_rows"], batch["exclude_cols"]] = float("-inf")
            items, valid = topk(scores, max(self.ks))
        hits = (_is_truth(items, batch["truth_rows"], batch["truth_cols"], n) & valid).float()
        n_rel = torch.bincount(batch["truth_rows"], minlength=b).float()
        extra = self._item_tensors(items, batch, b) if self.needs_item_statistics else {}
        values = {}
        for k in self.ks:
            h, v = hits[:, :k], valid[:, :k]
            for name in self.metrics:
                key = f"{name}@{k}"
                if name in M.PER_USER:
                    values[key] = M.PER_USER[name](h, n_rel).cpu()
                elif name in BM.WEIGHTED:
                    w = extra["weight"][:, :k]
                    values[key] = BM.weighted(name, h, n_rel, w, extra["rel_weight"]).cpu()
                elif name in BM.LIST:
                    values[key] = BM.list_metric(name, v, extra[name][:, :k]).cpu()
                elif name in BM.BUCKETS:
                    bucket = BM.BUCKETS.index(name)
                    got = BM.bucket_recall(h, extra["bucket"][:, :k], extra["rel_bucket"], bucket)
                    values[key] = got.cpu()
                elif name in BM.NEW_ITEMS:
                    new = extra["new"][:, :k].long()
                    got = BM.bucket_recall(h, new, extra["rel_new"], 1)
                    values[key] = got.cpu()
            if "coverage" in self.metrics:
                seen = state.covered.setdefault(k, torch.zeros(n, dtype=torch.bool))
                seen[items[:, :k][v].cpu()] = True
            if "gini" in self.metrics:
                exposure = state.exposure.setdefault(k, torch.zeros(n, dtype=torch.int64))
                exposure += torch.bincount(items[:, :k][v].cpu(), minlength=n)
        state.users.append(users.cpu())
        state.n_relevant.append(n_rel.cpu())
        state.values.append(values)

    def _item_tensors(self, items, batch, b: int) -> dict[str, torch.Tensor]:
        """Item statistics gathered for the listed items ``(B, k)``, and per user the sum of
        the relevant items' weights and their count in each popularity bucket."""
        if self.items is None:
            raise RuntimeError(
                "metrics "
                + ", ".join(m for m in self.metrics if m in BM.ALL)
                + " need the training item statistics: call set_item_statistics first"
            )
        st = self.items = self.items.to(items.device)
        rows, cols = batch["truth_rows"], batch["truth_cols"]
        rel_weight = torch.zeros(b, dtype=torch.float64, device=items.device)
        rel_weight.index_add_(0, rows, st.weight[cols])
        rel_bucket = torch.zeros((b, 3), dtype=torch.float32, device=items.device)
        rel_bucket.index_put_(
            (rows, st.bucket[cols]), torch.ones_like(rows, dtype=torch.float32), accumulate=True
        )
        rel_new = torch.zeros((b, 2), dtype=torch.float32, device=items.device)
        rel_new.index_put_(
            (rows, st.new[cols].long()), torch.ones_like(rows, dtype=torch.float32), accumulate=True
        )
        return {
            "new": st.new[items],
            "rel_new": rel_new,
            "weight": st.weight[items].float(),
            "rel_weight": rel_weight.float(),
            "arp": st.popularity[items].float(),
            "aplt": st.long_tail[items].float(),
            "novelty": st.self_information[items].float(),
            "bucket": st.bucket[items],
            "rel_bucket": rel_bucket,
        }

    def compute(self, state: EvaluationState, stage: str) -> dict[str, float]:
        """Means over evaluated users (float64; bucket recalls over the users with relevant
        items in the bucket), and the catalogue metrics, named ``<stage>/<metric>@<k>``."""
        per_user = state.per_user()
        out = {}
        for k in self.ks:
            for name in self.metrics:
                key = f"{name}@{k}"
                if name == "coverage":
                    out[f"{stage}/{key}"] = float(state.covered[k].sum().item() / state.n_items)
                elif name == "gini":
                    out[f"{stage}/{key}"] = BM.gini(state.exposure[k].numpy())
                else:
                    v = per_user[key].astype(np.float64)
                    v = v[~np.isnan(v)] if name in BM.SKIP_NAN else v
                    out[f"{stage}/{key}"] = float(v.mean()) if len(v) else float("nan")
        if self.history_edges and self.history is not None:
            out.update(self._segments(per_user, stage))
        return out

    def _segments(self, per_user: dict[str, np.ndarray], stage: str) -> dict[str, float]:
        """Per-user metrics averaged within each user segment (by training interactions)."""
        segment = np.searchsorted(self.history_edges, self.history[per_user["user"]], "right")
        out = {}
        for s, label in enumerate(self.segment_labels()):
            members = segment == s
            out[f"{stage}/users/hist_{label}"] = float(members.sum())
            if not members.any():
                continue
            for key, values in per_user.items():
                if key in ("user", "n_test"):
                    continue
                v = values[members].astype(np.float64)
                v = v[~np.isnan(v)]
                out[f"{stage}/{key}/hist_{label}"] = float(v.mean()) if len(v) else float("nan")
        return out


def _is_truth(
    items: torch.Tensor, truth_rows: torch.Tensor, truth_cols: torch.Tensor, n: int
) -> torch.Tensor:
    """``(B, k)`` bool: whether ``items[r, j]`` is among row r's held-out items (the pairs
    ``(truth_rows, truth_cols)``), by a binary search over the pairs' keys ``row * n + col``
    (no dense B x n_items mask)."""
    truth = torch.sort(truth_rows.to(items.device) * n + truth_cols.to(items.device)).values
    if len(truth) == 0:
        return torch.zeros_like(items, dtype=torch.bool)
    keys = torch.arange(len(items), device=items.device)[:, None] * n + items
    pos = torch.searchsorted(truth, keys).clamp(max=len(truth) - 1)
    return truth[pos] == keys


@dataclass
class EvaluationState:
    """What one pass over the evaluation users accumulates."""

    n_items: int
    users: list = field(default_factory=list)
    n_relevant: list = field(default_factory=list)
    values: list = field(default_factory=list)
    covered: dict = field(default_factory=dict)
    exposure: dict = field(default_factory=dict)

    @classmethod
    def merged(cls, states: list[EvaluationState]) -> EvaluationState:
        """One state from the states of processes that evaluated disjoint users: per-user
        entries in user order (as one process going through all batches would hold them),
        coverage joined, exposure summed."""
        parts = [u for s in states for u in s.users]
        if not parts:
            return cls(n_items=states[0].n_items)
        users = torch.cat(parts)
        order = torch.argsort(users, stable=True)
        out = cls(n_items=states[0].n_items, users=[users[order]])
        out.n_relevant = [torch.cat([n for s in states for n in s.n_relevant])[order]]
        keys = next((s.values[0].keys() for s in states if s.values), [])
        out.values = [{k: torch.cat([v[k] for s in states for v in s.values])[order] for k in keys}]
        for s in states:
            for k, c in s.covered.items():
                out.covered[k] = c | out.covered[k] if k in out.covered else c.clone()
            for k, e in s.exposure.items():
                out.exposure[k] = e + out.exposure[k] if k in out.exposure else e.clone()
        return out

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

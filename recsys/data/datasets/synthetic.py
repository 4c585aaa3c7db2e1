"""A seeded synthetic implicit-feedback dataset with a planted low-rank preference structure."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from recsys.data.interactions import Interactions


class SyntheticDataset:
    """Generated users x items play counts, the same for the same arguments.

    Generative model (users are rows):
      - user and item latent vectors ``x_u, y_i ~ N(0, I_rank)``; affinity
        ``a_ui = x_u . y_i / sqrt(rank)``;
      - item popularity ``p_i ~ (pop_rank_i)^(-popularity_exponent)`` (Zipf-like, item ranks
        shuffled);
      - user u picks ``n_u`` distinct items (``n_u`` log-normal with mean
        ``mean_interactions``, at least ``min_interactions``) without replacement with
        probability ``~ p_i * exp(affinity_scale * a_ui)`` (Gumbel top-k sampling);
      - strength (e.g. plays) ``1 + Poisson(max_extra_plays * sigmoid(2 a_ui))``;
      - timestamps uniform over ``days`` days from 2020-01-01.

    So a model that learns the low-rank structure beats popularity, and stronger signals come
    with stronger affinity. Generation runs in chunks of users, never densifying users x items.
    """

    name = "synthetic"

    def __init__(
        self,
        n_users: int = 2000,
        n_items: int = 1000,
        rank: int = 8,
        mean_interactions: float = 40.0,
        min_interactions: int = 5,
        popularity_exponent: float = 1.0,
        affinity_scale: float = 3.0,
        max_extra_plays: float = 5.0,
        days: int = 365,
        seed: int = 0,
        chunk_users: int = 1024,
    ) -> None:
        if n_users < 1 or n_items < 2:
            raise ValueError("synthetic data needs n_users >= 1 and n_items >= 2")
        self.n_users, self.n_items, self.rank = n_users, n_items, rank
        self.mean_interactions, self.min_interactions = mean_interactions, min_interactions
        self.popularity_exponent, self.affinity_scale = popularity_exponent, affinity_scale
        self.max_extra_plays, self.days, self.seed = max_extra_plays, days, seed
        self.chunk_users = chunk_users

    def item_text(self, words: int = 12) -> dict[int, str]:
        """Item id -> words naming its strongest latent dimensions and their signs (``d3p``
        for a large positive y_i3), each repeated in proportion to |y_i|: content that
        carries some of the taste structure, for content models."""
        y = self._item_factors(np.random.default_rng(self.seed))
        weights = np.abs(y) / np.abs(y).sum(1, keepdims=True)
        counts = np.rint(weights * words).astype(np.int64)
        names = [[f"d{d}p", f"d{d}n"] for d in range(self.rank)]
        return {
            i + 1: " ".join(
                names[d][int(y[i, d] < 0)] for d in range(self.rank) for _ in range(counts[i, d])
            )
            for i in range(self.n_items)
        }

    def _item_factors(self, rng: np.random.Generator) -> np.ndarray:
        """The users' then the items' latent vectors are the generator's first draws."""
        rng.standard_normal((self.n_users, self.rank))
        return rng.standard_normal((self.n_items, self.rank)).astype(np.float32)

    def load(self) -> Interactions:
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.n_users, self.rank)).astype(np.float32)
        y = rng.standard_normal((self.n_items, self.rank)).astype(np.float32)
        pop_rank = rng.permutation(self.n_items) + 1
        log_pop = -self.popularity_exponent * np.log(pop_rank).astype(np.float32)
        sigma = 0.75
        n_u = rng.lognormal(np.log(self.mean_interactions) - sigma**2 / 2, sigma, self.n_users)
        n_u = np.clip(np.rint(n_u), self.min_interactions, self.n_items).astype(np.int64)

        def pick(start: int, gumbel: np.ndarray) -> tuple[np.ndarray, ...]:
            """Users ``start..`` of a chunk: their items, best key first, and affinities."""
            stop = start + len(gumbel)
            aff = x[start:stop] @ y.T / np.sqrt(self.rank)
            keys = gumbel  # the same sum as scale * aff + log_pop + G, in place
            keys += self.affinity_scale * aff + log_pop
            counts = n_u[start:stop]
            order = _top_columns(keys, int(counts.max()))
            take = np.arange(order.shape[1])[None, :] < counts[:, None]
            rows, ranks = np.nonzero(take)
            cols = order[rows, ranks]
            return rows + start, cols, aff[rows, cols]

        # the Gumbel draws stay in one stream, in chunk order (the data do not depend on the
        # threads); the rest of a chunk runs in a second thread while the next is drawn
        parts = []
        with ThreadPoolExecutor(max_workers=1) as pool:
            for start in range(0, self.n_users, self.chunk_users):
                stop = min(start + self.chunk_users, self.n_users)
                gumbel = rng.gumbel(size=(stop - start, self.n_items))
                if len(parts) >= 2:  # at most two chunks' keys in memory
                    parts[-2] = parts[-2].result()
                parts.append(pool.submit(pick, start, gumbel))
            parts = [p if isinstance(p, tuple) else p.result() for p in parts]
        users, items, affinity = zip(*parts)
        users = np.concatenate(users)
        items = np.concatenate(items)
        affinity = np.concatenate(affinity)
        plays = 1 + rng.poisson(self.max_extra_plays / (1 + np.exp(-2 * affinity)))
        t0 = 1577836800  # 2020-01-01 UTC
        ts = t0 + rng.integers(0, self.days * 86400, size=len(users))
        return Interactions.from_arrays(
            users + 1,
            items + 1,
            plays.astype(np.float32),
            ts,
            user_ids=np.arange(1, self.n_users + 1),
            item_ids=np.arange(1, self.n_items + 1),
        )


def _top_columns(keys: np.ndarray, k: int) -> np.ndarray:
    """The column indices of each row's ``k`` largest ``keys`` ``(B, n)``, largest first: the
    first ``k`` columns of a full descending argsort, by a partition and a sort of the ``k``
    (O(n + k log k) per row instead of O(n log n))."""
    neg = -keys
    if k >= keys.shape[1]:
        return np.argsort(neg, axis=1)
    part = np.argpartition(neg, k - 1, axis=1)[:, :k]
    return np.take_along_axis(part, np.argsort(np.take_along_axis(neg, part, 1), axis=1), 1)

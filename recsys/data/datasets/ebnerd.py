"""EB-NeRD news impressions (Ekstra Bladet): clicks with read time and scroll depth."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.datasets.files import require_dir, require_file
from recsys.data.events import EventReport, EventRules, events_to_interactions
from recsys.data.interactions import Interactions


class EBNeRD:
    """Clicked articles as events, aggregated by ``recsys.data.events``:

    - ``history.parquet``: each user's past clicks (``article_id_fixed``) with
      ``read_time_fixed`` (dwell seconds), ``scroll_percentage_fixed`` and times; event type
      ``history``;
    - ``behaviors.parquet``: each impression's clicked article(s), whose dwell and scroll are
      the impression's ``next_read_time`` / ``next_scroll_percentage``; event type ``click``.

    Pair features: ``dwell`` (total read seconds), ``scroll`` (max), ``visits``, ``count``,
    ``type:history``, ``type:click``. The in-view article lists are kept as exposure data in
    ``exposures`` (an Interactions of user x article: times shown) for debiasing work.
    """

    name = "ebnerd"

    def __init__(self, path: str, rules: Mapping | None = None) -> None:
        self.path = Path(path)
        self.rules = EventRules(**dict(rules or {}))
        self.report: EventReport | None = None
        self.exposures: Interactions | None = None

    def source_files(self) -> list[Path]:
        return [self.path / "history.parquet", self.path / "behaviors.parquet"]

    def load(self) -> Interactions:
        folder = require_dir(self.path, self.name, "history.parquet and behaviors.parquet")
        history = pd.read_parquet(require_file(folder / "history.parquet", self.name))
        behaviors = pd.read_parquet(require_file(folder / "behaviors.parquet", self.name))

        hist = history.explode(
            [
                "impression_time_fixed",
                "scroll_percentage_fixed",
                "article_id_fixed",
                "read_time_fixed",
            ]
        ).dropna(subset=["article_id_fixed"])
        clicks = behaviors.explode("article_ids_clicked").dropna(subset=["article_ids_clicked"])
        events = pd.concat(
            [
                pd.DataFrame(
                    {
                        "user": hist["user_id"].to_numpy(np.int64),
                        "item": hist["article_id_fixed"].to_numpy(np.int64),
                        "timestamp": _seconds(hist["impression_time_fixed"]),
                        "dwell": hist["read_time_fixed"].to_numpy(np.float64),
                        "scroll": hist["scroll_percentage_fixed"].to_numpy(np.float64),
                        "event_type": "history",
                    }
                ),
                pd.DataFrame(
                    {
                        "user": clicks["user_id"].to_numpy(np.int64),
                        "item": clicks["article_ids_clicked"].to_numpy(np.int64),
                        "timestamp": _seconds(clicks["impression_time"]),
                        "dwell": clicks["next_read_time"].to_numpy(np.float64),
                        "scroll": clicks["next_scroll_percentage"].to_numpy(np.float64),
                        "event_type": "click",
                    }
                ),
            ],
            ignore_index=True,
        )
        events["row"] = np.arange(1, len(events) + 1)
        data, self.report = events_to_interactions(events, self.rules, source=str(folder))

        shown = behaviors.explode("article_ids_inview").dropna(subset=["article_ids_inview"])
        self.exposures = Interactions.from_arrays(
            shown["user_id"].to_numpy(np.int64),
            shown["article_ids_inview"].to_numpy(np.int64),
            timestamps=_seconds(shown["impression_time"]),
        )
        return data


def _seconds(times: pd.Series) -> np.ndarray:
    return (pd.to_datetime(times).astype("datetime64[s]").astype(np.int64)).to_numpy()

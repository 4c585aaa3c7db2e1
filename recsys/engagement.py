"""``recsys-engagement``: engagement analytics of an event log with an item table, per topic,
length bucket and any other item-table column (``recsys.evaluation.engagement``): writes
``engagement.csv``, ``engagement.md`` and ``engagement.svg`` into the run folder and prints
the table."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR
from recsys.errors import RecsysError
from recsys.evaluation.engagement import (
    engagement_table,
    item_frame,
    to_markdown,
    to_svg,
    views_of,
)
from recsys.files import write_text

log = logging.getLogger(__name__)

ITEMS_SETTINGS = (
    "data.items.path=<the item table, e.g. articles.csv>, data.items.columns.item=<its id "
    "column> and data.items.columns.topic=<its topic or section column>"
)


def engagement(cfg: DictConfig) -> dict:
    """The engagement table of ``cfg.data``'s events and item table, written as CSV,
    Markdown and SVG into ``cfg.paths.output_dir``; returns ``{"table": DataFrame,
    "markdown": str, "files": [paths]}``. RecsysError saying what to set for a dataset
    without events, without an item table or without the columns of ``by``."""
    dataset = hydra.utils.instantiate(cfg.data)
    name = getattr(dataset, "name", type(dataset).__name__)
    if not hasattr(dataset, "events"):
        raise RecsysError(
            f"recsys-engagement needs an event log with an item table (data=events with "
            f"{ITEMS_SETTINGS}; or data=publisher_sim): data {name!r} has no events"
        )
    if hasattr(dataset, "item_table") and dataset.item_table() is None:  # before reading events
        raise RecsysError(
            f"recsys-engagement groups views by their article's topic, and the event log has no "
            f"item table: set {ITEMS_SETTINGS}"
        )
    events = dataset.events()
    items = item_frame(dataset)  # after events(): an event log aligns the ids' types there
    if items is None:
        raise RecsysError(
            f"recsys-engagement groups views by their article's topic, and data {name!r} has no "
            f"item table: use data=events with {ITEMS_SETTINGS}"
        )
    by = [str(b) for b in cfg.by]
    if "topic" in by and "topic" not in items:
        columns = ", ".join(map(str, items.columns)) or "none mapped"
        raise RecsysError(
            f"the item table has no topic column: set data.items.columns.topic=<its topic or "
            f"section column> (its other columns: {columns}), or leave topic out of by"
        )
    rules = getattr(dataset, "rules", None)
    bounce = cfg.bounce_seconds
    if bounce is None:
        bounce = getattr(rules, "bounce_seconds", 10.0)
    views, sessions_known = views_of(
        events,
        getattr(rules, "session_gap", 1800.0),
        None if cfg.event_types is None else list(cfg.event_types),
        getattr(rules, "max_events_per_user", None),
    )
    if not sessions_known:
        log.warning("the log has neither times nor a session column: repeat visits and sessions "
                    "continued are unknown")  # fmt: skip
    edges = cfg.length_edges
    table = engagement_table(
        views,
        items,
        by,
        float(bounce),
        sessions_known,
        [str(x) for x in cfg.length_buckets],
        None if edges is None else list(OmegaConf.to_container(edges)),
        str(cfg.length_unit),
        int(cfg.resamples),
        int(cfg.seed),
    )
    source = getattr(dataset, "source", name)
    title = cfg.title or f"Engagement: {source}"
    markdown = (
        f"# {title}\n\n{len(views):,} views; read rate: views with a known dwell of at least "
        f"{float(bounce):g} s; intervals: 95% bootstrap over readers ({cfg.resamples} "
        f"resamples).\n\n{to_markdown(table, float(bounce))}"
    )
    out = Path(cfg.paths.output_dir)
    files = [
        write_text(out / "engagement.csv", table.to_csv(index=False)),
        write_text(out / "engagement.md", markdown),
        write_text(out / "engagement.svg", to_svg(table, title, float(bounce))),
    ]
    print(markdown, end="")
    log.info("wrote %s", ", ".join(map(str, files)))
    return {"table": table, "markdown": markdown, "files": files}


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="engagement")
@user_errors
def main(cfg: DictConfig) -> None:
    engagement(cfg)


if __name__ == "__main__":
    main()

"""``recsys-recommend ckpt_path=... users=[...] k=10``: top-k lists from a checkpoint alone, for
known readers (a list, a file of ids, or ``all``), a new reader's history, the article being
read, with freshness and topic filters, or the related-articles table (``recsys.serve``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR
from recsys.errors import DataNotFoundError, RecsysError
from recsys.files import write_atomically, write_text
from recsys.serve import Recommender

FILTERS = ("now", "fresh_days", "topics", "exclude_topics")


def _listed(value) -> list | None:
    if value is None:
        return None
    return list(value) if isinstance(value, ListConfig | list) else [value]


def reader_ids(value, rec: Recommender) -> list:
    """``users=``: a list of ids, ``all`` (every reader the model knows), or a file of ids
    (one per line, or the first column of a CSV with a header)."""
    if isinstance(value, str) and value == "all":
        return list(rec.model.user_ids)
    if isinstance(value, str) and (Path(value).suffix in (".txt", ".csv") or "/" in value):
        path = Path(value)
        if not path.is_file():
            raise DataNotFoundError(f"users={value}: no such file (one reader id per line)")
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str).iloc[:, 0].dropna().tolist()
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return _listed(value)


def _options(cfg: DictConfig) -> dict:
    out = {"k": int(cfg.k), "exclude_read": bool(cfg.exclude_seen)}
    for name in FILTERS:
        value = cfg.get(name)
        out[name] = _listed(value) if name.endswith("topics") else value
    return out


def _rows(results: list[dict], key: str) -> pd.DataFrame:
    """Lists as a long table: ``key`` (``user``, or ``item`` for related articles), ``rank``
    (1 = best), ``item`` (``related`` for related articles), ``score``."""
    listed = "related" if key == "item" else "item"
    rows = [
        (r[key], rank, item, score)
        for r in results
        for rank, (item, score) in enumerate(zip(r["items"], r["scores"]), start=1)
    ]
    frame = pd.DataFrame(rows, columns=[key, "rank", listed, "score"])
    for column in (key, listed):
        frame[column] = frame[column].astype(str)
    return frame


def write_results(results: list[dict], output: str | None, key: str) -> None:
    """JSON lines to ``output`` (``.jsonl``/``.json``/other) or ``.parquet`` (a long table),
    atomically; printed when ``output`` is null."""
    if not output:
        print("\n".join(json.dumps(r) for r in results))
        return
    if Path(output).suffix == ".parquet":
        frame = _rows(results, key)
        write_atomically(Path(output), lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        write_text(output, "".join(json.dumps(r) + "\n" for r in results))
    print(f"wrote {len(results):,} lists to {output}", file=sys.stderr)


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="recommend")
@user_errors
def main(cfg: DictConfig) -> None:
    rec = Recommender.load(
        cfg.ckpt_path,
        items=cfg.get("items"),
        trusted_packages=list(cfg.get("trusted_packages") or []),
        paths=OmegaConf.to_container(cfg.paths, resolve=True),
        context_weight=cfg.context_weight,
    )
    options = _options(cfg)
    if cfg.related:
        filters = {k: v for k, v in options.items() if k in FILTERS}
        results = [rec.related(i, cfg.k, **filters) for i in rec.item_ids.tolist()]
        write_results(results, cfg.output, "item")
        return
    features = cfg.get("features")
    if features is not None and not isinstance(features, DictConfig):
        raise RecsysError("features must map a feature name to values: features={dwell:[...]}")
    if cfg.get("history") is not None or (cfg.get("context") is not None and cfg.users is None):
        result = rec.recommend(
            history=_listed(cfg.get("history")) or [],
            context=cfg.get("context"),
            strengths=_listed(cfg.get("strengths")),
            confidences=_listed(cfg.get("confidences")),
            features=None if features is None else OmegaConf.to_container(features),
            **options,
        )
        if cfg.get("context") is not None:
            result = {**result, "context": cfg.context}
        write_results([result], cfg.output, "history")
        return
    if cfg.get("users") is None:
        raise RecsysError(
            "give users=[...] (known readers; users=all or users=<file of ids>), history=[...] "
            "(a new reader), context=<article>, or related=true"
        )
    users = reader_ids(cfg.users, rec)
    if cfg.get("context") is not None:
        results = [{**rec.recommend(user=u, context=cfg.context, **options)} for u in users]
    else:
        results = rec.recommend_users(users, **options)
    write_results(results, cfg.output, "user")


if __name__ == "__main__":
    main()

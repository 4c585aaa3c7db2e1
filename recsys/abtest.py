"""``recsys-abtest dir=FOLDER``: the A/B analysis of a deployment log
(``recsys.evaluation.abtest``): per-arm metrics, differences to the control with intervals
that treat the reader as the unit of randomization (cluster bootstrap over readers, or the
delta method), the sample-ratio check, the effect by day and the power analysis;
``abtest.json`` in the run folder, markdown on stdout, notes and warnings on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR
from recsys.data.ab_logs import read_log
from recsys.errors import RecsysError
from recsys.evaluation.abtest import summarize
from recsys.evaluation.abtest_report import to_markdown
from recsys.files import write_text


def run(cfg: DictConfig) -> dict:
    """Read the log in ``cfg.dir``, analyse it, write ``abtest.json`` into
    ``cfg.paths.output_dir`` (atomically) and return the result."""
    log = read_log(
        cfg.dir,
        columns=_mapping(cfg, "columns"),
        impression_columns=_mapping(cfg, "impression_columns"),
        assignment_columns=_mapping(cfg, "assignment_columns"),
        files=_mapping(cfg, "files"),
        encoding=cfg.encoding,
    )
    split = _mapping(cfg, "expected_split")
    result = summarize(
        log.views,
        log.impressions,
        log.assignment,
        control=None if cfg.control is None else str(cfg.control),
        expected_split=split,
        bounce_seconds=float(cfg.bounce_seconds),
        widget_sources=[str(s) for s in cfg.widget_sources],
        method=str(cfg.method),
        resamples=int(cfg.resamples),
        level=float(cfg.level),
        seed=int(cfg.seed),
        target_lift=float(cfg.target_lift),
        alpha=float(cfg.alpha),
        power=float(cfg.power),
        by_day=bool(cfg.by_day),
        srm_threshold=float(cfg.srm_threshold),
        arms=None if cfg.get("arms") is None else [str(a) for a in cfg.arms],
    )
    result["notes"] = log.notes + result["notes"]
    result["dir"] = str(Path(str(cfg.dir)).expanduser().resolve())
    out = Path(cfg.paths.output_dir) / "abtest.json"
    write_text(out, json.dumps(result, indent=2) + "\n")
    for note in result["notes"]:
        print(f"warning: {note}", file=sys.stderr)
    print(to_markdown(result))
    print(f"wrote {out}", file=sys.stderr)
    return result


def _mapping(cfg: DictConfig, key: str) -> dict | None:
    value = cfg.get(key)
    if value is None:
        return None
    if not isinstance(value, DictConfig):
        raise RecsysError(f"{key} must be a mapping ({key}={{a: 0.5, b: 0.5}}), got {value!r}")
    return {str(k): v for k, v in OmegaConf.to_container(value, resolve=True).items()}


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="abtest")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()

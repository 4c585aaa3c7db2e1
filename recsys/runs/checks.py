"""Settings that cannot work together, found before any training starts (ConfigError)."""

from __future__ import annotations

from omegaconf import DictConfig

from recsys.errors import ConfigError
from recsys.evaluation import Evaluator


def check_optimized_metric(name: str | None, evaluator: Evaluator) -> None:
    """ConfigError unless ``name`` (e.g. ``val/ndcg@20``) is one the evaluator computes."""
    if not name:
        return
    computed = evaluator.metric_names("val") + evaluator.metric_names("test")
    if name not in computed:
        shown = ", ".join(n for n in computed if n.startswith("val/") and "/hist_" not in n)
        raise ConfigError(
            f"optimized_metric={name} is not computed by the evaluator (ks {evaluator.ks}, "
            f"metrics {evaluator.metrics}): choose one of {shown}, or change evaluator.ks / "
            "evaluator.metrics"
        )


def check_adjustment(beta: float | None, has_propensity: bool) -> None:
    """ConfigError for a popularity adjustment without a propensity model."""
    if beta and not has_propensity:
        raise ConfigError(
            f"popularity_adjustment={beta} divides scores by propensities, but propensity=none "
            "gives none: choose a propensity model, e.g. propensity=popularity"
        )


def check_seed(seed) -> None:
    """ConfigError unless ``seed`` is an integer."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")


def check_trainer(trainer: DictConfig) -> None:
    """ConfigError for a trainer that would train nothing (``max_epochs=0``, ``max_steps=0``)."""
    for key in ("max_epochs", "max_steps"):
        if trainer.get(key) == 0:
            raise ConfigError(
                f"trainer.{key}=0 trains nothing, and the run would report an untrained "
                f"model's metrics: give trainer.{key} >= 1"
            )

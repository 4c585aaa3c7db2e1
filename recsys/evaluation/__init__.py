"""Full-ranking evaluation: ranking with a fixed tie rule, metrics, and per-stage accumulation."""

from recsys.evaluation.evaluator import Evaluator
from recsys.evaluation.ranking import topk

__all__ = ["Evaluator", "topk"]

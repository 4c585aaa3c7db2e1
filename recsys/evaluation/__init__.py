"""Full-ranking evaluation: ranking with a fixed tie rule, metrics, and per-stage accumulation.

``Evaluator`` and ``topk`` are imported on first use, so that modules which need only numpy
and scipy (``significance``, used by ``recsys-compare``) do not load torch.
"""

from __future__ import annotations

import importlib

__all__ = ["Evaluator", "topk"]
_WHERE = {"Evaluator": "recsys.evaluation.evaluator", "topk": "recsys.evaluation.ranking"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

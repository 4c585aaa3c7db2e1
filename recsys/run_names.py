"""Names of runs for the trackers: the overrides that set a run apart (``run_overrides``) and
the name each tracker shows (``run_name``, the ``recsys_run_name`` resolver of
``configs/logger/*.yaml``)."""

from __future__ import annotations

import sys


def run_overrides() -> list[str]:
    """The running job's overrides (``key=value`` as given), without those of ``hydra.*``: in
    a multirun only those of the keys the command line sweeps over (``model=als,bpr``), where
    the command line tells them; [] outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return []
    hc = HydraConfig.get()
    task = [o for o in hc.overrides.task if not _key(o).startswith("hydra.")]
    if hc.mode != RunMode.MULTIRUN:
        return task
    swept = _swept_keys(sys.argv[1:])
    return [o for o in task if _key(o) in swept] if swept else task


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _swept_keys(args: list[str]) -> set[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser, keys = OverridesParser.create(), set()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            override = parser.parse_override(arg)
        except Exception:  # noqa: BLE001 (Hydra reports bad overrides itself)
            continue
        if override.is_sweep_override():
            keys.add(_key(arg))
    return keys


def run_name(name: str | None = None, scope: str = "run") -> str | None:
    """A run's name for the trackers: ``name`` when the user gives one (``name=...``), else
    the overrides that set it apart (``run_overrides``, joined by ``,``, e.g.
    ``model=bpr,model.factors=128``). ``scope="tensorboard"``: the sub-folder of
    ``tensorboard/`` (TensorBoard names runs by their folders): ``""`` for a run of its own,
    so that its events stay in ``tensorboard/``; otherwise None when there is nothing to
    tell (the tracker picks a name)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not name:
        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        if scope == "tensorboard" and not multirun:
            return ""
        name = ",".join(run_overrides())
    if not name:
        return "" if scope == "tensorboard" else None
    return str(name).replace("/", "_")[:200]

"""Loading a trained model from its checkpoint alone, without the dataset, safely.

A checkpoint is a file that may come from someone else. It is read with
``torch.load(weights_only=True)`` (tensors and plain values only), the model class it names
must be a trusted ``RecommenderModule`` (``recsys.registry``: the framework's own classes and
those of packages registered with ``trusting``), and the class is built from the saved
hyperparameters that its constructor declares. Lightning's ``load_from_checkpoint`` is not
used: it imports and calls whatever a checkpoint's ``_instantiator`` names.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from recsys.errors import CheckpointError, ConfigError, RecsysError
from recsys.models.base import RecommenderModule
from recsys.registry import resolve_class, trusting


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict in ``path`` (tensors and plain values only), with its ``recsys``
    section checked to be there."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint: {first}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("recsys"), dict):
        raise CheckpointError(f"{path} was not written by recsys-train (no 'recsys' section)")
    if "model_class" not in ckpt["recsys"] or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} was not written by recsys-train (no model in it)")
    return ckpt


def load_model(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    trusted_packages: list[str] | tuple[str, ...] = (),
) -> RecommenderModule:
    """The model saved in ``path``, in eval mode on ``map_location``, with its id maps,
    training items, fitted confidence, data fingerprint and run config. Classes of
    ``trusted_packages`` may be named besides the framework's own. Raises CheckpointError
    (one line) for anything else: a missing or foreign file, an untrusted class,
    hyperparameters or weights that do not fit the class."""
    ckpt = read_checkpoint(path)
    with trusting(trusted_packages):
        cls = resolve_class(ckpt["recsys"]["model_class"], RecommenderModule, "model class")
        hparams = dict(ckpt.get("hyper_parameters") or {})
        _check_arguments(cls, hparams, path)
        try:
            model = cls(**hparams)
            model.on_load_checkpoint(ckpt)
            model.load_state_dict(ckpt["state_dict"], strict=True)
        except CheckpointError:
            raise
        except (RecsysError, ConfigError, TypeError, ValueError, RuntimeError, KeyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(
                f"{path} does not fit its model class {cls.__name__}: {first}"
            ) from None
    return model.to(map_location).eval()


def _check_arguments(cls: type, hparams: dict, path) -> None:
    """CheckpointError for saved hyperparameters that the class's constructor does not take
    (e.g. Lightning's ``_instantiator``, which would name a callable)."""
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    odd = [k for k in hparams if k.startswith("_") or (k not in params and not takes_any)]
    if odd:
        raise CheckpointError(
            f"{path} holds arguments that {cls.__name__} does not take: {', '.join(odd)}"
        )

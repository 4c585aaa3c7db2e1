"""Which classes a file may name: the framework's own, and those of packages the user trusts.

Checkpoints and the configs stored in them come from files, possibly someone else's. They name
classes by their dotted path (``recsys.models.ALS``); anything named that way is resolved here,
and only to a *class* defined in the ``recsys`` package or in a package the user registered
(``trusted_packages`` in the config, or ``trusting([...])`` in Python). Functions, modules, and
classes of any other package are refused with ``UntrustedClassError`` before anything is
imported from them or called.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from recsys.errors import UntrustedClassError

OWN_PACKAGE = "recsys"
_trusted: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "recsys_trusted_packages", default=()
)


def trusted_packages() -> tuple[str, ...]:
    """The packages whose classes files may name now: ``recsys`` and the registered ones."""
    return (OWN_PACKAGE, *_trusted.get())


@contextlib.contextmanager
def trusting(packages: Iterable[str] | None) -> Iterator[None]:
    """Within the block, files may also name classes of ``packages`` (dotted package or
    module names, e.g. ``["my_models"]``)."""
    added = tuple(str(p).strip() for p in (packages or ()) if str(p).strip())
    token = _trusted.set(tuple(dict.fromkeys((*_trusted.get(), *added))))
    try:
        yield
    finally:
        _trusted.reset(token)


def _inside(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def resolve_class(path: str, base: type | None = None, what: str = "class") -> type:
    """The class at dotted ``path``, if it lies in a trusted package (and subclasses ``base``).

    The module part is checked before it is imported, and the object found must be a class
    defined in a trusted package (an imported name such as ``recsys.data.cache.Path`` is
    refused), so a file cannot make this import or call anything else."""
    packages = trusted_packages()
    module, _, name = str(path).rpartition(".")
    hint = (
        "only classes of the recsys package, or of packages you trust explicitly "
        "(trusted_packages=[...] on the command line), can be named"
    )
    if not module or not name or not _inside(module, packages):
        raise UntrustedClassError(f"{what} {path!r} is refused: {hint}")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise UntrustedClassError(f"{what} {path!r} does not exist ({e})") from None
    if not inspect.isclass(obj) or not _inside(obj.__module__, packages):
        raise UntrustedClassError(f"{what} {path!r} is refused: not a class of its package; {hint}")
    if base is not None and not issubclass(obj, base):
        raise UntrustedClassError(f"{what} {path!r} is refused: not a {base.__name__}")
    return obj


def check_targets(config: Any, where: str) -> None:
    """Raise UntrustedClassError unless every ``_target_`` in ``config`` (nested dicts and
    lists, e.g. a config section stored in a checkpoint) names a trusted class, so that
    ``hydra.utils.instantiate`` on it can only build such classes."""
    if isinstance(config, Mapping):
        for key, value in config.items():
            if key == "_target_":
                resolve_class(value, what=f"{where}: _target_")
            else:
                check_targets(value, f"{where}.{key}")
    elif isinstance(config, Sequence) and not isinstance(config, str | bytes):
        for i, value in enumerate(config):
            check_targets(value, f"{where}[{i}]")

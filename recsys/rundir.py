"""Run directories that never collide: created here, atomically, one per process and name."""

from __future__ import annotations

import os

_CREATED: dict[str, str] = {}


def unique_dir(base: str) -> str:
    """A new directory named ``base``, or ``base_2``, ``base_3``... when that exists already,
    created with ``os.mkdir`` (which fails rather than share a directory with another
    process); the same path for every call with ``base`` in this process. Used by the
    configs' default run folders (``${recsys_unique_dir:...}``), so that two runs started in
    the same second get two folders."""
    if base not in _CREATED:
        os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
        n = 1
        while True:
            path = base if n == 1 else f"{base}_{n}"
            try:
                os.mkdir(path)
                break
            except FileExistsError:
                n += 1
        _CREATED[base] = path
    return _CREATED[base]

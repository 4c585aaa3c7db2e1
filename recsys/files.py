"""Files and folders written safely: run folders that never collide, and atomic writes (a
temporary name in the same folder, then a rename: a crash or a full disk never leaves a
half-written file under the final name)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would have given the file


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.
    An OSError (a full disk...) leaves nothing behind and names ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        _raise_naming(e, path)
    os.close(fd)
    try:
        os.chmod(tmp, _FILE_MODE)
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as e:
        _raise_naming(e, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def _raise_naming(error: OSError, path: Path) -> None:
    """Raise ``error`` again, naming the final ``path`` (not the temporary file) where it has
    an errno to say what went wrong."""
    if error.errno is None:
        raise error
    raise OSError(error.errno, error.strerror, str(path)) from error


def write_text(path: str | Path, text: str) -> Path:
    """``text`` into ``path``, atomically."""
    return write_atomically(path, lambda tmp: tmp.write_text(text))

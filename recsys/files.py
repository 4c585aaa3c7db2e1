"""Files and folders written safely: run folders that never collide, and atomic writes (a
temporary file in the same folder, then a rename: a crash or a full disk never leaves a
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
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder, then put it in place as
    ``path``. An OSError (a full disk...) leaves nothing behind and names ``path``.

    On Linux the temporary file has no name while it is written (``O_TMPFILE``; ``write`` is
    handed its ``/proc/self/fd/N`` path), so a process killed mid-write leaves nothing at all;
    it is linked under a hidden name and renamed over ``path`` only once whole. Elsewhere (or
    on a file system without ``O_TMPFILE``) it is a hidden ``.<name>.<random>.tmp`` file, which
    a process killed mid-write leaves behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        _raise_naming(e, path)
    try:
        anonymous = _anonymous_file(folder)
        if anonymous is None:
            _write_named(path, write)
        else:
            _write_anonymous(path, write, folder, anonymous)
    finally:
        os.close(folder)
    return path


def _anonymous_file(folder: int) -> int | None:
    """A file without a name in ``folder`` (``O_TMPFILE``), or None where the platform or the
    file system has none."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(".", flag | os.O_RDWR, _FILE_MODE, dir_fd=folder)
    except OSError:  # EOPNOTSUPP, EISDIR, EINVAL...: not supported here
        return None


def _write_anonymous(path: Path, write: Callable[[Path], None], folder: int, fd: int) -> None:
    hidden = None
    try:
        write(Path(f"/proc/self/fd/{fd}"))
        try:  # a new file appears whole under its name at once
            os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=folder, follow_symlinks=True)
        except FileExistsError:  # over an old one: a hidden name, then the rename
            hidden = _hidden_name(path)
            os.link(f"/proc/self/fd/{fd}", hidden, dst_dir_fd=folder, follow_symlinks=True)
            os.replace(hidden, path.name, src_dir_fd=folder, dst_dir_fd=folder)
            hidden = None
    except OSError as e:
        _raise_naming(e, path)
    finally:
        os.close(fd)
        if hidden is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(hidden, dir_fd=folder)


def _hidden_name(path: Path) -> str:
    return f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"


def _write_named(path: Path, write: Callable[[Path], None]) -> None:
    try:
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


def _raise_naming(error: OSError, path: Path) -> None:
    """Raise ``error`` again, naming the final ``path`` (not the temporary file) where it has
    an errno to say what went wrong."""
    if error.errno is None:
        raise error
    raise OSError(error.errno, error.strerror, str(path)) from error


def write_text(path: str | Path, text: str) -> Path:
    """``text`` into ``path``, atomically."""
    return write_atomically(path, lambda tmp: tmp.write_text(text))

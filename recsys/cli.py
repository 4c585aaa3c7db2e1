"""What the console scripts share: bad input as one line on stderr and exit status 2."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

from recsys.errors import RecsysError


def user_errors(func: Callable) -> Callable:
    """Print a RecsysError as one line on stderr and exit with status 2 (3 for a
    DivergenceError), no traceback; also
    one raised, or a ValueError about a bad argument, while Hydra builds an object of the
    config (Hydra wraps those in an InstantiationException); and a file that cannot be written
    or read (a full disk, a read-only folder: ``OSError`` with an errno), naming it."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from hydra.errors import InstantiationException

        logging.raiseExceptions = False  # a log file on a full disk: no traceback per record
        try:
            return func(*args, **kwargs)
        except RecsysError as e:
            _fail(str(e), getattr(e, "exit_code", 2))
        except InstantiationException as e:
            if not isinstance(e.__cause__, RecsysError | ValueError):
                raise
            _fail(str(e.__cause__))
        except OSError as e:
            if e.errno is None:
                raise
            where = f" {e.filename}" if e.filename else ""
            _fail(f"cannot write or read{where}: {e.strerror}; free space, or choose "
                  "another folder (hydra.run.dir=..., paths.log_dir=...)")  # fmt: skip

    return wrapper


def _fail(message: str, code: int = 2) -> None:
    message = " ".join(message.split("\n"))
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code) from None

"""What the console scripts share: bad input as one line on stderr and exit status 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from recsys.errors import RecsysError


def user_errors(func: Callable) -> Callable:
    """Print a RecsysError as one line on stderr and exit with status 2, no traceback; also
    one raised, or a ValueError about a bad argument, while Hydra builds an object of the
    config (Hydra wraps those in an InstantiationException)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from hydra.errors import InstantiationException

        try:
            return func(*args, **kwargs)
        except RecsysError as e:
            _fail(e)
        except InstantiationException as e:
            if not isinstance(e.__cause__, RecsysError | ValueError):
                raise
            _fail(e.__cause__)

    return wrapper


def _fail(error: BaseException) -> None:
    message = " ".join(str(error).split("\n"))
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2) from None

"""What the console scripts share: bad input as one line on stderr and exit status 2 (3 for a
diverged training), never a traceback; a traceback means a bug of ours."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable

from recsys.errors import RecsysError


def user_errors(func: Callable) -> Callable:
    """Print a user's error as one line on stderr and exit with status 2 (3 for a
    DivergenceError), no traceback: a RecsysError; one raised, or a ValueError or TypeError
    about a bad argument, while Hydra builds an object of the config (Hydra wraps those in an
    InstantiationException); a config that does not compose or lacks a value (Hydra, OmegaConf
    and YAML errors); a file that cannot be written or read (``OSError`` with an errno: a full
    disk, a read-only folder), naming it."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from hydra.errors import HydraException, InstantiationException
        from omegaconf.errors import OmegaConfBaseException
        from yaml import YAMLError

        logging.raiseExceptions = False  # a log file on a full disk: no traceback per record
        try:
            return func(*args, **kwargs)
        except RecsysError as e:
            _fail(str(e), getattr(e, "exit_code", 2))
        except InstantiationException as e:
            cause = e.__cause__
            if not isinstance(cause, RecsysError | ValueError | TypeError):
                raise
            where = "" if isinstance(cause, RecsysError) else f" ({_config_key(e)})"
            _fail(f"{cause}{where}", getattr(cause, "exit_code", 2))
        except (HydraException, OmegaConfBaseException, YAMLError) as e:
            cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else None
            _fail(f"{e} {cause or ''}".split("Config search path:")[0])
        except OSError as e:
            if e.errno is None:
                raise
            where = f" {e.filename}" if e.filename else ""
            _fail(f"cannot write or read{where}: {e.strerror}; free space, or choose "
                  "another folder (hydra.run.dir=..., paths.log_dir=...)")  # fmt: skip

    return wrapper


def hydra_app(main: Callable) -> Callable:
    """``user_errors`` around a Hydra app (``@hydra.main``), so that Hydra's own errors (an
    unknown config option, a key not in the config, a malformed override or YAML file) are one
    line and exit 2 too, instead of Hydra's message and exit 1. ``HYDRA_FULL_ERROR=1`` set by
    the user still shows Hydra's full trace."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return main

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, and user_errors prints the line
        try:
            return main(*args, **kwargs)
        finally:
            os.environ.pop("HYDRA_FULL_ERROR", None)

    return user_errors(wrapper)


def _config_key(error: Exception) -> str:
    """Which config section and class an InstantiationException was building, from its
    message (Hydra names them: ``Error in call to target '...'`` and ``full_key: ...``)."""
    text = str(error)
    target = text.split("target '", 1)[1].split("'", 1)[0] if "target '" in text else "?"
    key = text.split("full_key: ", 1)[1].split()[0] if "full_key: " in text else "the config"
    return f"config {key}: {target}"


def _fail(message: str, code: int = 2) -> None:
    message = " ".join(part.strip() for part in message.split("\n") if part.strip())
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code) from None

"""recsys: a PyTorch research framework for recommendation from implicit feedback.

Conventions used everywhere: users are rows, items are columns; ``Interactions.matrix`` is a
``(n_users, n_items)`` CSR matrix of raw strengths.
"""

__version__ = "0.1.0"

import os as _os

from omegaconf import OmegaConf as _OmegaConf

from recsys.files import unique_dir as _unique_dir

# paths.root_dir: the working directory at start-up. Hydra's ${hydra:runtime.cwd} is not set
# yet when a multirun (`recsys-train -m ...`) resolves its sweep directory.
_OmegaConf.register_new_resolver("recsys_cwd", _os.getcwd, replace=True)
# hydra.run.dir / hydra.sweep.dir: a new folder per process, even for runs started in the
# same second
_OmegaConf.register_new_resolver("recsys_unique_dir", _unique_dir, replace=True)


def _run_name(name=None, scope="run"):
    from recsys.run_names import run_name

    return run_name(name, scope)


# the trackers' run names (configs/logger/*.yaml): the overrides that set a run apart
_OmegaConf.register_new_resolver("recsys_run_name", _run_name, replace=True)

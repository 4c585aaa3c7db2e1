"""``recsys-sweep hparams_search=<name>``: an Optuna search over ``recsys-train`` runs.

The study lives in ``<sweep_dir>/study.db`` (SQLite) and every trial in
``<sweep_dir>/trial_<number>/``, a complete run directory. Running the same command again
resumes: finished trials (complete or pruned) are kept, a trial that was killed is failed
(once its heartbeat is ``grace_period`` seconds old) and run again with its parameters, and
the sweep stops when ``n_trials`` trials have finished. Each trial reports the validation
value of ``metric`` after every validation epoch, so the pruner can stop poor trials early.

With ``n_jobs`` > 1 the trials run in that many worker processes (spawned, not forked) that
share the study: each takes the next trial from the storage, the CPU threads are divided
among them, and each worker gets its own GPU (round robin) where GPUs exist.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import warnings
from pathlib import Path

import hydra
import lightning as L
import optuna
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from recsys.cli import user_errors
from recsys.config import CONFIG_DIR, compose_run_config
from recsys.errors import RecsysError
from recsys.files import write_atomically, write_text
from recsys.plots import save_figure, sweep_figures
from recsys.runs.loggers import log_run
from recsys.runs.trials import TrialSeededSampler, fail_dead_trials

log = logging.getLogger(__name__)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class OptunaPruning(L.Callback):
    """Reports ``monitor`` to an Optuna trial after each validation epoch (step = epoch) and
    stops the run with ``optuna.TrialPruned`` when the trial's pruner says so, first logging
    ``hparams`` with the last value (and ``pruned`` = 1) so that TensorBoard's HParams tab
    lists pruned trials too."""

    def __init__(self, trial: optuna.trial.Trial, monitor: str, hparams: dict) -> None:
        self.trial, self.monitor, self.hparams = trial, monitor, hparams

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            metrics = {self.monitor: value, "pruned": 1.0}
            log_run(trainer.loggers, self.hparams, metrics, trainer.global_step)
            raise optuna.TrialPruned(f"epoch {trainer.current_epoch}: {self.monitor} {value:.4f}")


def suggest(trial: optuna.trial.Trial, name: str, spec: dict):
    """One parameter from its search-space entry: ``{type: float|int, low, high, log, step}``
    or ``{type: categorical, choices: [...]}``."""
    kind = spec.get("type")
    if kind == "float":
        return trial.suggest_float(
            name, spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step")
        )
    if kind == "int":
        return trial.suggest_int(
            name, spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step", 1)
        )
    if kind == "categorical":
        return trial.suggest_categorical(name, list(spec["choices"]))
    raise RecsysError(
        f"hparams_search.params.{name}: type must be float, int or categorical, got {kind!r}"
    )


def search_path(config_dirs: list[str]) -> list[str]:
    """The override that adds ``config_dirs`` to Hydra's config search path (as
    ``--config-dir`` does for ``recsys-train``); none for no folders."""
    if not config_dirs:
        return []
    quoted = ",".join(f"'file://{Path(d).resolve()}'" for d in config_dirs)
    return [f"hydra.searchpath=[{quoted}]"]


def split_config_dirs(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(config folders, other arguments)`` of a command line with ``--config-dir DIR``,
    ``--config-dir=DIR`` or ``-cd DIR`` (as Hydra's apps take them)."""
    dirs, rest, args = [], [], iter(argv)
    for arg in args:
        if arg in ("--config-dir", "-cd"):
            value = next(args, None)
            if value is None:
                raise RecsysError(f"{arg} needs a folder: recsys-sweep {arg} my_configs ...")
            dirs.append(value)
        elif arg.startswith("--config-dir="):
            dirs.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    for d in dirs:
        if not Path(d).is_dir():
            raise RecsysError(f"--config-dir {d}: no such folder")
    return dirs, rest


def sweep_config(overrides: list[str], config_dirs: list[str] = ()) -> DictConfig:
    """``configs/sweep.yaml`` with the command line's ``overrides``, ``config_dirs`` searched
    too (for search spaces, and for each trial's configs)."""
    dirs = [str(Path(d).resolve()) for d in config_dirs]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("sweep", overrides=[*overrides, *search_path(dirs)])
    with open_dict(cfg):
        cfg.config_dirs = dirs
    if cfg.get("hparams_search") is None:
        raise RecsysError("choose a search space: recsys-sweep hparams_search=<name> "
                          "(configs/hparams_search/)")  # fmt: skip
    return cfg


def open_study(cfg: DictConfig) -> optuna.Study:
    """Create or load the study of ``cfg`` (SQLite in ``sweep_dir``), its sampler seeded per
    trial (``TrialSeededSampler``: workers, resumed and concurrent sweeps draw distinct
    points)."""
    search = cfg.hparams_search
    sweep_dir = Path(cfg.sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the heartbeat API is "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{sweep_dir / 'study.db'}",
            engine_kwargs={"connect_args": {"timeout": 120}},  # workers wait for each other
            heartbeat_interval=cfg.heartbeat_interval,
            grace_period=cfg.grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )
    return optuna.create_study(
        study_name=search.name,
        storage=storage,
        direction=search.direction,
        sampler=TrialSeededSampler(OmegaConf.to_container(search.sampler)),
        pruner=hydra.utils.instantiate(search.pruner),
        load_if_exists=True,
    )


def run_sweep(cfg: DictConfig) -> optuna.Study:
    """Create or load the study of ``cfg`` and run trials (in ``n_jobs`` processes) until
    ``n_trials`` have finished."""
    search = cfg.hparams_search
    n_jobs = int(cfg.get("n_jobs", 1))
    if n_jobs < 1:
        raise RecsysError(f"n_jobs must be at least 1, got {n_jobs}")
    study = open_study(cfg)
    fail_dead_trials(study)  # killed on this machine: at once, not after the grace period
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    log.info("study %s in %s: %d of %d trials finished", search.name, cfg.sweep_dir, done,
             search.n_trials)  # fmt: skip
    if done < search.n_trials:
        if n_jobs == 1:
            optimize(cfg, study)
        else:
            run_workers(cfg, n_jobs)
    write_summary(study, Path(cfg.sweep_dir), cfg.hparams_search.metric)
    return study


def optimize(cfg: DictConfig, study: optuna.Study, worker: int | None = None) -> None:
    """Run trials of ``study`` in this process until ``n_trials`` have finished."""
    from recsys.runs.fit import hparams_of, train

    search, sweep_dir = cfg.hparams_search, Path(cfg.sweep_dir)
    base = [
        *search_path(list(cfg.get("config_dirs") or [])),
        *search.train_overrides,
        f"optimized_metric={search.metric}",
    ]

    def objective(trial: optuna.trial.Trial) -> float:
        params = {name: suggest(trial, name, spec) for name, spec in search.params.items()}
        run_dir = sweep_dir / f"trial_{trial.number:03d}"
        trial.set_user_attr("run_dir", str(run_dir))
        if worker is not None:
            trial.set_user_attr("worker", worker)
        overrides = [*base, *(f"{k}={v}" for k, v in params.items())]
        log.info("trial %d: %s", trial.number, " ".join(overrides[len(base) :]))
        run_cfg = compose_run_config("train", overrides, run_dir)
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        write_text(run_dir / ".hydra" / "config.yaml", OmegaConf.to_yaml(run_cfg, resolve=True))
        write_text(run_dir / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(overrides))
        searched = [f"{k}={v}" for k, v in params.items()]
        pruning = OptunaPruning(trial, search.metric, hparams_of(run_cfg, searched))
        try:
            value, metrics = train(run_cfg, callbacks=[pruning], overrides=searched)
        except optuna.TrialPruned as pruned:
            log.info("trial %d: pruned at %s", trial.number, pruned)
            raise
        if value is None:
            raise RecsysError(f"trial {trial.number} did not compute {search.metric}")
        for name, v in metrics.items():
            trial.set_user_attr(name, v)
        log.info("trial %d: %s = %.6f", trial.number, search.metric, value)
        return value

    # a numerical failure (e.g. a loss that diverged at these parameters) fails that trial
    # only; any other error stops the sweep, since it would repeat in every trial
    study.optimize(
        objective,
        callbacks=[_stop_at(search.n_trials, MAX_FAILURES_IN_A_ROW)],
        gc_after_trial=True,
        catch=(FloatingPointError,),
    )


MAX_FAILURES_IN_A_ROW = 5


def _stop_at(n_trials: int, max_failures: int):
    """A callback that stops this process once the finished trials and those running
    elsewhere (other workers) make ``n_trials`` (so that parallel workers do not overshoot),
    or after ``max_failures`` failed trials in a row."""
    failures = 0

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal failures
        failures = failures + 1 if trial.state == optuna.trial.TrialState.FAIL else 0
        if failures >= max_failures:
            log.error("%d trials failed in a row: stopping the sweep (see sweep.log)", failures)
            study.stop()
        states = (*FINISHED, optuna.trial.TrialState.RUNNING)
        if len(study.get_trials(deepcopy=False, states=states)) >= n_trials:
            study.stop()

    return callback


def run_workers(cfg: DictConfig, n_jobs: int) -> None:
    """``n_jobs`` spawned worker processes on the study; raises if one of them failed."""
    import torch

    gpus = torch.cuda.device_count()
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    plain = OmegaConf.to_container(cfg)  # unresolved: paths need Hydra's runtime, but
    plain["sweep_dir"] = str(cfg.sweep_dir)  # the workers only need the sweep's own keys
    log.info("%d workers, %d CPU threads each%s", n_jobs, threads,
             f", GPUs round robin over {gpus}" if gpus else "")  # fmt: skip
    context = multiprocessing.get_context("spawn")  # numba's OpenMP layer is not fork-safe
    procs = [
        context.Process(target=_worker, args=(plain, i, threads, i % gpus if gpus else None))
        for i in range(n_jobs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [i for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise RecsysError(
            f"sweep workers {failed} failed (exit codes "
            f"{[procs[i].exitcode for i in failed]}); see {cfg.sweep_dir}/sweep.log, then run "
            "the same command again to resume"
        )


def _worker(plain: dict, index: int, threads: int, gpu: int | None) -> None:
    """One worker process: ends with its parent, takes its share of the CPU (and its GPU),
    logs to the sweep's log, and runs trials until the study has enough."""
    if sys.platform.startswith("linux"):  # die with the parent, even on SIGKILL
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.environ["NUMBA_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    torch.set_num_threads(threads)
    cfg = OmegaConf.create(plain)
    _setup_logging(Path(cfg.sweep_dir), f"worker {index}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optimize(cfg, open_study(cfg), worker=index)


def _setup_logging(sweep_dir: Path, who: str = "") -> None:
    """Log to stderr and to ``sweep_dir/sweep.log`` (appended), tagged with ``who``."""
    tag = f"[{who}]" if who else ""
    logging.basicConfig(
        level=logging.INFO,
        format=f"[%(asctime)s][%(name)s][%(levelname)s]{tag} - %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(sweep_dir / "sweep.log")],
        force=True,
    )


def importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) of the finished trials; empty where they are
    not defined (fewer than two finished trials, or a parameter that never varied)."""
    try:
        return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):
        return {}


def write_summary(study: optuna.Study, sweep_dir: Path, metric: str) -> None:
    """``trials.csv`` (one row per trial) in the sweep folder with its figures beside it
    (``plots.sweep_figures``), and the best trial in the log."""
    frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs"))
    write_atomically(sweep_dir / "trials.csv", lambda tmp: frame.to_csv(tmp, index=False))
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    for name, fig in sweep_figures(frame, metric, importances(study), maximize).items():
        save_figure(fig, sweep_dir / name)
    if finished:
        best = study.best_trial
        log.info("best trial %d: value %.6f, %s; run %s", best.number, best.value,
                 best.params, best.user_attrs.get("run_dir"))  # fmt: skip
    log.info("%d trials in %s (trials.csv); TensorBoard: tensorboard --logdir %s",
             len(frame), sweep_dir, sweep_dir)  # fmt: skip


@user_errors
def main(argv: list[str] | None = None) -> None:
    config_dirs, overrides = split_config_dirs(list(sys.argv[1:] if argv is None else argv))
    cfg = sweep_config(overrides, config_dirs)
    Path(cfg.sweep_dir).mkdir(parents=True, exist_ok=True)
    _setup_logging(Path(cfg.sweep_dir))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_sweep(cfg)


if __name__ == "__main__":
    main()

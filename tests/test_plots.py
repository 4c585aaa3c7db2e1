"""Figures: recsys-compare --plot, a sweep's figures beside trials.csv, a run's images in
TensorBoard; each checked as a file of its content type and against the numbers drawn."""

from __future__ import annotations

import io

import numpy as np
import optuna
import pandas as pd
import pytest
from helpers import SMALL_DATA, compose_config
from matplotlib.image import imread
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import recsys.compare as C
from recsys.plots import comparison_figure, popularity_figure, sweep_figures
from recsys.runs.fit import train
from recsys.sweep import write_summary

PNG = b"\x89PNG\r\n\x1a\n"


def write_run(path, users, values):
    path.mkdir(parents=True)
    pd.DataFrame({"user": users, "n_test": 3, "ndcg@20": values, "recall@20": values / 2}
                 ).to_parquet(path / "per_user_metrics.parquet", index=False)  # fmt: skip


@pytest.fixture
def three_runs(tmp_path):
    rng = np.random.default_rng(0)
    users = np.array([f"u{i}" for i in range(200)])
    base = rng.uniform(0, 1, 200)
    write_run(tmp_path / "base", users, base)
    write_run(tmp_path / "better", users, base + 0.1 + rng.normal(0, 0.05, 200))
    write_run(tmp_path / "worse", users, base - 0.05 + rng.normal(0, 0.05, 200))
    return [str(tmp_path / n) for n in ("base", "better", "worse")]


def test_compare_plot_files(three_runs, tmp_path, capsys):
    for name, magic in (("out.png", PNG), ("out.svg", b"<?xml"), ("out.pdf", b"%PDF")):
        C.main([*three_runs, "--resamples", "200", "--plot", str(tmp_path / name)])
        assert (tmp_path / name).read_bytes().startswith(magic), name
    pixels = imread(tmp_path / "out.png")
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 400
    with pytest.raises(SystemExit) as e:
        C.main([*three_runs, "--plot", str(tmp_path / "out.jpg")])
    assert e.value.code == 2 and "--plot" in capsys.readouterr().err
    assert not (tmp_path / "out.jpg").exists()


def test_forest_plot_draws_the_table(three_runs):
    table = C.compare(C.load_runs(three_runs), "base", ["ndcg@20", "recall@20"], resamples=200)
    fig = comparison_figure(table, "base", 0.95)
    axes = fig.axes
    assert len(axes) == 4  # two metrics, two panels each
    for row, metric in enumerate(["ndcg@20", "recall@20"]):
        rows = table[table.metric == metric].set_index("run")
        means = np.asarray(axes[2 * row].lines[0].get_xdata(), dtype=float)
        np.testing.assert_allclose(means, rows.loc[["base", "better", "worse"], "mean"])
        diffs = np.asarray(axes[2 * row + 1].lines[0].get_xdata(), dtype=float)
        np.testing.assert_allclose(diffs, rows.loc[["better", "worse"], "diff"])
        assert rows.loc["better", "diff"] > 0 > rows.loc["worse", "diff"]


def test_sweep_figures_beside_trials_csv(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(lambda t: -((t.suggest_float("lr", 0, 1) - 0.3) ** 2)
                   + 0.01 * t.suggest_int("factors", 8, 64)
                   + (0.1 if t.suggest_categorical("loss", ["bpr", "wmf"]) == "bpr" else 0),
                   n_trials=12)  # fmt: skip
    write_summary(study, tmp_path, "val/ndcg@20")
    for name in ("optimization_history.png", "param_importances.png",
                 "parallel_coordinates.png"):  # fmt: skip
        assert (tmp_path / name).read_bytes().startswith(PNG), name
    trials = pd.read_csv(tmp_path / "trials.csv")
    figures = sweep_figures(trials, "val/ndcg@20", {"lr": 0.7, "factors": 0.3})
    history = figures["optimization_history.png"].axes[0]
    np.testing.assert_allclose(history.lines[1].get_ydata(), trials["value"].cummax())
    assert len(figures["parallel_coordinates.png"].axes[0].lines) == 12


def test_popularity_figure_counts_every_slot():
    counts = np.array([100, 10, 1, 0])
    fig = popularity_figure(counts, np.array([[0, 0], [1, -1]]))
    catalogue, recommended = fig.axes[0].lines
    np.testing.assert_allclose(catalogue.get_xdata(), [1, 2, 11, 101])
    np.testing.assert_allclose(recommended.get_xdata(), [11, 101, 101])  # the -1 slot left out
    np.testing.assert_allclose(recommended.get_ydata(), [1 / 3, 2 / 3, 1])


def test_run_images_in_tensorboard(tmp_path):
    overrides = [*SMALL_DATA, "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                 "figures=true"]  # fmt: skip
    train(compose_config("train", overrides, tmp_path))
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    tags = set(acc.Tags()["images"])
    assert {"figures/test_metrics_at_k", "figures/recommended_popularity"} <= tags
    for tag in tags:
        image = acc.Images(tag)[-1]
        assert image.encoded_image_string.startswith(PNG)
        pixels = imread(io.BytesIO(image.encoded_image_string), format="png")
        assert pixels.shape[:2] == (image.height, image.width) and pixels.std() > 0

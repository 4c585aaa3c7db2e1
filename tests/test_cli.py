"""The console scripts as a user runs them: outputs on disk, and clear errors for bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import run_cli as run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

pytestmark = pytest.mark.slow  # console scripts in subprocesses


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``recsys-train`` with no arguments, in an empty folder."""
    cwd = tmp_path_factory.mktemp("fresh")
    proc = run("recsys-train", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (cwd / "logs" / "train" / "runs").iterdir()
    return cwd, run_dir, proc


def test_default_run_leaves_complete_run_directory(default_run):
    _, run_dir, proc = default_run
    assert "test/ndcg@20" in proc.stdout + proc.stderr
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["model"]["_target_"] == "recsys.models.ALS"
    assert config["data"]["_target_"] == "recsys.data.datasets.SyntheticDataset"
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"test/recall@20", "test/ndcg@20", "test/recall_norm@20"}
    assert (run_dir / "per_user_metrics.parquet").stat().st_size > 0


def test_recommend_cli(default_run):
    cwd, run_dir, _ = default_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    ok = run("recsys-recommend", f"ckpt_path={ckpt}", "users=[1,2]", "k=4", cwd=cwd)
    assert ok.returncode == 0, ok.stderr
    lines = [json.loads(line) for line in ok.stdout.splitlines()]
    assert [r["user"] for r in lines] == [1, 2] and all(len(r["items"]) == 4 for r in lines)
    bad = run("recsys-recommend", f"ckpt_path={ckpt}", "users=[1,999999]", cwd=cwd)
    assert bad.returncode == 2
    assert "unknown user id(s) 999999" in bad.stderr and "Traceback" not in bad.stderr
    new = run("recsys-recommend", f"ckpt_path={ckpt}", "history=[3,5,8]", "k=6", cwd=cwd)
    assert new.returncode == 0, new.stderr
    (line,) = [json.loads(x) for x in new.stdout.splitlines()]
    assert line["history"] == [3, 5, 8] and len(line["items"]) == 6
    assert not {3, 5, 8} & set(line["items"])


def test_missing_data_folder_is_one_clear_line(tmp_path):
    proc = run(
        "recsys-train", "data=ml100k", cwd=tmp_path, env={"RECSYS_DATA_DIR": str(tmp_path / "no")}
    )
    assert proc.returncode == 2
    assert f"{tmp_path / 'no' / 'ml-100k'} does not exist" in proc.stderr
    assert "RECSYS_DATA_DIR" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model=hybrid_cf"], "model=hybrid_cf needs model.collaborative="),
        (
            ["model=hybrid_cf", "model.collaborative=nope.ckpt"],
            "checkpoint nope.ckpt does not exist",
        ),
        (["model.solver=qr"], "model.solver must be one of ('cg', 'cholesky'), got 'qr'"),
    ],
)
def test_a_bad_model_argument_is_one_clear_line(args, message, tmp_path):
    """Errors raised while Hydra builds the model (which it wraps) reach the user unwrapped."""
    proc = run("recsys-train", *args, "data.n_users=100", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_malformed_line_and_empty_split_via_cli(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    rows = [f"{u}\t{i}\t4\t{1000 + u * 50 + i}" for u in range(1, 6) for i in range(1, 4)]
    rows[7] = "3\t2\t4"
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    env = {"RECSYS_DATA_DIR": str(tmp_path)}
    proc = run("recsys-train", "data=ml100k", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert f"{folder / 'u.data'}:8: malformed line" in proc.stderr
    assert "Traceback" not in proc.stderr

    del rows[7]
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    proc = run("recsys-train", "data=ml100k", "split.test_ratio=0", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "left no test interactions" in proc.stderr and "Traceback" not in proc.stderr


def test_own_event_log_from_a_config_file_the_user_writes(tmp_path):
    """No code: a CSV of the user's, a data config next to it, ``--config-dir``."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(80):
        liked = rng.choice(60, size=12, replace=False)
        t = 1_700_000_000 + u * 100_000
        for item in liked:
            t += int(rng.integers(5, 4000))
            action = rng.choice(["view", "view", "like", "share"])
            when = pd.Timestamp(t, unit="s", tz="UTC").isoformat()
            rows.append(
                {"visitor": f"reader{u}", "article": f"art{item}", "when": when, "action": action}
            )
    log = tmp_path / "clicks.csv"
    pd.DataFrame(rows).to_csv(log, index=False)
    n_share = sum(r["action"] == "share" for r in rows)

    conf = tmp_path / "conf" / "data"
    conf.mkdir(parents=True)
    (conf / "my_log.yaml").write_text(
        "_target_: recsys.data.datasets.EventLog\n"
        "_convert_: all\n"
        f"path: {log}\n"
        "columns: {user: visitor, item: article, timestamp: when, event_type: action}\n"
        "rules: {event_weights: {view: 1, like: 5}, strength: weighted}\n"
    )
    proc = run(
        "recsys-train",
        f"--config-dir={tmp_path / 'conf'}",
        "data=my_log",
        "trainer.max_epochs=2",
        "model.factors=8",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"dropped {n_share} events: event types without a weight: {{'share': {n_share}}}" in (
        proc.stdout + proc.stderr
    )
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= metrics["test/ndcg@20"] <= 1
    per_user = pd.read_parquet(run_dir / "per_user_metrics.parquet")
    assert per_user["user"].str.startswith("reader").all()


def test_grid_multirun_runs_every_combination(tmp_path):
    """``recsys-train -m``: one run directory per combination, each complete."""
    proc = run(
        "recsys-train", "-m", "model.factors=4,8", "trainer.max_epochs=2",
        "data.n_users=200", "data.n_items=100", "trainer.enable_progress_bar=false",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    factors = []
    for job in sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()):
        assert (job / "metrics.json").is_file()
        factors.append(
            yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["model"]["factors"]
        )
    assert factors == [4, 8]
    # the summary table: a row per job, its overrides, the best validation and test metrics
    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["job"]) == [0, 1] and list(summary["status"]) == ["done", "done"]
    assert ["model.factors=4" in o for o in summary["overrides"]] == [True, False]
    for job, row in summary.iterrows():
        on_disk = json.loads((sweep / str(job) / "metrics.json").read_text())
        assert row["test/ndcg@20"] == pytest.approx(on_disk["test/ndcg@20"])
        assert row["val/ndcg@20"] == pytest.approx(on_disk["val/ndcg@20"])
    # TensorBoard runs named by what differs, HParams led by the model and the swept value
    for job, value in ((0, 4), (1, 8)):
        (events,) = (sweep / str(job) / "tensorboard").iterdir()
        assert events.name == f"model.factors={value}"
        acc = EventAccumulator(str(events))
        acc.Reload()
        content = acc.PluginTagToContent("hparams")
        experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
        keys = [h.name for h in experiment.hparam_infos]  # the HParams table's column order
        assert keys[:2] == ["model", "model/factors"], keys[:5]
        assert not [k for k in keys if "_target_" in k]
        start = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        assert start.session_start_info.hparams["model"].string_value == "als"


@pytest.mark.parametrize(
    ("script", "groups"),
    [("recsys-train", True), ("recsys-recommend", False), ("recsys-abtest", False)],
)  # fmt: skip
def test_help_shows_what_applies(script, groups, tmp_path):
    """Each script's --help: its own description first, and the training config groups only
    where it composes them."""
    proc = run(script, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(script), proc.stdout[:300]
    assert "powered by Hydra" not in proc.stdout
    lists_models = re.search(r"^model: als, bpr", proc.stdout, re.MULTILINE) is not None
    assert lists_models == groups
    assert "docs/reference/configs.md" in proc.stdout

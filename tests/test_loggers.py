"""recsys-train with each experiment tracker (logger=csv, mlflow, wandb offline, two at
once): the run completes, and the hyperparameters and metrics are read back through the
tracker's own API or files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import SMALL_DATA, run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recsys.runs.loggers import mlflow_key

pytestmark = pytest.mark.slow
ARGS = [*SMALL_DATA, "trainer.max_epochs=2", "data_cache=false", "model.factors=12"]


def train(tmp_path: Path, logger: str) -> Path:
    proc = run_cli("recsys-train", f"logger={logger}", *ARGS, cwd=tmp_path,
                   env={"WANDB_SILENT": "true"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    return run


def final_metrics(run: Path) -> dict:
    on_disk = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in on_disk.items() if k.startswith("test/")}


def test_mlflow_keys():
    assert mlflow_key("test/ndcg@20/hist_10+") == "test/ndcg_at_20/hist_10plus"
    assert mlflow_key("a b-c.d/e_f") == "a b-c.d/e_f"
    assert mlflow_key("x:y") == "x_y"


def test_csv_logger_alone(tmp_path):
    run = train(tmp_path, "csv")
    assert not (run / "tensorboard").exists()
    hparams = yaml.safe_load((run / "csv" / "hparams.yaml").read_text())
    assert hparams["model/factors"] == 12
    last = pd.read_csv(run / "csv" / "metrics.csv").dropna(subset=["test/ndcg@20"]).iloc[-1]
    assert last["test/ndcg@20"] == pytest.approx(final_metrics(run)["test/ndcg@20"], rel=1e-12)


def test_mlflow_logger(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    run = train(tmp_path, "mlflow")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'logs' / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("recsys").experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["model/factors"] == "12"
    assert "logger=mlflow" in found.info.run_name  # named by the run's overrides
    for name, value in final_metrics(run).items():
        assert found.data.metrics[mlflow_key(name)] == pytest.approx(value, rel=1e-12), name
    history = client.get_metric_history(found.info.run_id, mlflow_key("val/ndcg@20"))
    assert len(history) == 2


def wandb_records(path: Path):
    """The protobuf records of a W&B run file (``run-*.wandb``): a 7-byte header, then a
    LevelDB-style log of 32 KiB blocks whose records are cut into FULL/FIRST/MIDDLE/LAST
    pieces, each with a 7-byte header (crc32, uint16 length, uint8 type)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, block, pieces = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header: zeros
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        piece, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        pieces = piece if kind in (1, 2) else pieces + piece
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pieces)
            yield record


def test_wandb_logger_offline(tmp_path):
    pytest.importorskip("wandb")
    run = train(tmp_path, "wandb")
    (run_file,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
    config, logged = {}, {}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            for item in record.config.update:
                config[item.key] = json.loads(item.value_json)
        elif kind == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                logged.setdefault(key, []).append(json.loads(item.value_json))
    assert config["model/factors"] == 12 and config["data/n_users"] == 300
    for name, value in final_metrics(run).items():
        assert logged[name][-1] == pytest.approx(value, rel=1e-6), name
    assert len(logged["val/ndcg@20"]) == 2


def test_two_loggers_at_once_csv_and_tensorboard(tmp_path):
    run = train(tmp_path, "[tensorboard,csv]")
    hparams = yaml.safe_load((run / "csv" / "hparams.yaml").read_text())
    assert hparams["model/factors"] == 12 and hparams["data/n_users"] == 300
    assert list(hparams)[:2] == ["model", "data/n_users"] and hparams["model"] == "als"
    assert not [k for k in hparams if k.endswith("_target_")]
    rows = pd.read_csv(run / "csv" / "metrics.csv")
    last = rows.dropna(subset=["test/ndcg@20"]).iloc[-1]
    for name, value in final_metrics(run).items():
        assert last[name] == pytest.approx(value, rel=1e-12), name
    assert rows["val/ndcg@20"].notna().sum() == 2  # one per epoch
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    test_ndcg = final_metrics(run)["test/ndcg@20"]
    assert acc.Scalars("test/ndcg@20")[-1].value == pytest.approx(test_ndcg, rel=1e-6)
    hparams = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    assert b"model/factors" in hparams

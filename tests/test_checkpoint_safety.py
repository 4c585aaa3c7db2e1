"""Checkpoints from someone else run nothing: a class outside the trusted set, a stored config
naming a standard-library function, a nested model spec naming a process-spawning function,
Lightning's ``_instantiator``; and a foreign or old file is one clear line."""

from __future__ import annotations

import hydra
import pytest
import torch
from helpers import SMALL_DATA, compose_config, one_line, run_main

from recsys.errors import CheckpointError, UntrustedClassError
from recsys.models.checkpoint import load_model
from recsys.registry import check_targets, resolve_class, trusting
from recsys.runs.fit import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small ALS run: (its folder, its last checkpoint loaded as a dict)."""
    out = tmp_path_factory.mktemp("als")
    cfg = compose_config(
        "train", [*SMALL_DATA, "trainer.max_epochs=1", "trainer.enable_progress_bar=false"], out
    )
    train(cfg)
    path = out / "checkpoints" / "last.ckpt"
    return out, path


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """A console script run in process, in ``tmp_path``: ``(exit status, stderr)``."""
    monkeypatch.chdir(tmp_path)
    return lambda script, *args: run_main(script, list(args), capsys)[:2]


def crafted(trained, tmp_path, change) -> str:
    """A copy of the trained checkpoint with ``change(ckpt)`` applied, saved in tmp_path."""
    _, path = trained
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    out = tmp_path / "crafted.ckpt"
    torch.save(ckpt, out)
    return str(out)


def test_a_class_outside_the_trusted_set_is_refused(trained, tmp_path, cli):

    def to_popen(ckpt):
        ckpt["recsys"]["model_class"] = "subprocess.Popen"

    path = crafted(trained, tmp_path, to_popen)
    with pytest.raises(UntrustedClassError, match="subprocess.Popen"):
        load_model(path)
    line = one_line(*cli("recsys-recommend", f"ckpt_path={path}", "users=[1]"))
    assert "model class 'subprocess.Popen' is refused" in line


def test_imported_names_and_functions_inside_recsys_are_refused_too():
    with pytest.raises(UntrustedClassError, match="not a class of its package"):
        resolve_class("recsys.data.cache.Path")  # pathlib.Path, imported there
    with pytest.raises(UntrustedClassError, match="not a class of its package"):
        resolve_class("recsys.data.download.main")  # a function
    assert resolve_class("recsys.models.ALS").__name__ == "ALS"
    with pytest.raises(UntrustedClassError, match="refused"):
        resolve_class("collections.OrderedDict")
    with trusting(["collections"]):
        assert resolve_class("collections.OrderedDict").__name__ == "OrderedDict"


def test_a_stored_config_that_would_write_a_file_runs_nothing(trained, tmp_path, cli):
    target = tmp_path / "written-by-the-checkpoint"
    _, source = trained
    spec = {"_target_": "shutil.copyfile", "src": str(source), "dst": str(target)}
    hydra.utils.instantiate(spec)  # what such a config does when instantiated blindly
    assert target.is_file()
    target.unlink()
    with pytest.raises(UntrustedClassError, match="shutil.copyfile"):
        check_targets({"data": {"nested": [spec]}}, "stored config")

    def with_spec(ckpt):
        ckpt["recsys"]["config"]["data"]["data"] = spec

    path = crafted(trained, tmp_path, with_spec)
    line = one_line(*cli("recsys-eval", f"ckpt_path={path}"))
    assert "'shutil.copyfile' is refused" in line
    assert not target.exists()


def test_a_nested_model_spec_naming_a_process_spawner_runs_nothing(trained, tmp_path, cli):
    target = tmp_path / "touched-by-the-checkpoint"

    def to_hybrid(ckpt):
        ckpt["recsys"]["model_class"] = "recsys.models.hybrid.Hybrid"
        h = ckpt["hyper_parameters"]
        ckpt["hyper_parameters"] = {
            "n_users": h["n_users"],
            "n_items": h["n_items"],
            "collaborative_model": {
                "class": "subprocess.Popen",
                "hparams": {"args": ["touch", str(target)]},
            },
        }

    path = crafted(trained, tmp_path, to_hybrid)
    line = one_line(*cli("recsys-recommend", f"ckpt_path={path}", "users=[1]"))
    assert "'subprocess.Popen' is refused" in line
    assert not target.exists()


def test_a_stored_confidence_naming_another_class_is_refused(trained, tmp_path, cli):

    def to_copy(ckpt):
        ckpt["recsys"]["confidence"]["class"] = "shutil.copyfile"

    path = crafted(trained, tmp_path, to_copy)
    line = one_line(*cli("recsys-recommend", f"ckpt_path={path}", "history=[3,5]"))
    assert "confidence 'shutil.copyfile' is refused" in line


def test_lightnings_instantiator_is_not_followed(trained, tmp_path):
    def with_instantiator(ckpt):
        ckpt["hyper_parameters"]["_instantiator"] = "os.system"

    path = crafted(trained, tmp_path, with_instantiator)
    with pytest.raises(CheckpointError, match="does not take: _instantiator"):
        load_model(path)


def test_foreign_old_and_mismatched_files_are_one_line(trained, tmp_path, cli):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        load_model(text)

    def old_format(ckpt):
        del ckpt["recsys"]["format"]

    with pytest.raises(CheckpointError, match="format 1, this recsys reads format 2"):
        load_model(crafted(trained, tmp_path, old_format))

    def other_shape(ckpt):
        ckpt["state_dict"]["user_factors"] = ckpt["state_dict"]["user_factors"][:, :3]

    with pytest.raises(CheckpointError, match="does not fit its model class ALS"):
        load_model(crafted(trained, tmp_path, other_shape))

    def other_class(ckpt):
        ckpt["recsys"]["model_class"] = "recsys.models.EASE"

    with pytest.raises(CheckpointError, match="EASE does not take"):
        load_model(crafted(trained, tmp_path, other_class))
    line = one_line(*cli("recsys-recommend", f"ckpt_path={text}", "users=[1]"))
    assert "is not a readable checkpoint" in line

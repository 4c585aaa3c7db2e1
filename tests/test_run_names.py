"""The overrides that name a run: in a multirun only the swept keys, as the command line says."""

from recsys.run_names import _swept_keys, run_name


def test_swept_keys_from_the_command_line():
    args = ["-m", "--config-dir", "my_configs", "model=als,bpr", "seed=1",
            "model.factors=range(8,33,8)", "+trainer.x=choice(1,2)", "data.path=a.csv"]  # fmt: skip
    assert _swept_keys(args) == {"model", "model.factors", "trainer.x"}


def test_a_given_name_wins_and_is_one_folder(monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # outside any Hydra job
    assert run_name("my run/2", "tensorboard") == "my run_2"
    assert run_name("ab", "run") == "ab"
    assert run_name(None, "tensorboard") == ""  # outside a Hydra job: tensorboard/ itself
    assert run_name(None, "run") is None  # the tracker picks one

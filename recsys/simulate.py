"""``recsys-simulate``: an A/B test of article blocks on a simulated news site, closed loop
(``recsys.simulation``): what each block makes readers do, with intervals."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR
from recsys.simulation.run import simulate


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="simulate")
@user_errors
def main(cfg: DictConfig) -> None:
    simulate(cfg)


if __name__ == "__main__":
    main()

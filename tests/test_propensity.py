"""Item propensities: formulas, clipping, the power-law fit, and their wiring from config."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SMALL_DATA, compose_config

from recsys.data.datamodule import RecsysDataModule
from recsys.data.interactions import Interactions
from recsys.data.propensity import (
    NoPropensity,
    PopularityPropensity,
    PowerLawPropensity,
    fit_power_law,
    item_counts,
)


def small_train() -> Interactions:
    # item 0: 4 users, item 1: 2, item 2: 1, item 3: none
    users = np.array([0, 1, 2, 3, 0, 1, 2])
    items = np.array([0, 0, 0, 0, 1, 1, 2])
    return Interactions.from_arrays(users, items, user_ids=np.arange(4), item_ids=np.arange(4))


def test_popularity_propensity_formula_and_floor():
    theta = PopularityPropensity(eta=0.5, floor=0.3).fit(small_train()).theta
    np.testing.assert_allclose(theta, [1.0, 0.5**0.5, 0.5, 0.3])  # item 3: 0 -> floor
    theta = PopularityPropensity(eta=2.0, floor=1e-3).fit(small_train()).theta
    np.testing.assert_allclose(theta, [1.0, 0.25, 1 / 16, 1e-3])
    assert (NoPropensity().fit(small_train()).theta == 1).all()
    with pytest.raises(ValueError, match="floor"):
        PopularityPropensity(floor=0.0)


def test_power_law_fit_recovers_a_planted_exponent():
    rng = np.random.default_rng(0)
    gamma, n_min = 2.3, 5
    # continuous Pareto above n_min - 1/2, rounded: the discrete approximation the MLE assumes
    x = (n_min - 0.5) * (1 - rng.random(200_000)) ** (-1 / (gamma - 1))
    counts = np.round(x)
    assert fit_power_law(counts, n_min) == pytest.approx(gamma, abs=0.03)


def test_power_law_propensity_uses_the_fitted_exponent():
    train = small_train()
    p = PowerLawPropensity(n_min=1, floor=1e-3).fit(train)
    counts = item_counts(train)
    want = np.maximum((counts / 4) ** ((p.gamma + 1) / 2), 1e-3)
    np.testing.assert_allclose(p.theta, want)
    assert p.gamma == pytest.approx(1 + 3 / np.log(np.array([4, 2, 1]) / 0.5).sum())


def test_datamodule_fits_the_propensity_on_the_training_part_only(tmp_path):
    cfg = compose_config("train", [*SMALL_DATA, "propensity=popularity"], tmp_path)
    dm = RecsysDataModule.from_config(cfg)
    counts = np.diff(dm.split.train.matrix.tocsc().indptr).astype(float)
    np.testing.assert_allclose(dm.training_data.item_counts(), counts)
    np.testing.assert_allclose(
        dm.training_data.propensity, np.maximum((counts / counts.max()) ** 0.5, 1e-3)
    )
    test_counts = np.diff(dm.split.test.matrix.tocsc().indptr)
    assert not np.allclose(counts / counts.max(), test_counts / test_counts.max())

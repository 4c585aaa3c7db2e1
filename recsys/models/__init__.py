"""Models: LightningModules sharing ``RecommenderModule``'s interface."""

from recsys.models.als import ALS
from recsys.models.base import RecommenderModule
from recsys.models.popularity import Popularity

__all__ = ["ALS", "Popularity", "RecommenderModule"]

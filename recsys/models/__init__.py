"""Models: LightningModules sharing ``RecommenderModule``'s interface."""

from recsys.models.als import ALS
from recsys.models.base import RecommenderModule
from recsys.models.bpr import BPR
from recsys.models.content import ContentKNN
from recsys.models.hybrid import Hybrid, HybridALS
from recsys.models.most_recent import MostRecent
from recsys.models.neighbors import EASE, ItemKNN
from recsys.models.popularity import Popularity
from recsys.models.wmf import WMF

__all__ = [
    "ALS",
    "BPR",
    "ContentKNN",
    "EASE",
    "Hybrid",
    "HybridALS",
    "ItemKNN",
    "MostRecent",
    "Popularity",
    "RecommenderModule",
    "WMF",
]

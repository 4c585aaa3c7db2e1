"""Models: LightningModules sharing ``RecommenderModule``'s interface."""

from recsys.models.als import ALS
from recsys.models.autoencoders import MultDAE, MultVAE
from recsys.models.base import RecommenderModule
from recsys.models.bpr import BPR
from recsys.models.content import ContentKNN
from recsys.models.graph_filters import BSPM, GFCF
from recsys.models.gru4rec import GRU4Rec
from recsys.models.hybrid import Hybrid, HybridALS
from recsys.models.lightgcn import LightGCN
from recsys.models.most_recent import MostRecent
from recsys.models.neighbors import EASE, ItemKNN
from recsys.models.popularity import Popularity
from recsys.models.sasrec import SASRec
from recsys.models.wmf import WMF

__all__ = [
    "ALS",
    "BPR",
    "BSPM",
    "ContentKNN",
    "EASE",
    "GFCF",
    "GRU4Rec",
    "Hybrid",
    "HybridALS",
    "ItemKNN",
    "LightGCN",
    "MostRecent",
    "MultDAE",
    "MultVAE",
    "Popularity",
    "RecommenderModule",
    "SASRec",
    "WMF",
]

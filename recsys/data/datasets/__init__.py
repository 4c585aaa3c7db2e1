"""Dataset loaders. Each is a small object built from config whose ``load()`` returns
``Interactions``; files are read from under ``paths.data_dir`` (``RECSYS_DATA_DIR``).
Datasets with their own train/test split also have ``load_parts()`` (``split=predefined``)."""

from recsys.data.datasets.coat import Coat
from recsys.data.datasets.ebnerd import EBNeRD
from recsys.data.datasets.eventlog import EventLog
from recsys.data.datasets.gowalla import Gowalla
from recsys.data.datasets.lastfm import LastFM2K
from recsys.data.datasets.movielens import MovieLens20M, MovieLens100K, MovieLensLatestSmall
from recsys.data.datasets.msd import MillionSongDataset
from recsys.data.datasets.publisher_sim import PublisherSimulator
from recsys.data.datasets.synthetic import SyntheticDataset

__all__ = [
    "Coat",
    "EBNeRD",
    "EventLog",
    "Gowalla",
    "LastFM2K",
    "MillionSongDataset",
    "MovieLens20M",
    "MovieLens100K",
    "MovieLensLatestSmall",
    "PublisherSimulator",
    "SyntheticDataset",
]

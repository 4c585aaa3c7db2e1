"""Dataset loaders. Each is a small object built from config whose ``load()`` returns
``Interactions``; files are read from under ``paths.data_dir`` (``RECSYS_DATA_DIR``)."""

from recsys.data.datasets.movielens import MovieLens100K
from recsys.data.datasets.synthetic import SyntheticDataset

__all__ = ["MovieLens100K", "SyntheticDataset"]

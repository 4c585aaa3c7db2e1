"""Data: the Interactions type, dataset loaders, splits, confidence and the LightningDataModule."""

from recsys.data.interactions import Interactions

__all__ = ["Interactions"]

"""Popularity-bias correction: item propensity estimators (``propensity``) and the
inverse-propensity weights that models and evaluators use."""

from recsys.debias.propensity import (
    NoPropensity,
    PopularityPropensity,
    PowerLawPropensity,
    Propensity,
)

__all__ = ["NoPropensity", "PopularityPropensity", "PowerLawPropensity", "Propensity"]

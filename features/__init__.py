"""Sunflower features: raw histories -> point-in-time features, cohorts and labels.

Public API (DESIGN §6): :func:`build_features`, :func:`build_labels`,
:func:`build_cohort`, :func:`run_features_job`; for several calls on the same
data, an explicit :class:`Session` and :func:`get_historical_features`
(:mod:`features.engine`); the catalog (:func:`load_catalog`) and label
configuration (:func:`load_label_config`).
"""

from features.catalog import Catalog, Feature, load_catalog
from features.config import LabelConfig, load_label_config
from features.engine import Session, build_cohort, build_features, get_historical_features
from features.jobs import run_features_job
from features.labels import build_labels

__all__ = [
    "Catalog",
    "Feature",
    "LabelConfig",
    "Session",
    "build_cohort",
    "build_features",
    "build_labels",
    "get_historical_features",
    "load_catalog",
    "load_label_config",
    "run_features_job",
]

"""Sunflower features: raw histories -> point-in-time features, cohorts and labels.

Public API (DESIGN §6): :func:`build_features`, :func:`build_labels`,
:func:`build_cohort`, :func:`run_features_job`; the catalog
(:func:`load_catalog`) and label configuration (:func:`load_label_config`).
"""

from features.catalog import Catalog, Feature, load_catalog
from features.config import LabelConfig, load_label_config
from features.engine import build_cohort, build_features
from features.jobs import run_features_job
from features.labels import build_labels

__all__ = [
    "Catalog",
    "Feature",
    "LabelConfig",
    "build_cohort",
    "build_features",
    "build_labels",
    "load_catalog",
    "load_label_config",
    "run_features_job",
]

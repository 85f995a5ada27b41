"""Models (layer 2): training, temporal evaluation, calibration, fairness, registry, explanations.

Depends on :mod:`features` only; never imports :mod:`serving`.
"""

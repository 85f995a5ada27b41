"""The bottom layer: what every package shares and nothing else owns.

:mod:`common.settings` holds the application-wide settings (``SUNFLOWER_HOME``,
the service database, the MLflow store). It imports no Sunflower package; every
layer (features, models, serving, the CLI) may import it (import-linter).
"""

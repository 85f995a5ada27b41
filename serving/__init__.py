"""Serving (layer 3): the daily scoring job, the API, risk lists, plans, auth and pages.

Loads models only through the MLflow registry; never imports training code.
"""

"""Model monitoring (issue 16): what the champion was trained on, and how it is doing.

Contract: role-named modules, pure functions of frames and the reference
profile; no database, no serving code (serving stores and shows the results).

* :mod:`models.monitoring.reference` — the reference profile computed at
  training time (bin edges and counts per feature, missing and category
  shares, score and band distribution, expected and realised quality on the
  reference dates), aggregates only, logged with the model version;
* :mod:`models.monitoring.drift` — PSI and Jensen–Shannon distance of a day's
  cohort against the reference, per feature, for the score and the bands,
  district-wide and per town;
* :mod:`models.monitoring.realised` — the realised quality of the lists that
  were served, once their label windows have closed (labels from
  :func:`features.build_labels`, the one label rule);
* :mod:`models.monitoring.estimate` — confidence-based performance estimation
  (CBPE) from the calibrated probabilities while the windows are open, and the
  estimate-vs-realised gap once they close;
* :mod:`models.monitoring.verdict` — ok / watch / retrain recommended, with the
  thresholds, their reasons and the evidence.
"""

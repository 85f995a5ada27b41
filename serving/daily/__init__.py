"""The daily scoring job (a room of :mod:`serving`): ``sunflower score --date DATE``.

Contract: :func:`serving.daily.job.score_date` builds the features of the
cohort, computes the alerts (:mod:`serving.daily.alerts`), scores and explains
every person with each champion, renders the rows chunk by chunk
(:mod:`serving.daily.run_rows`) and publishes the run in one transaction
(:mod:`serving.daily.publish`). Imports the shared floor of :mod:`serving`,
never the API or the pages. See docs/serving.md.
"""

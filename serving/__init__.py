"""Serving (layer 3): three rooms over one shared floor.

* :mod:`serving.api` — the HTTP API: the FastAPI routes, the front door that
  answers the hottest requests before FastAPI, the stored-run readers, ad-hoc
  scoring, schemas, errors and request metrics;
* :mod:`serving.daily` — the daily scoring job: features, alerts, scores and
  explanations of a date, rendered and published in one transaction;
* :mod:`serving.web` — the pages for workers and supervisors (built on the
  API's state and operations).

The modules at this level are the floor every room stands on (tables and
migrations, accounts and scope, the audit log, settings, log filtering, bands,
alert and cohort bits, champions, explanation bodies, stored-run queries) and
import no room; :mod:`serving.app` alone sits above the rooms and puts the API
and the pages into one ASGI app. ``.importlinter`` keeps it so.

Loads models only through the champion protocol (:mod:`models.champion`);
never imports training code.
"""

"""The HTTP API under ``/api/v1`` (a room of :mod:`serving`).

Contract: :mod:`serving.api.routes` holds the FastAPI routes, one module per
resource; :mod:`serving.api.front_door` answers the hottest GETs and ad-hoc
scoring before FastAPI, through the same functions of
:mod:`serving.api.readers` the routes call; :mod:`serving.api.state` is the
service state (database, champions, readers, token cache, audit writer) the
routes and the pages share. Imports the shared floor of :mod:`serving`, never
the daily job or the pages. See docs/serving.md.
"""

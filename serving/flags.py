"""Alert and cohort kinds, and their bits in ``scores.alert_mask`` / ``scores.cohort_mask``.

Contract: read from the feature catalog (``alerts`` and ``cohort_flags`` in
``features/catalog.yaml``), where the rules that raise each one are declared
and from which the engine computes them; the daily job writes these bits, the
API's filters and the pages read them.
"""

from __future__ import annotations

from features.catalog import load_catalog

_CATALOG = load_catalog()
ALERT_BITS: dict[str, int] = {a.name: a.bit for a in _CATALOG.alerts}
COHORT_BITS: dict[str, int] = {f.name: f.bit for f in _CATALOG.cohort_flags}

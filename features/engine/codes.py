"""Event codes: the one table of integer codes every backend of the engine reads.

Contract: ``TYPE_CODES`` (event type -> 1..n, in the contract's order; 0 = none)
and ``RESULT_CODES`` (every result the pipeline codes, the contract's enforced
enumerations then the home-visit results -> 1..m; 0 = none or free text) are the
codes of :class:`features.engine.records.Events` (``tc``/``rc``) and of the SQL
backend's ``ev`` view (:func:`type_code_sql`, :func:`result_code_sql` render the
same tables as ``CASE`` expressions). Times are int64 microseconds of naive local
time; ``DAY_US`` is one day, ``MAX_US`` stands for "never" (an event not
superseded, an outcome that did not happen).
"""

from __future__ import annotations

from features.contract import EVENT_CODED_RESULTS, EVENT_TYPES

DAY_US = 86_400_000_000
MAX_US = 9_223_372_036_854_775_807
TYPE_CODES: dict[str, int] = {t: i + 1 for i, t in enumerate(EVENT_TYPES)}
#: Result -> code, for every result the pipeline codes (contract.EVENT_CODED_RESULTS:
#: the enforced enumerations, then the home-visit results); 0 = none or other text.
RESULT_CODES: dict[str, int] = {
    r: i + 1
    for i, r in enumerate(dict.fromkeys(r for rs in EVENT_CODED_RESULTS.values() for r in rs))
}
assert max(RESULT_CODES.values()) < 16, "last_category orders by ts * 16 + result code"


def type_code_sql(column: str = "type", sql_type: str = "UTINYINT") -> str:
    """``CASE`` mapping the event type to its integer code (as ``sql_type``)."""
    whens = " ".join(f"WHEN '{t}' THEN {c}" for t, c in TYPE_CODES.items())
    return f"CAST(CASE {column} {whens} ELSE 0 END AS {sql_type})"


def result_code_sql(column: str = "result", sql_type: str = "UTINYINT") -> str:
    """``CASE`` mapping the result to its integer code (0 = none or free text)."""
    whens = " ".join(f"WHEN '{r}' THEN {c}" for r, c in RESULT_CODES.items())
    return f"CAST(CASE {column} {whens} ELSE 0 END AS {sql_type})"

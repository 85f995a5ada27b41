"""Compile the feature catalog into one DuckDB query (see :mod:`features.engine`).

Contract: :func:`feature_query` returns SQL over three relations the engine
prepares — ``ent(row_id, person_id, as_us)``, ``per`` (persons) and ``ev``
(events with integer codes ``tc``/``rc``, microsecond times ``ts_us``,
``rec_us`` and ``sup_us``, see :mod:`features.events`) — that yields
``row_id``, ``person_id``, ``as_of``, one column per catalog feature, and the hidden cohort columns
(``_in_cohort``, ``_status``). Every event term is guarded by the time rule
``rec_us < as_us AND sup_us >= as_us``; nothing else reads ``ev``.

Windows: an event is in the ``W``-day window when ``as_of - W days <= ts``
(and, like every event, known before as_of). Day counts are calendar days on
naive local times (``floor(us / day)``).
"""

from __future__ import annotations

from collections.abc import Iterable

from features.catalog import Catalog, EventFilter, FeatureSpec, Missing
from features.contract import EVENT_CODED_RESULTS, EVENT_TYPES, PERSON_COLUMNS

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
_REQUIRED = {c.name: c.required for c in PERSON_COLUMNS}
AS_DAY = f"(n.as_us // {DAY_US})"


def type_code_sql(column: str = "type") -> str:
    """``CASE`` mapping the event type to its integer code."""
    whens = " ".join(f"WHEN '{t}' THEN {c}" for t, c in TYPE_CODES.items())
    return f"CAST(CASE {column} {whens} ELSE 0 END AS UTINYINT)"


def result_code_sql(column: str = "result") -> str:
    """``CASE`` mapping the result to its integer code (0 = none or free text)."""
    whens = " ".join(f"WHEN '{r}' THEN {c}" for r, c in RESULT_CODES.items())
    return f"CAST(CASE {column} {whens} ELSE 0 END AS UTINYINT)"


def filter_sql(filters: EventFilter | Iterable[EventFilter]) -> str:
    """SQL predicate on ``tc``/``rc`` for one filter or the union of several."""
    if isinstance(filters, EventFilter):
        filters = [filters]
    parts = []
    for f in filters:
        types = ", ".join(str(TYPE_CODES[t]) for t in f.types)
        term = f"tc IN ({types})"
        if f.results:
            term += f" AND rc IN ({', '.join(str(RESULT_CODES[r]) for r in f.results)})"
        if f.not_results:
            term += f" AND rc NOT IN ({', '.join(str(RESULT_CODES[r]) for r in f.not_results)})"
        parts.append(f"({term})")
    return "(" + " OR ".join(parts) + ")"


def type_is(*types: str) -> str:
    return f"tc IN ({', '.join(str(TYPE_CODES[t]) for t in types)})"


class _Aggregates:
    """Aggregate expressions over the joined events, deduplicated, with aliases.

    Window counts are packed: each joined row carries ``pk``, a HUGEINT with one
    20-bit slot per finite window (the windows the row falls in) and one for
    all time, so one ``sum(pk) FILTER (...)`` per event filter yields the
    counts of every window at once — far fewer aggregates than one per
    (filter, window), which is what dominates the cost.
    """

    SLOT_BITS = 20

    def __init__(self, windows: tuple[int, ...]) -> None:
        self.exprs: dict[str, str] = {}
        self.windows = windows

    def __call__(self, expr: str) -> str:
        if expr not in self.exprs:
            self.exprs[expr] = f"a{len(self.exprs)}"
        return f"a.{self.exprs[expr]}"

    def select_list(self) -> str:
        return ",\n  ".join(f"{e} AS {alias}" for e, alias in self.exprs.items())

    def count(self, predicate: str, window: object) -> str:
        """SQL for the number of matching events in ``window`` (days or "all"); never NULL."""
        slot = len(self.windows) if window == "all" else self.windows.index(int(str(window)))
        packed = self(f"sum(pk) FILTER (WHERE {predicate})")
        mask = (1 << self.SLOT_BITS) - 1
        return f"CAST(coalesce(({packed} >> {slot * self.SLOT_BITS}) & {mask}, 0) AS INTEGER)"

    def packed_sql(self) -> str:
        """The per-row ``pk`` expression (a CASE over ``d``, the event's age at as_of)."""
        bits = self.SLOT_BITS
        top = 1 << (bits * len(self.windows))
        whens = []
        for i, w in enumerate(self.windows):
            value = sum(1 << (bits * j) for j in range(i, len(self.windows))) + top
            whens.append(f"WHEN d <= {w * DAY_US} THEN CAST('{value}' AS HUGEINT)")
        if not whens:
            return f"CAST('{top}' AS HUGEINT)"
        return f"CASE {' '.join(whens)} ELSE CAST('{top}' AS HUGEINT) END"


def count_windows(cat: Catalog) -> tuple[int, ...]:
    """Every finite window a count needs (catalog windows and trend boundaries)."""
    found: set[int] = set()
    for spec in cat.specs:
        if spec.kind == "count":
            found.update(int(str(w)) for w in spec.windows if w != "all")
        if spec.kind == "share_trend":
            found.update({spec.recent or 0, (spec.recent or 0) + (spec.prior or 0)})
    return tuple(sorted(found))


def _window(w: object) -> str:
    return "" if w == "all" else f" AND d <= {int(str(w)) * DAY_US}"


def _impute(missing: Missing) -> str:
    if missing.rule == "days_in_program":
        return f"({AS_DAY} - epoch_us(CAST(p.program_start AS TIMESTAMP)) // {DAY_US})"
    return repr(missing.value) if missing.rule == "constant" else "0"


def _flag(outputs: list[str], spec: FeatureSpec, missing_expr: str) -> None:
    if spec.missing.flag:
        outputs.append(f"CAST({missing_expr} AS TINYINT) AS {spec.name}_imp")


def _event_outputs(cat: Catalog, spec: FeatureSpec, agg: _Aggregates) -> list[str]:
    f = filter_sql(cat.contact if spec.events == "contact" else spec.events)  # type: ignore[arg-type]
    v = filter_sql(spec.versus) if spec.versus else "FALSE"
    out: list[str] = []
    single = len(spec.windows) == 1 and spec.windows[0] == "all"
    names = {
        w: spec.name if single else f"{spec.name}_{'all' if w == 'all' else f'{w}d'}"
        for w in spec.windows
    }
    if spec.kind == "count":
        for w, name in names.items():
            out.append(f"{agg.count(f, w)} AS {name}")
    elif spec.kind == "sum":
        for w, name in names.items():
            out.append(
                f"CAST(coalesce({agg(f'sum(value) FILTER (WHERE {f}{_window(w)})')}, 0)"
                f" AS DOUBLE) AS {name}"
            )
    elif spec.kind == "days_since_last":
        last = agg(f"max(ts_us) FILTER (WHERE {f})")
        out.append(
            f"CAST(coalesce({AS_DAY} - {last} // {DAY_US}, {_impute(spec.missing)})"
            f" AS INTEGER) AS {spec.name}"
        )
        _flag(out, spec, f"{last} IS NULL")
    elif spec.kind == "last_category":
        code = agg(f"arg_max(rc, ts_us * 16 + rc) FILTER (WHERE {f})")
        for choice in cat.choices_of(spec):
            rc = RESULT_CODES[choice]
            out.append(f"CAST(coalesce({code} = {rc}, FALSE) AS TINYINT) AS {spec.name}_{choice}")
        out.append(f"CAST({code} IS NULL AS TINYINT) AS {spec.name}_none")
    elif spec.kind == "consecutive":
        reset = agg(f"max(ts_us) FILTER (WHERE {v})")
        times = agg(f"list(ts_us) FILTER (WHERE {f})")
        out.append(
            f"CAST(coalesce(len(list_filter({times}, lambda x: x > coalesce({reset}, -1)))"
            f", 0) AS INTEGER) AS {spec.name}"
        )
    elif spec.kind == "state_now":
        on = agg(
            f"arg_max(CAST({f} AS INTEGER), ts_us * 2 + CAST({f} AS INTEGER))"
            f" FILTER (WHERE {f} OR {v})"
        )
        out.append(f"CAST(coalesce({on}, 0) AS TINYINT) AS {spec.name}")
    elif spec.kind == "state_days":
        s = agg(
            f"list({{'t': ts_us // {DAY_US}, 'on': {f}}} ORDER BY ts_us, {f})"
            f" FILTER (WHERE {f} OR {v})"
        )
        for w, name in names.items():
            lo = f"({AS_DAY} - {w})" if w != "all" else "-1"
            spell = (
                f"CASE WHEN {s}[i].on THEN greatest(0, least(coalesce({s}[i + 1].t, {AS_DAY}),"
                f" {AS_DAY}) - greatest({s}[i].t, {lo})) ELSE 0 END"
            )
            out.append(
                f"CAST(coalesce(list_sum(list_transform(range(1, len({s}) + 1),"
                f" lambda i: {spell})), 0) AS INTEGER) AS {name}"
            )
    elif spec.kind == "share_trend":
        r, p = spec.recent or 0, (spec.recent or 0) + (spec.prior or 0)
        nr, vr = (agg.count(x, r) for x in (f, v))
        np_, vp = (f"({agg.count(x, p)} - {agg.count(x, r)})" for x in (f, v))
        known = f"({nr} + {vr} > 0 AND {np_} + {vp} > 0)"
        out.append(
            f"CAST(CASE WHEN {known} THEN {nr} / ({nr} + {vr}) - {np_} / ({np_} + {vp})"
            f" ELSE {_impute(spec.missing)} END AS DOUBLE) AS {spec.name}"
        )
        _flag(out, spec, f"NOT {known}")
    return out


def _person_outputs(cat: Catalog, spec: FeatureSpec) -> list[str]:
    col = f"p.{spec.column}"
    out: list[str] = []
    fill = _impute(spec.missing)
    if spec.kind == "years_since":
        out.append(
            f"CAST(coalesce(year(make_timestamp(n.as_us)) - {col}, {fill}) AS INTEGER)"
            f" AS {spec.name}"
        )
    elif spec.kind == "years_between":
        out.append(f"CAST(coalesce(p.{spec.column_to} - {col}, {fill}) AS INTEGER) AS {spec.name}")
    elif spec.kind == "person_number":
        out.append(f"CAST(coalesce({col}, {fill}) AS INTEGER) AS {spec.name}")
    elif spec.kind in {"days_since_date", "days_until_date"}:
        day = f"(epoch_us(CAST({col} AS TIMESTAMP)) // {DAY_US})"
        diff = f"{AS_DAY} - {day}" if spec.kind == "days_since_date" else f"{day} - {AS_DAY}"
        out.append(f"CAST({diff} AS INTEGER) AS {spec.name}")
    elif spec.kind == "person_category":
        for choice in cat.choices_of(spec):
            out.append(
                f"CAST(coalesce({col} = '{choice}', FALSE) AS TINYINT) AS {spec.name}_{choice}"
            )
        if not _REQUIRED[spec.column or ""]:
            out.append(f"CAST({col} IS NULL AS TINYINT) AS {spec.name}_unknown")
    _flag(out, spec, f"{col} IS NULL" if spec.kind != "years_between" else "FALSE")
    return out


def cohort_outputs(agg: _Aggregates, exclude_transferred_out: bool) -> list[str]:
    """Hidden cohort columns: who is in the programme and in contact at as_of."""
    exit_us = agg(f"min(ts_us) FILTER (WHERE {type_is('program_exit')})")
    exit_rc = agg(f"arg_min(rc, ts_us) FILTER (WHERE {type_is('program_exit')})")
    lost = agg(f"max(ts_us) FILTER (WHERE {type_is('lost_contact')})")
    back = agg(f"max(ts_us) FILTER (WHERE {type_is('contact_restored')})")
    out_ = agg(f"max(ts_us) FILTER (WHERE {type_is('transfer_out')})")
    in_ = agg(f"max(ts_us) FILTER (WHERE {type_is('transfer_in')})")
    start = "epoch_us(CAST(p.program_start AS TIMESTAMP))"
    end = f"(epoch_us(CAST(p.program_end AS TIMESTAMP)) + {DAY_US})"
    is_lost = f"({lost} IS NOT NULL AND coalesce({back}, -1) < {lost})"
    is_out = f"({out_} IS NOT NULL AND coalesce({in_}, -1) < {out_})"
    status = (
        f"CASE WHEN n.as_us < {start} THEN 'not_started'"
        f" WHEN {exit_us} IS NOT NULL AND {exit_rc} = {RESULT_CODES['custody']} THEN 'custody'"
        f" WHEN {exit_us} IS NOT NULL THEN 'exited'"
        f" WHEN n.as_us >= {end} THEN 'ended'"
        f" WHEN {is_lost} THEN 'lost_contact'"
        + (f" WHEN {is_out} THEN 'transferred_out'" if exclude_transferred_out else "")
        + " ELSE 'active' END"
    )
    return [f"{status} AS _status", f"({status}) = 'active' AS _in_cohort"]


def feature_query(
    cat: Catalog, *, exclude_transferred_out: bool = True, cohort_only: bool = False
) -> str:
    """The whole point-in-time feature query (or only the cohort columns)."""
    agg = _Aggregates(count_windows(cat))
    outputs: list[str] = []
    if not cohort_only:
        for spec in cat.specs:
            if spec.column is not None and spec.events is None:
                outputs += _person_outputs(cat, spec)
            else:
                outputs += _event_outputs(cat, spec, agg)
    outputs += cohort_outputs(agg, exclude_transferred_out)
    select = ",\n  ".join(outputs)
    return f"""
WITH j AS (
  SELECT n.row_id, v.ts_us, v.tc, v.rc, v.value, n.as_us - v.ts_us AS d
  FROM ent n JOIN ev v ON v.person_id = n.person_id
  WHERE v.rec_us < n.as_us AND v.sup_us >= n.as_us
), jp AS (
  SELECT *, {agg.packed_sql()} AS pk FROM j
), a AS (
  SELECT row_id,
  {agg.select_list()}
  FROM jp GROUP BY row_id
)
SELECT n.row_id, n.person_id, make_timestamp(n.as_us) AS as_of,
  {select}
FROM ent n JOIN per p ON p.person_id = n.person_id LEFT JOIN a ON a.row_id = n.row_id
ORDER BY n.row_id
"""

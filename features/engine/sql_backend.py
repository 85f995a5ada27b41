"""The SQL reference backend: the feature catalog compiled into one DuckDB query.

Contract: :func:`feature_query` returns SQL over three relations the session
prepares — ``ent(row_id, person_id, as_us)``, ``per`` (persons) and ``ev``
(events with integer codes ``tc``/``rc``, microsecond times ``ts_us``,
``rec_us`` and ``sup_us``, see :mod:`features.engine.sql_events`) — that yields
``row_id``, ``person_id``, ``as_of``, one column per catalog feature, and the
cohort columns ``_status`` and ``_in_cohort``, which :class:`SqlBackend` returns
as :class:`~features.engine.protocol.Evaluated`'s status, never as features.
Every event term is guarded by the time rule ``rec_us < as_us AND sup_us >=
as_us``; nothing else reads ``ev``. The query is written once and rendered in a
:class:`~features.engine.dialect.Dialect`: DuckDB by default, Spark SQL for
:mod:`features.engine.spark` (same rules, different spelling).

Windows: an event is in the ``W``-day window when ``as_of - W days <= ts``
(and, like every event, known before as_of). Day counts are calendar days on
naive local times (``floor(us / day)``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.catalog import AlertSettings, Catalog, EventFilter, FeatureSpec, Missing
from features.config import LabelConfig
from features.contract import PERSON_COLUMNS
from features.engine.alert_rules import AlertInputs, raise_alerts
from features.engine.codes import DAY_US, RESULT_CODES, TYPE_CODES
from features.engine.dialect import DUCKDB, Dialect
from features.engine.protocol import CHUNK_ROWS, NO_TIME, Alerts, Evaluated
from features.engine.session import EntityRows, Session

_REQUIRED = {c.name: c.required for c in PERSON_COLUMNS}


def as_day(d: Dialect) -> str:
    """The entity row's as_of as a day number (the ``n`` relation's ``as_us``)."""
    return d.idiv("n.as_us", DAY_US)


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

    def __init__(self, windows: tuple[int, ...], dialect: Dialect = DUCKDB) -> None:
        self.exprs: dict[str, str] = {}
        self.windows = windows
        self.d = dialect

    def __call__(self, expr: str) -> str:
        if expr not in self.exprs:
            self.exprs[expr] = f"a{len(self.exprs)}"
        return f"a.{self.exprs[expr]}"

    def select_list(self) -> str:
        return ",\n  ".join(f"{e} AS {alias}" for e, alias in self.exprs.items())

    def count(self, predicate: str, window: object) -> str:
        """SQL for the number of matching events in ``window`` (days or "all"); never NULL."""
        if not self.d.packed_counts:
            n = self(f"count(*) FILTER (WHERE {predicate}{_window(window)})")
            return f"CAST(coalesce({n}, 0) AS INTEGER)"
        slot = len(self.windows) if window == "all" else self.windows.index(int(str(window)))
        packed = self(f"sum(pk) FILTER (WHERE {predicate})")
        mask = (1 << self.SLOT_BITS) - 1
        return f"CAST(coalesce(({packed} >> {slot * self.SLOT_BITS}) & {mask}, 0) AS INTEGER)"

    def packed_sql(self) -> str:
        """The per-row ``pk`` expression (a CASE over ``d``, the event's age at as_of)."""
        if not self.d.packed_counts:
            return "0"
        bits = self.SLOT_BITS
        top = 1 << (bits * len(self.windows))
        whens = []
        for i, w in enumerate(self.windows):
            value = sum(1 << (bits * j) for j in range(i, len(self.windows))) + top
            whens.append(f"WHEN d <= {w * DAY_US} THEN {self.d.int128(value)}")
        if not whens:
            return self.d.int128(top)
        return f"CASE {' '.join(whens)} ELSE {self.d.int128(top)} END"


def _window(w: object) -> str:
    return "" if w == "all" else f" AND d <= {int(str(w)) * DAY_US}"


def _impute(missing: Missing, d: Dialect) -> str:
    if missing.rule == "days_in_program":
        return f"({as_day(d)} - {d.idiv(d.epoch_us('p.program_start'), DAY_US)})"
    return repr(missing.value) if missing.rule == "constant" else "0"


def _flag(outputs: list[str], spec: FeatureSpec, missing_expr: str) -> None:
    if spec.missing.flag:
        outputs.append(f"CAST({missing_expr} AS TINYINT) AS {spec.name}_imp")


def _event_outputs(cat: Catalog, spec: FeatureSpec, agg: _Aggregates) -> list[str]:
    d = agg.d
    day = as_day(d)
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
            f"CAST(coalesce({day} - {d.idiv(last, DAY_US)}, {_impute(spec.missing, d)})"
            f" AS INTEGER) AS {spec.name}"
        )
        _flag(out, spec, f"{last} IS NULL")
    elif spec.kind == "last_category":
        code = agg(f"{d.arg_max('rc', 'ts_us * 16 + rc')} FILTER (WHERE {f})")
        for choice in cat.choices_of(spec):
            rc = RESULT_CODES[choice]
            out.append(f"CAST(coalesce({code} = {rc}, FALSE) AS TINYINT) AS {spec.name}_{choice}")
        out.append(f"CAST({code} IS NULL AS TINYINT) AS {spec.name}_none")
    elif spec.kind == "consecutive":
        reset = agg(f"max(ts_us) FILTER (WHERE {v})")
        times = agg(f"{d.collect('ts_us')} FILTER (WHERE {f})")
        after = d.count_where(times, "x", f"x > coalesce({reset}, -1)")
        out.append(f"CAST(coalesce({after}, 0) AS INTEGER) AS {spec.name}")
    elif spec.kind == "state_now":
        on = agg(
            f"{d.arg_max(f'CAST({f} AS INTEGER)', f'ts_us * 2 + CAST({f} AS INTEGER)')}"
            f" FILTER (WHERE {f} OR {v})"
        )
        out.append(f"CAST(coalesce({on}, 0) AS TINYINT) AS {spec.name}")
    elif spec.kind == "state_days":
        s = agg(
            d.collect_sorted(
                {"t": d.idiv("ts_us", DAY_US), "is_on": f}, ["ts_us", f], where=f"{f} OR {v}"
            )
        )
        for w, name in names.items():
            lo = f"({day} - {w})" if w != "all" else "-1"

            def spell(cur: str, nxt: str, lo: str = lo) -> str:
                return (
                    f"CASE WHEN {cur}.is_on THEN greatest(0, least(coalesce({nxt}.t, {day}),"
                    f" {day}) - greatest({cur}.t, {lo})) ELSE 0 END"
                )

            out.append(f"CAST(coalesce({d.sum_pairs(s, spell)}, 0) AS INTEGER) AS {name}")
    elif spec.kind == "share_trend":
        r, p = spec.recent or 0, (spec.recent or 0) + (spec.prior or 0)
        nr, vr = (agg.count(x, r) for x in (f, v))
        np_, vp = (f"({agg.count(x, p)} - {agg.count(x, r)})" for x in (f, v))
        known = f"({nr} + {vr} > 0 AND {np_} + {vp} > 0)"
        out.append(
            f"CAST(CASE WHEN {known} THEN {nr} / ({nr} + {vr}) - {np_} / ({np_} + {vp})"
            f" ELSE {_impute(spec.missing, d)} END AS DOUBLE) AS {spec.name}"
        )
        _flag(out, spec, f"NOT {known}")
    return out


def _person_outputs(cat: Catalog, spec: FeatureSpec, d: Dialect = DUCKDB) -> list[str]:
    col = f"p.{spec.column}"
    out: list[str] = []
    fill = _impute(spec.missing, d)
    today = as_day(d)
    if spec.kind == "years_since":
        out.append(
            f"CAST(coalesce(year({d.timestamp('n.as_us')}) - {col}, {fill}) AS INTEGER)"
            f" AS {spec.name}"
        )
    elif spec.kind == "years_between":
        out.append(f"CAST(coalesce(p.{spec.column_to} - {col}, {fill}) AS INTEGER) AS {spec.name}")
    elif spec.kind == "person_number":
        out.append(f"CAST(coalesce({col}, {fill}) AS INTEGER) AS {spec.name}")
    elif spec.kind in {"days_since_date", "days_until_date"}:
        day = d.idiv(d.epoch_us(col), DAY_US)
        diff = f"{today} - {day}" if spec.kind == "days_since_date" else f"{day} - {today}"
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
    # ties (two exits at one instant, e.g. a same-instant correction): the smaller result
    # code, as the array engine's min of ts * 16 + rc
    exit_rc = agg(
        f"{agg.d.arg_min('rc', 'ts_us * 16 + rc')} FILTER (WHERE {type_is('program_exit')})"
    )
    lost = agg(f"max(ts_us) FILTER (WHERE {type_is('lost_contact')})")
    back = agg(f"max(ts_us) FILTER (WHERE {type_is('contact_restored')})")
    out_ = agg(f"max(ts_us) FILTER (WHERE {type_is('transfer_out')})")
    in_ = agg(f"max(ts_us) FILTER (WHERE {type_is('transfer_in')})")
    start = agg.d.epoch_us("p.program_start")
    end = f"({agg.d.epoch_us('p.program_end')} + {DAY_US})"
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
    cat: Catalog,
    *,
    exclude_transferred_out: bool = True,
    cohort_only: bool = False,
    dialect: Dialect = DUCKDB,
    ordered: bool = True,
) -> str:
    """The whole point-in-time feature query (or only the cohort columns), in ``dialect``.

    ``ordered=False`` leaves out ``ORDER BY row_id`` (a global sort on Spark) for
    callers that do not need the entity rows' order.
    """
    agg = _Aggregates(cat.count_windows(), dialect)
    outputs: list[str] = []
    if not cohort_only:
        for spec in cat.specs:
            if spec.column is not None and spec.events is None:
                outputs += _person_outputs(cat, spec, dialect)
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
SELECT n.row_id, n.person_id, {dialect.timestamp("n.as_us")} AS as_of,
  {select}
FROM ent n JOIN per p ON p.person_id = n.person_id LEFT JOIN a ON a.row_id = n.row_id
{"ORDER BY n.row_id" if ordered else ""}
"""


def alert_query(cat: Catalog, settings: AlertSettings, dialect: Dialect = DUCKDB) -> str:
    """The aggregates the alert rules read (:class:`~features.engine.alert_rules.AlertInputs`).

    One row per entity row (``ent``), in row order: ``as_us``, the programme
    dates, ``worker_id``, and per rule ``last_<name>`` / ``contact_<name>`` /
    ``recent_ts_<name>`` + ``recent_value_<name>`` / ``sum_<name>`` +
    ``prior_<name>`` / ``places_<name>`` (NULL: none), from the events visible at
    as_of (the same time rule as the features). Rendered in ``dialect``, as
    :func:`feature_query`.
    """
    outputs: list[str] = []
    recent: list[str] = []
    for alert in cat.alerts:
        f = filter_sql(alert.events)
        if alert.rule == "recorded_recently":
            cut = f"rec_us >= as_us - {int(settings.recent_days) * DAY_US}"
            outputs.append(f"max(ts_us) FILTER (WHERE {f} AND {cut}) AS recent_ts_{alert.name}")
            recent.append(
                f"max(j.value) FILTER (WHERE {f} AND {cut} "
                f"AND j.ts_us = a.recent_ts_{alert.name}) AS recent_value_{alert.name}"
            )
        else:
            outputs.append(f"max(ts_us) FILTER (WHERE {f}) AS last_{alert.name}")
        if alert.window_days is not None:
            w = int(alert.window_days) * DAY_US
            inside = f"{f} AND as_us - ts_us <= {w}"
            if alert.rule == "places_at_least":
                outputs.append(
                    f"count(DISTINCT place) FILTER (WHERE {inside} AND place IS NOT NULL)"
                    f" AS places_{alert.name}"
                )
            else:
                outputs.append(f"sum(value) FILTER (WHERE {inside}) AS sum_{alert.name}")
                p = (int(alert.window_days) + int(alert.prior_days or 0)) * DAY_US
                before = f"{f} AND as_us - ts_us > {w} AND as_us - ts_us <= {p}"
                outputs.append(f"sum(value) FILTER (WHERE {before}) AS prior_{alert.name}")
        if alert.contact is not None:
            contact = cat.contact
            outputs.append(
                f"max(ts_us) FILTER (WHERE {filter_sql(contact)}) AS contact_{alert.name}"
            )
    for flag in cat.cohort_flags:
        if flag.events is not None:
            outputs.append(
                f"max(ts_us) FILTER (WHERE {filter_sql(flag.events)}) AS last_{flag.name}"
            )
    values = ",\n  ".join(recent) if recent else "CAST(NULL AS DOUBLE) AS no_recent"
    start = dialect.epoch_us("CAST(p.program_start AS DATE)")
    end = dialect.epoch_us("CAST(p.program_end AS DATE)")
    return f"""
WITH j AS (
  SELECT n.row_id, n.as_us, v.ts_us, v.rec_us, v.tc, v.rc, CAST(v.value AS DOUBLE) AS value,
    v.place
  FROM ent n JOIN ev v ON v.person_id = n.person_id
  WHERE v.rec_us < n.as_us AND v.sup_us >= n.as_us
), a AS (
  SELECT row_id AS a_row,
  {", ".join(outputs) if outputs else "CAST(NULL AS DOUBLE) AS nothing"}
  FROM j GROUP BY row_id
), b AS (
  SELECT j.row_id AS b_row,
  {values}
  FROM j JOIN a ON a.a_row = j.row_id GROUP BY j.row_id
)
SELECT n.row_id, n.as_us, {start} AS start_us, {end} AS end_us,
  CAST(p.worker_id AS {dialect.string}) AS worker_id, a.*, b.*
FROM ent n JOIN per p ON p.person_id = n.person_id
LEFT JOIN a ON a.a_row = n.row_id LEFT JOIN b ON b.b_row = n.row_id
ORDER BY n.row_id
"""


def alert_inputs(cat: Catalog, frame: pd.DataFrame) -> AlertInputs:
    def us(col: str) -> np.ndarray:
        return frame[col].astype("Int64").fillna(NO_TIME).to_numpy(dtype=np.int64)

    def number(col: str) -> np.ndarray:
        return frame[col].astype("Float64").fillna(0.0).to_numpy(dtype=np.float64)

    got = AlertInputs(
        us("as_us"), us("start_us"), us("end_us"), frame["worker_id"].to_numpy(dtype=object)
    )
    for alert in cat.alerts:
        if alert.rule == "recorded_recently":
            value = frame[f"recent_value_{alert.name}"].astype("Float64")
            got.recent[alert.name] = (
                us(f"recent_ts_{alert.name}"),
                value.to_numpy(dtype=np.float64, na_value=np.nan),
            )
        else:
            got.last[alert.name] = us(f"last_{alert.name}")
        if alert.rule == "places_at_least":
            got.places[alert.name] = (
                frame[f"places_{alert.name}"].astype("Int64").fillna(0).to_numpy(dtype=np.int64)
            )
        elif alert.window_days is not None:
            got.sums[alert.name] = (number(f"sum_{alert.name}"), number(f"prior_{alert.name}"))
        if alert.contact is not None:
            got.contact[alert.name] = us(f"contact_{alert.name}")
    for flag in cat.cohort_flags:
        if flag.events is not None:
            got.last[flag.name] = us(f"last_{flag.name}")
    return got


class SqlBackend:
    """The SQL reference behind :class:`features.engine.protocol.Backend` (DuckDB)."""

    name = "sql"

    def evaluate(
        self,
        session: Session,
        rows: EntityRows,
        catalog: Catalog,
        config: LabelConfig,
        *,
        cohort_only: bool = False,
        chunk_rows: int = CHUNK_ROWS,
        alerts: AlertSettings | None = None,
    ) -> Evaluated:
        """:func:`feature_query` on the session's relations, ``chunk_rows`` rows at a time."""
        con = session.sql_entities(rows)
        sql = feature_query(
            catalog,
            exclude_transferred_out=config.cohort.exclude_transferred_out,
            cohort_only=cohort_only,
        )
        parts, raised = [], []
        for lo in range(0, max(len(rows), 1), chunk_rows):
            hi = min(lo + chunk_rows, len(rows))
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ent AS SELECT * FROM ent_all "
                f"WHERE row_id >= {int(lo)} AND row_id < {int(hi)}"
            )
            parts.append(con.execute(sql).df())
            if alerts is not None:
                got = alert_inputs(catalog, con.execute(alert_query(catalog, alerts)).df())
                raised.append((raise_alerts(catalog, alerts, got), lo))
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        status = frame["_status"].to_numpy(dtype=object)
        features = frame.drop(columns=["row_id", "person_id", "as_of", "_status", "_in_cohort"])
        found = Alerts.concat(raised, [a.name for a in catalog.alerts]) if raised else None
        return Evaluated(features.reset_index(drop=True), status, found)

"""Validation of the input tables against the contract (:mod:`features.contract`).

Contract: :func:`validate_persons` and :func:`validate_events` take a raw frame
(as read from CSV — all strings — or Parquet — typed) and return a
:class:`Validated`: the good rows in canonical form and one rejection line per
(row, column, reason). A row is good only if it has no rejection. Rejections
name the file, the 1-based data row (``row``; the CSV line is ``row + 1``), the
column, a stable reason ``code`` and a readable ``reason``. Values of free-text
columns are never echoed into a reason; other values are quoted clipped to 40
characters with control characters escaped.

Rules, by code:
``missing_column``, ``missing_required``, ``not_scalar`` (an object, list or
bytes where one value belongs), ``control_character`` (any text column),
``too_long``, ``bad_id``, ``bad_name`` (the column's
:class:`features.contract.TextRule`), ``bad_date``, ``bad_datetime``,
``date_out_of_range`` (before 1900-01-01, or more than the column's
``future_days`` after today), ``bad_int``, ``bad_number``, ``not_finite``
(``inf``, ``-inf``, ``Infinity``), ``out_of_range`` (every numeric column is
bounded in the contract), ``not_in_choices``,
``unknown_event_type``, ``bad_result``, ``recorded_before_ts``,
``end_before_start``, ``first_use_before_birth``, ``unknown_person``,
``duplicate_conflict`` (the same id twice in one file with different values:
every copy is rejected). Exact duplicates inside a file are kept once.
Conflicts with what is already stored are decided by :mod:`features.ingest`.

Times: a value without a zone is Asia/Shanghai local time; a value with a zone
(``Z``, ``+08:00``…) is converted to it. Canonical times are naive local
``datetime64[us]``. An empty ``recorded_at`` means ``ts``.
:func:`frame_from_records` turns JSON rows (the API's) into a raw frame.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contract import (
    CONTROL_CHARACTERS,
    DATE_MIN,
    EVENT_COLUMNS,
    EVENT_RESULTS,
    EVENT_TYPES,
    LOCAL_TZ,
    PERSON_COLUMNS,
    Column,
)

REJECTION_COLUMNS = ("file", "row", "column", "code", "reason")
#: A zone after a time of day (``…T09:00Z``, ``…T09:00:00+08:00``); a bare date such as
#: ``2024-01-01`` ends in ``-01`` but has no zone.
_ZONED = r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


@dataclass
class Validated:
    """Good rows in canonical form, and what was rejected and why."""

    good: pd.DataFrame
    rejections: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(REJECTION_COLUMNS))
    )
    #: Exact in-file duplicates that were kept once.
    duplicates_dropped: int = 0
    #: 1-based row number in the file of each good row.
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def rejected_rows(self) -> int:
        """How many distinct rows were rejected."""
        return int(self.rejections.loc[self.rejections["row"] > 0, "row"].nunique())


#: A reason for every rejected row: one text, one per row, or built for the rejected rows.
Reason = str | pd.Series | Callable[[np.ndarray], list[str]]
#: How much of a value a reason quotes.
_QUOTE_CHARS = 40
_CONTROL = re.compile(CONTROL_CHARACTERS)


def _quote(value: object) -> str:
    """A value as a reason quotes it: at most 40 characters, control characters escaped."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)
    clipped = text[:_QUOTE_CHARS] + ("…" if len(text) > _QUOTE_CHARS else "")
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", clipped)


def _quoted(template: str, values: pd.Series) -> Reason:
    """Reasons ``template`` with ``{v}`` replaced by each rejected row's value (quoted)."""
    return lambda rows: [template.replace("{v}", _quote(v)) for v in values.iloc[rows]]


class _Rejections:
    """Collects rejection lines column by column, vectorised."""

    def __init__(self, file: str, n_rows: int) -> None:
        self.file = file
        self.bad = np.zeros(n_rows, dtype=bool)
        self._parts: list[pd.DataFrame] = []

    def add(self, mask: np.ndarray, column: str, code: str, reasons: Reason) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        rows = np.flatnonzero(mask)
        self.bad[rows] = True
        if isinstance(reasons, str):
            text: list[str] = [reasons] * len(rows)
        elif isinstance(reasons, pd.Series):
            text = reasons.iloc[rows].astype(str).tolist()
        else:
            text = reasons(rows)
        self._parts.append(
            pd.DataFrame(
                {
                    "file": self.file,
                    "row": rows + 1,
                    "column": column,
                    "code": code,
                    "reason": text,
                }
            )
        )

    def whole_file(self, column: str, code: str, reason: str) -> None:
        self.bad[:] = True
        self._parts.append(
            pd.DataFrame(
                {
                    "file": [self.file],
                    "row": [0],
                    "column": [column],
                    "code": [code],
                    "reason": [reason],
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame(
                {
                    "file": pd.Series(dtype=str),
                    "row": pd.Series(dtype="int64"),
                    "column": pd.Series(dtype=str),
                    "code": pd.Series(dtype=str),
                    "reason": pd.Series(dtype=str),
                }
            )
        out = pd.concat(self._parts, ignore_index=True)
        return out.sort_values(["row", "column"], kind="stable").reset_index(drop=True)


#: ``frame.attrs`` key of a file that could not be read as a table: (code, reason).
READ_PROBLEM = "sunflower_read_problem"
#: Hidden column of a CSV frame: the number of fields of a row whose count differs
#: from the header's (NA for the others); validation rejects those rows (``ragged_row``).
RAGGED_COLUMN = "\x00fields"


def read_input(path: Path) -> pd.DataFrame:
    """Read one input table: CSV as all-strings (empty = missing), Parquet typed.

    CSV is UTF-8, with or without a BOM. A file that cannot be a table — empty, or
    not UTF-8 — comes back as an empty frame whose ``attrs[READ_PROBLEM]`` says why
    (validation turns it into one whole-file rejection, so the other file of the
    load is still stored). A row with more or fewer fields than the header is kept
    in place (row numbers stay true) and marked in :data:`RAGGED_COLUMN`.
    """
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix != ".csv":
        raise ValueError(f"{path.name}: unsupported input format (use .csv or .parquet)")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return _unreadable(
            "not_utf8",
            f"not UTF-8 text (line {line}, byte 0x{data[exc.start]:02x}); save the file as "
            "UTF-8 (a GBK or GB18030 export is not guessed)",
        )
    if not text.strip():
        return _unreadable("empty_file", "the file is empty: not even a header")
    # pandas pads a short row with "" and refuses a long one: count the fields first
    # (one pass of the csv module, ~0.6 s per million rows)
    # a megabyte field is read (then rejected as too long), not a csv.Error
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    counts = [len(r) for r in csv.reader(io.StringIO(text)) if r]
    if any(c != counts[0] for c in counts[1:]):
        return _ragged_csv(text)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError:  # quoting the csv module read differently
        return _ragged_csv(text)


def _unreadable(code: str, reason: str) -> pd.DataFrame:
    frame = pd.DataFrame()
    frame.attrs[READ_PROBLEM] = (code, reason)
    return frame


def _ragged_csv(text: str) -> pd.DataFrame:
    """A CSV whose rows differ in length: every row cut or padded to the header's."""
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], [r for r in rows[1:] if r]
    width = len(header)
    fields = [len(r) for r in body]
    frame = pd.DataFrame([(r + [""] * width)[:width] for r in body], columns=header, dtype=str)
    counts = pd.Series(fields, dtype="Int64")
    frame[RAGGED_COLUMN] = counts.where(counts != width)
    return frame


def find_input(directory: Path, table: str) -> Path | None:
    """``DIR/<table>.parquet`` or ``DIR/<table>.csv`` (Parquet wins), or None."""
    for suffix in (".parquet", ".csv"):
        candidate = directory / f"{table}{suffix}"
        if candidate.exists():
            return candidate
    return None


def _as_text(series: pd.Series) -> pd.Series:
    """Strings with surrounding blanks removed; empty and missing become NA."""
    text = series.astype("string").str.strip()
    return text.mask(text == "")


def _missing(series: pd.Series) -> np.ndarray:
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        return _as_text(series).isna().to_numpy()
    return series.isna().to_numpy()


def _parse_datetime(series: pd.Series, date_only: bool) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
        if getattr(series.dt, "tz", None) is not None:
            parsed = series.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    elif series.dtype == object and series.map(lambda v: hasattr(v, "year")).any():
        parsed = pd.to_datetime(series, errors="coerce")
    else:
        text = _as_text(series)
        zoned = text.str.contains(_ZONED, regex=True, na=False).to_numpy()
        parsed = pd.to_datetime(text.where(~zoned), format="ISO8601", errors="coerce")
        if zoned.any():
            aware = pd.to_datetime(text[zoned], format="ISO8601", utc=True, errors="coerce")
            parsed = parsed.astype("datetime64[us]")
            parsed[zoned] = (
                aware.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).astype("datetime64[us]")
            )
    parsed = parsed.astype("datetime64[us]")
    return parsed.dt.normalize() if date_only else parsed


def today_local() -> date:
    """Today in Asia/Shanghai: the date the plausible range of dates is measured from."""
    return pd.Timestamp.now(tz=LOCAL_TZ).date()


def _date_bounds(
    col: Column, parsed: pd.Series, shown: pd.Series, today: date, rej: _Rejections
) -> pd.Series:  # shown: the raw values, quoted by the reasons
    """Reject dates before :data:`DATE_MIN` or beyond ``future_days`` after ``today``."""
    values = parsed.to_numpy()
    early = values < np.datetime64(DATE_MIN)
    rej.add(
        early,
        col.name,
        "date_out_of_range",
        _quoted(f"{col.name} '{{v}}' is before {DATE_MIN.isoformat()}", shown),
    )
    late = np.zeros(len(values), dtype=bool)
    if col.future_days is not None:
        last = today + timedelta(days=col.future_days)
        late = values >= np.datetime64(last + timedelta(days=1))
        rej.add(
            late,
            col.name,
            "date_out_of_range",
            _quoted(
                f"{col.name} '{{v}}' is after {last.isoformat()} "
                f"({col.future_days} days after today)",
                shown,
            ),
        )
    return parsed.mask(early | late)


def _parse_column(col: Column, raw: pd.Series, rej: _Rejections, today: date) -> pd.Series:
    """Parse one column to its canonical dtype, recording failures."""
    raw, nested = _scalars_only(col, raw, rej)
    missing = _missing(raw) & ~nested
    if col.required:
        rej.add(missing, col.name, "missing_required", f"{col.name} is required")
    present = ~missing & ~nested
    if col.kind in ("date", "datetime"):
        parsed = _parse_datetime(raw, date_only=col.kind == "date")
        failed = present & parsed.isna().to_numpy()
        shown = _as_text(raw)
        what = "date" if col.kind == "date" else "date-time"
        rej.add(
            failed, col.name, f"bad_{col.kind}", _quoted(f"not an ISO 8601 {what}: '{{v}}'", shown)
        )
        return _date_bounds(col, parsed, shown, today, rej)
    if col.kind in ("int", "float"):
        return _parse_number(col, raw, present, rej)
    text = _as_text(raw)
    present &= ~_check_text(col, text, present, rej)
    if col.kind == "enum":
        bad = present & ~text.isin(col.choices).to_numpy()
        if col.name == "type":
            rej.add(bad, col.name, "unknown_event_type", _quoted("unknown event type '{v}'", text))
        else:
            rej.add(
                bad,
                col.name,
                "not_in_choices",
                _quoted(f"'{{v}}' is not one of {', '.join(col.choices)}", text),
            )
    return text.astype(str).where(text.notna())


#: Values a cell may hold; anything else (a JSON object or list, a Parquet list or struct,
#: bytes) is ``not_scalar`` and is never turned into text.
_SCALARS = (str, int, float, bool, np.number, np.bool_, date, pd.Timestamp)


def _scalars_only(col: Column, raw: pd.Series, rej: _Rejections) -> tuple[pd.Series, np.ndarray]:
    """Reject cells that are not one value (objects, lists, bytes): (raw without them, mask)."""
    none = np.zeros(len(raw), dtype=bool)
    if raw.dtype != object:
        return raw, none
    nested = raw.map(lambda v: v is not None and v is not pd.NA and not isinstance(v, _SCALARS))
    mask = nested.to_numpy(dtype=bool)
    if not mask.any():
        return raw, none
    kinds = raw.map(lambda v: type(v).__name__)
    rej.add(
        mask,
        col.name,
        "not_scalar",
        _quoted("expected one value, got a {v}", kinds.map(_KIND_WORDS.get).fillna(kinds)),
    )
    return raw.mask(nested), mask


_KIND_WORDS = {"dict": "JSON object", "list": "JSON list", "ndarray": "list", "bytes": "bytes"}


def _check_text(col: Column, text: pd.Series, present: np.ndarray, rej: _Rejections) -> np.ndarray:
    """Control characters (every text column), length and alphabet (``col.text``).

    Returns the rows rejected here. Reasons give positions and lengths, never the
    value: it may be free text, or a megabyte.
    """
    controls = present & text.str.contains(CONTROL_CHARACTERS, regex=True).fillna(False).to_numpy(
        dtype=bool
    )
    rej.add(controls, col.name, "control_character", _control_reasons(text))
    bad = controls
    rule = col.text
    if rule is None:
        return bad
    lengths = text.str.len().fillna(0).to_numpy(dtype=np.int64)
    long = present & ~bad & (lengths > rule.max_length)
    rej.add(
        long,
        col.name,
        "too_long",
        lambda rows: [f"{lengths[r]:,} characters; at most {rule.max_length}" for r in rows],
    )
    bad = bad | long
    if rule.pattern is not None:
        fits = text.str.fullmatch(rule.pattern).fillna(True).to_numpy(dtype=bool)
        off = present & ~bad & ~fits
        rej.add(off, col.name, rule.code, f"{col.name}: {rule.words}")
        bad = bad | off
    return bad


def _control_reasons(text: pd.Series) -> Reason:
    def build(rows: np.ndarray) -> list[str]:
        out = []
        for value in text.iloc[rows]:
            m = _CONTROL.search(str(value))
            at = m.start() + 1 if m else 0
            code = ord(m.group()) if m else 0
            out.append(f"control character U+{code:04X} at position {at}")
        return out

    return build


def frame_from_records(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """JSON rows (the API's) as a raw input frame, the contract's columns in order.

    Scalars become the text a CSV file would hold (missing and null are empty;
    ``true`` is ``true``); objects and lists are kept as they are, so validation
    rejects them by name (``not_scalar``) instead of storing their ``str()``.
    """

    def cell(v: object) -> object:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        return v

    return pd.DataFrame(
        {c: pd.Series([cell(r.get(c)) for r in rows], dtype=object) for c in columns}
    )


def _parse_number(col: Column, raw: pd.Series, present: np.ndarray, rej: _Rejections) -> pd.Series:
    """A numeric column: a finite number (whole for ``int``) within the column's bounds.

    A rejected value becomes NA, so nothing non-finite or huge reaches the good rows
    (or the cast to ``Int64``).
    """
    textual = raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)
    numbers = pd.to_numeric(_as_text(raw) if textual else raw, errors="coerce").astype("float64")
    values = numbers.to_numpy()
    shown = _as_text(raw)
    infinite = present & np.isinf(values)
    failed = present & np.isnan(values)
    if col.kind == "int":
        finite = np.where(np.isfinite(values), values, 0.0)
        failed |= present & ~infinite & (np.floor(finite) != finite)
    whole = col.kind == "int"
    rej.add(
        failed,
        col.name,
        "bad_int" if whole else "bad_number",
        _quoted(f"not {'a whole number' if whole else 'a number'}: '{{v}}'", shown),
    )
    rej.add(infinite, col.name, "not_finite", _quoted("not a finite number: '{v}'", shown))
    ok = present & ~failed & ~infinite
    for bound, word in ((col.min_value, "below"), (col.max_value, "above")):
        if bound is None:
            continue
        beyond = ok & ((values < bound) if word == "below" else (values > bound))
        rej.add(
            beyond,
            col.name,
            "out_of_range",
            _quoted(f"{col.name} {{v}} is {word} {bound:g}", shown),
        )
        ok &= ~beyond
    numbers = numbers.where(ok)
    return numbers.round().astype("Int64") if whole else numbers


def _parse_table(
    raw: pd.DataFrame, columns: tuple[Column, ...], rej: _Rejections, today: date | None
) -> pd.DataFrame:
    today = today or today_local()
    problem = raw.attrs.get(READ_PROBLEM)
    if problem is not None:  # not a table at all: one line for the whole file
        rej.whole_file("*", *problem)
        raw = pd.DataFrame({c.name: pd.Series(dtype=object) for c in columns})
    if RAGGED_COLUMN in raw.columns:
        counts = raw[RAGGED_COLUMN].reset_index(drop=True)
        width = len(raw.columns) - 1
        rej.add(
            counts.notna().to_numpy(),
            "*",
            "ragged_row",
            lambda rows: [f"{counts.iloc[r]} fields; the header has {width}" for r in rows],
        )
    absent = [c.name for c in columns if c.required and c.name not in raw.columns]
    for name in absent:
        rej.whole_file(name, "missing_column", f"required column '{name}' is missing")
    out: dict[str, pd.Series] = {}
    for col in columns:
        if col.name in raw.columns:
            series = raw[col.name].reset_index(drop=True)
            out[col.name] = _parse_column(col, series, rej, today)
        else:
            # An absent column: every value missing, reported once (above) if required.
            empty = pd.Series([None] * len(raw), dtype=object)
            out[col.name] = _parse_column(replace(col, required=False), empty, rej, today)
    return pd.DataFrame(out)


def _duplicates(
    frame: pd.DataFrame, key: str, ok: np.ndarray, rej: _Rejections
) -> tuple[np.ndarray, int]:
    """Reject conflicting copies of an id; keep exact duplicates once."""
    keys = frame[key]
    dup_any = keys.duplicated(keep=False).to_numpy() & ok
    if not dup_any.any():
        return ok, 0
    sub = frame[dup_any]
    distinct = sub.drop_duplicates().groupby(key, sort=False).size()
    conflicting = keys.isin(distinct.index[distinct > 1]).to_numpy() & dup_any
    rej.add(
        conflicting,
        key,
        "duplicate_conflict",
        f"{key} appears more than once with different values",
    )
    exact_dupes = frame.duplicated(keep="first").to_numpy() & dup_any & ~conflicting
    return ok & ~conflicting & ~exact_dupes, int(exact_dupes.sum())


def validate_persons(
    raw: pd.DataFrame, file: str = "persons", *, today: date | None = None
) -> Validated:
    """Validate a persons table; see the module docstring for the rules.

    ``today`` (default: :func:`today_local`) anchors the plausible range of dates.
    """
    rej = _Rejections(file, len(raw))
    frame = _parse_table(raw, PERSON_COLUMNS, rej, today)
    both = frame["program_start"].notna() & frame["program_end"].notna()
    rej.add(
        (both & (frame["program_end"] < frame["program_start"])).to_numpy(),
        "program_end",
        "end_before_start",
        "program_end is before program_start",
    )
    years = frame["first_use_year"].notna() & frame["birth_year"].notna()
    early = years & (frame["first_use_year"] < frame["birth_year"])
    rej.add(
        early.fillna(False).to_numpy(),
        "first_use_year",
        "first_use_before_birth",
        "first_use_year is before birth_year",
    )
    keep, dropped = _duplicates(frame, "person_id", ~rej.bad, rej)
    return _validated(frame, keep, rej, dropped)


def validate_events(
    raw: pd.DataFrame,
    known_person_ids: Iterable[str] | pd.Index,
    file: str = "events",
    *,
    today: date | None = None,
) -> Validated:
    """Validate an events table against the persons known (in the file or stored)."""
    rej = _Rejections(file, len(raw))
    frame = _parse_table(raw, EVENT_COLUMNS, rej, today)
    frame["recorded_at"] = frame["recorded_at"].fillna(frame["ts"])
    early = (frame["recorded_at"] < frame["ts"]).fillna(False).to_numpy()
    rej.add(early, "recorded_at", "recorded_before_ts", "recorded_at is before ts")
    _check_results(frame, rej)
    known = (
        pd.Index(known_person_ids)
        if not isinstance(known_person_ids, pd.Index)
        else known_person_ids
    )
    unknown = frame["person_id"].notna() & ~frame["person_id"].isin(known)
    rej.add(
        unknown.to_numpy(),
        "person_id",
        "unknown_person",
        _quoted("no person with person_id '{v}'", frame["person_id"]),
    )
    keep, dropped = _duplicates(frame, "event_id", ~rej.bad, rej)
    return _validated(frame, keep, rej, dropped)


def _validated(frame: pd.DataFrame, keep: np.ndarray, rej: _Rejections, dropped: int) -> Validated:
    return Validated(
        frame[keep].reset_index(drop=True), rej.frame(), dropped, np.flatnonzero(keep) + 1
    )


def _check_results(frame: pd.DataFrame, rej: _Rejections) -> None:
    """Results restricted by type (check-ins, tests, exits) must be one of theirs."""
    result = frame["result"]
    for event_type in EVENT_TYPES:
        allowed = EVENT_RESULTS[event_type]
        if not allowed:
            continue
        of_type = (frame["type"] == event_type).fillna(False).to_numpy()
        if not of_type.any():
            continue
        bad = of_type & ~result.isin(allowed).to_numpy()
        rej.add(
            bad,
            "result",
            "bad_result",
            _quoted(f"{event_type} needs a result in ({', '.join(allowed)}), got '{{v}}'", result),
        )

"""Ingest mappings: a source's own file names, columns and codes, turned into the contract.

Contract: :func:`load_mapping` parses a YAML file into a :class:`SourceMapping`
(pydantic, ``extra="forbid"``: a misspelt key is an error that names it) and
checks it against :mod:`features.contract` — every target column, every mapped
value of an enumeration, a test or exit result or a coded free-text column
must be one the contract declares. :meth:`SourceMapping.apply` then turns the
raw frames of one load into frames with the contract's column names and
values, *before* validation (:mod:`features.validate` is unchanged and judges
the result as it would judge any input).

Per table (``persons``, ``events``) a mapping may give:

``file``       the file's stem in the folder (``patients`` → ``patients.parquet``
               or ``patients.csv``; a name ending in ``.csv``/``.parquet`` is used
               as is); default the contract's table name.
``columns``    ``{source column: contract column}``. A source column already
               named like a contract column (and not renamed) is kept as is;
               every other source column is ignored and listed in the report.
``values``     ``{contract column: {source code: contract value}}``. Codes are
               compared as text, exactly, after trimming blanks. ``null`` as a
               target means "missing" (optional columns only). A non-empty
               value with no entry is passed on unchanged and *counted* per
               column and value in the report; validation then rejects it by
               name if the contract does not allow it. A row is never dropped
               or added here, so rejection row numbers are the file's rows.
``constants``  ``{contract column: value}`` for columns the source does not have
               (e.g. ``program: community_detox``).
``dates``      ``{contract column: strptime format}`` for dates and times that
               are not ISO 8601 (e.g. ``"%d/%m/%Y"``); a value that does not
               match is passed on as sent and rejected by validation.

Values of free-text columns (``marital``, ``education``) are never echoed into
the report: their unmapped values are counted, not shown. The mapping's name,
version and :meth:`SourceMapping.fingerprint` (a hash of its parsed content)
go into every ingest report made with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from features.contract import (
    EVENT_CODED_RESULTS,
    EVENT_COLUMNS,
    LOCAL_TZ,
    PERSON_COLUMNS,
    Column,
)
from features.validate import RAGGED_COLUMN, READ_PROBLEM

Table = Literal["persons", "events"]
TABLES: dict[Table, tuple[Column, ...]] = {"persons": PERSON_COLUMNS, "events": EVENT_COLUMNS}
_SUFFIXES = (".parquet", ".csv")
#: Unmapped values listed per column in a report; the rest are summed in one line.
MAX_UNMAPPED_SHOWN = 50


class MappingError(ValueError):
    """A mapping file that cannot be read or does not fit the contract."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class TableMapping(_Strict):
    """How one source table becomes one contract table."""

    file: str | None = None
    columns: dict[str, str] = {}
    values: dict[str, dict[str, str | None]] = {}
    constants: dict[str, str] = {}
    dates: dict[str, str] = {}

    @field_validator("values", mode="before")
    @classmethod
    def _no_yaml_booleans(cls, value: object) -> object:
        if isinstance(value, dict):
            for column, codes in value.items():
                if isinstance(codes, dict):
                    for code, target in codes.items():
                        if isinstance(code, bool) or isinstance(target, bool):
                            raise ValueError(
                                f"{column}: YAML read a yes/no/on/off/true/false as a "
                                "boolean; put the code in quotes"
                            )
        return value

    @field_validator("file")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and ("/" in value or "\\" in value or not value.strip()):
            raise ValueError(f"file must be a name inside the folder, got {value!r}")
        return value


class SourceMapping(_Strict):
    """A parsed, checked mapping file. Build with :func:`load_mapping`."""

    name: str
    version: str
    description: str = ""
    persons: TableMapping = TableMapping()
    events: TableMapping = TableMapping()

    @model_validator(mode="after")
    def _fits_the_contract(self) -> SourceMapping:
        problems = [p for t in TABLES for p in _check_table(t, self.table(t))]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def table(self, table: Table) -> TableMapping:
        """The mapping of one table."""
        return self.persons if table == "persons" else self.events

    def fingerprint(self) -> str:
        """A short stable hash of the parsed mapping (comments and layout do not count)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def find_input(self, directory: Path, table: Table) -> Path | None:
        """The table's file in ``directory`` (Parquet wins over CSV), or None."""
        name = self.table(table).file or table
        if name.endswith(_SUFFIXES):
            path = directory / name
            return path if path.exists() else None
        for suffix in _SUFFIXES:
            candidate = directory / f"{name}{suffix}"
            if candidate.exists():
                return candidate
        return None

    def apply(
        self, table: Table, raw: pd.DataFrame, file: str = ""
    ) -> tuple[pd.DataFrame, TableReport]:
        """Rename, recode, fill and parse one raw frame; see the module docstring."""
        return _apply_table(self.table(table), TABLES[table], raw, table, file)


@dataclass(frozen=True)
class Unmapped:
    """Rows of a mapped column whose value has no entry in the mapping."""

    column: str
    value: str
    rows: int


@dataclass
class TableReport:
    """What a mapping did to one table."""

    table: Table
    file: str
    #: source column -> contract column, for every column taken from the file.
    columns: dict[str, str] = field(default_factory=dict)
    #: Source columns the mapping does not use.
    ignored_columns: list[str] = field(default_factory=list)
    #: Source columns the mapping names but the file lacks.
    missing_columns: list[str] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (for the ingest report)."""
        return {
            "table": self.table,
            "file": self.file,
            "columns": self.columns,
            "ignored_columns": self.ignored_columns,
            "missing_columns": self.missing_columns,
            "unmapped": [vars(u) for u in self.unmapped],
        }


@dataclass
class MappingReport:
    """Which mapping was applied to a load, and what it could not map."""

    name: str
    version: str
    fingerprint: str
    path: str
    tables: list[TableReport] = field(default_factory=list)

    @property
    def unmapped(self) -> list[tuple[str, Unmapped]]:
        """(file, unmapped value) for every table."""
        return [(t.file, u) for t in self.tables for u in t.unmapped]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (for the ingest report)."""
        return {
            "name": self.name,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "path": self.path,
            "tables": [t.as_dict() for t in self.tables],
        }


def load_mapping(path: Path | str) -> SourceMapping:
    """Read and check a mapping YAML; any problem is a :class:`MappingError` naming it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise MappingError(f"{path}: no such mapping file") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"{path.name}: a mapping file is a YAML mapping with name and version")
    try:
        return SourceMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(
            f"{path.name}: " + "; ".join(_describe(e) for e in exc.errors())
        ) from exc


def apply_mapping(
    mapping: SourceMapping,
    persons_raw: pd.DataFrame | None,
    events_raw: pd.DataFrame | None,
    persons_file: str = "persons",
    events_file: str = "events",
    path: Path | str | None = None,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, MappingReport]:
    """Apply ``mapping`` to the raw frames of one load (None stays None)."""
    where = str(Path(path).resolve()) if path is not None else ""
    report = MappingReport(mapping.name, mapping.version, mapping.fingerprint(), where)
    frames: dict[Table, pd.DataFrame | None] = {"persons": persons_raw, "events": events_raw}
    files: dict[Table, str] = {"persons": persons_file, "events": events_file}
    for table, raw in list(frames.items()):
        if raw is None or READ_PROBLEM in raw.attrs:  # unreadable: rejected whole, by name
            continue
        mapped, table_report = mapping.apply(table, raw, files[table])
        if RAGGED_COLUMN in raw.columns:  # rows keep their place: the marks still apply
            mapped[RAGGED_COLUMN] = raw[RAGGED_COLUMN].to_numpy()
        frames[table] = mapped
        report.tables.append(table_report)
    return frames["persons"], frames["events"], report


def _describe(error: object) -> str:
    assert isinstance(error, dict)
    loc = tuple(str(part) for part in error["loc"])
    where = ".".join(loc)
    if error["type"] == "extra_forbidden":
        model: type[BaseModel] = (
            TableMapping if len(loc) == 2 and loc[0] in TABLES else SourceMapping
        )
        known = ", ".join(model.model_fields)
        return f"unknown key '{loc[-1]}' at {where} (known keys: {known})"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _allowed(table: Table, col: Column) -> tuple[str, ...]:
    """Values the contract declares for a column (empty: any value)."""
    if col.kind == "enum":
        return col.choices
    if col.coded:
        return col.coded
    if table == "events" and col.name == "result":
        return tuple(dict.fromkeys(r for rs in EVENT_CODED_RESULTS.values() for r in rs))
    return ()


def _check_table(table: Table, spec: TableMapping) -> list[str]:
    by_name = {c.name: c for c in TABLES[table]}
    known = ", ".join(by_name)
    problems: list[str] = []

    def column(where: str, name: str) -> Column | None:
        if name not in by_name:
            problems.append(f"{table}.{where}: '{name}' is not a {table} column ({known})")
            return None
        return by_name[name]

    def target(where: str, col: Column, value: str | None) -> None:
        if value is None:
            if col.required:
                problems.append(f"{table}.{where}: {col.name} is required, it cannot map to null")
            return
        allowed = _allowed(table, col)
        if allowed and value not in allowed:
            problems.append(
                f"{table}.{where}: '{value}' is not a {col.name} value ({', '.join(allowed)})"
            )

    sources: dict[str, str] = {}
    for source, name in spec.columns.items():
        if column(f"columns.{source}", name) is None:
            continue
        if name in sources:
            problems.append(
                f"{table}.columns: '{sources[name]}' and '{source}' both map to '{name}'"
            )
        sources[name] = source
    for name, value in spec.constants.items():
        col = column(f"constants.{name}", name)
        if col is None:
            continue
        if name in sources:
            problems.append(
                f"{table}.constants.{name}: also mapped from column '{sources[name]}'; keep one"
            )
        target(f"constants.{name}", col, value)
    for name, codes in spec.values.items():
        col = column(f"values.{name}", name)
        if col is not None:
            for code, mapped in codes.items():
                target(f"values.{name}.{code}", col, mapped)
    for name, fmt in spec.dates.items():
        col = column(f"dates.{name}", name)
        if col is not None and col.kind not in ("date", "datetime"):
            problems.append(f"{table}.dates.{name}: {name} is not a date or time column")
        if "%" not in fmt:
            problems.append(
                f"{table}.dates.{name}: '{fmt}' is not a strptime format (e.g. %d/%m/%Y)"
            )
    return problems


def _as_text(series: pd.Series) -> pd.Series:
    """Values as trimmed text (whole floats without '.0'); empty and missing become NA."""
    if pd.api.types.is_float_dtype(series.dtype):
        whole = series.dropna()
        if (whole == whole.round()).all():
            series = series.astype("Int64")
    text = series.astype("string").str.strip()
    return text.mask(text == "")


def _apply_table(
    spec: TableMapping, columns: tuple[Column, ...], raw: pd.DataFrame, table: Table, file: str
) -> tuple[pd.DataFrame, TableReport]:
    report = TableReport(table, file or table)
    renamed = {target: source for source, target in spec.columns.items()}
    raw = raw.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    for col in columns:
        if col.name in spec.constants:
            out[col.name] = pd.Series([spec.constants[col.name]] * len(raw), dtype="string")
            continue
        source = renamed.get(col.name)
        if source is None and col.name in raw.columns and col.name not in spec.columns:
            source = col.name
        if source is None:
            continue
        if source not in raw.columns:
            report.missing_columns.append(source)
            continue
        report.columns[source] = col.name
        series = raw[source]
        if col.name in spec.values:
            series = _recode(series, spec.values[col.name], col, report)
        if col.name in spec.dates:
            series = _parse_dates(series, spec.dates[col.name], col.kind == "date")
        out[col.name] = series
    report.ignored_columns = [str(c) for c in raw.columns if c not in report.columns]
    return pd.DataFrame(out, index=raw.index), report


def _recode(
    series: pd.Series, codes: dict[str, str | None], col: Column, report: TableReport
) -> pd.Series:
    text = _as_text(series)
    known = text.isin(list(codes)).to_numpy()
    recoded = text.map(codes).astype("string")
    result = text.where(~known, recoded)
    left = text[~known & text.notna().to_numpy()]
    if left.empty:
        return result
    if col.free_text:
        report.unmapped.append(
            Unmapped(col.name, f"({left.nunique()} distinct; free text, not shown)", len(left))
        )
        return result
    counts = sorted(left.value_counts().items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    for value, rows in counts[:MAX_UNMAPPED_SHOWN]:
        report.unmapped.append(Unmapped(col.name, str(value), int(rows)))
    rest = counts[MAX_UNMAPPED_SHOWN:]
    if rest:
        report.unmapped.append(
            Unmapped(col.name, f"({len(rest)} more distinct values)", sum(int(r) for _, r in rest))
        )
    return result


def _parse_dates(series: pd.Series, fmt: str, date_only: bool) -> pd.Series:
    """Parse with ``fmt`` into ISO 8601 text; values that do not match are kept as sent."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series
    text = _as_text(series)
    if "%z" in fmt:
        aware = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        parsed = aware.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    else:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    iso = parsed.dt.strftime("%Y-%m-%d" if date_only else "%Y-%m-%dT%H:%M:%S.%f")
    return iso.astype("string").where(parsed.notna(), text)

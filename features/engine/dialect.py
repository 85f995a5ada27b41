"""SQL dialects of the one catalog compiler: DuckDB (the reference) and Spark SQL.

Contract: :mod:`features.engine.sql_backend` and :mod:`features.engine.sql_events`
write every rule once, in terms of a :class:`Dialect`; a dialect only renders the
few primitives the two engines spell differently, never a rule. :data:`DUCKDB`
is the default everywhere; :data:`SPARK` (Spark SQL 4, ANSI mode, session time
zone UTC so that ``CAST(naive AS TIMESTAMP)`` keeps naive local times) is what
:mod:`features.engine.spark` runs.

The differences, all of spelling or of a speed trick, none of meaning:

* times: ``epoch_us`` / ``make_timestamp`` vs ``unix_micros`` / ``timestamp_micros``;
  integer division ``//`` vs ``div`` (both truncate toward zero);
* aggregates: ``arg_max``/``arg_min``/``list`` vs ``max_by``/``min_by``/``collect_list``;
  an ordered list of structs is ``list(... ORDER BY ...)`` vs ``array_sort`` of
  structs whose leading fields are the sort keys;
* list lambdas: DuckDB's 1-based ``range``/``list_transform``/``list_sum`` vs
  Spark's ``transform`` with a 0-based index and ``aggregate``; reading past the
  end is NULL in both (``try_element_at`` in Spark, whose ANSI mode raises on
  ``element_at``);
* window counts: DuckDB packs every window's count into one HUGEINT sum per event
  filter (a speed trick, see ``_Aggregates``); Spark has no 128-bit integer, so it
  counts each (filter, window) with its own ``count(*) FILTER``;
* types: ``VARCHAR``/``UTINYINT`` vs ``STRING``/``TINYINT``.
"""

from __future__ import annotations

from collections.abc import Callable


class Dialect:
    """DuckDB's spelling (the SQL reference)."""

    name = "duckdb"
    #: Window counts packed into one HUGEINT sum per event filter.
    packed_counts = True
    string = "VARCHAR"
    code = "UTINYINT"

    def epoch_us(self, value: str) -> str:
        """Microseconds since the epoch of a date or naive timestamp, as naive local time."""
        return f"epoch_us(CAST({value} AS TIMESTAMP))"

    def timestamp(self, micros: str) -> str:
        """The naive timestamp of ``micros``."""
        return f"make_timestamp({micros})"

    def idiv(self, a: str, b: object) -> str:
        """Integer division, truncating toward zero."""
        return f"({a} // {b})"

    def arg_max(self, value: str, key: str) -> str:
        return f"arg_max({value}, {key})"

    def arg_min(self, value: str, key: str) -> str:
        return f"arg_min({value}, {key})"

    def collect(self, value: str) -> str:
        """The values of a group as a list (with a FILTER after it)."""
        return f"list({value})"

    def count_where(self, values: str, var: str, predicate: str) -> str:
        """How many elements ``var`` of the list ``values`` satisfy ``predicate``."""
        return f"len(list_filter({values}, lambda {var}: {predicate}))"

    def collect_sorted(self, fields: dict[str, str], keys: list[str], where: str) -> str:
        """The structs ``fields`` of the group's rows where ``where`` holds, as a list
        ordered by ``keys`` (ascending); NULL or empty when no row does."""
        struct = ", ".join(f"'{k}': {v}" for k, v in fields.items())
        return f"list({{{struct}}} ORDER BY {', '.join(keys)}) FILTER (WHERE {where})"

    def sum_pairs(self, items: str, term: Callable[[str, str], str]) -> str:
        """Sum of ``term(item, next item)`` over a list (next is NULL after the last)."""
        body = term(f"{items}[i]", f"{items}[i + 1]")
        return f"list_sum(list_transform(range(1, len({items}) + 1), lambda i: {body}))"

    def int128(self, value: int) -> str:
        return f"CAST('{value}' AS HUGEINT)"


class SparkDialect(Dialect):
    """Spark SQL's spelling (ANSI mode, session time zone UTC)."""

    name = "spark"
    packed_counts = False
    string = "STRING"
    code = "TINYINT"

    def epoch_us(self, value: str) -> str:
        return f"unix_micros(CAST({value} AS TIMESTAMP))"

    def timestamp(self, micros: str) -> str:
        return f"timestamp_micros({micros})"

    def idiv(self, a: str, b: object) -> str:
        return f"({a} div {b})"

    def arg_max(self, value: str, key: str) -> str:
        return f"max_by({value}, {key})"

    def arg_min(self, value: str, key: str) -> str:
        return f"min_by({value}, {key})"

    def collect(self, value: str) -> str:
        return f"collect_list({value})"

    def count_where(self, values: str, var: str, predicate: str) -> str:
        return f"size(filter({values}, {var} -> {predicate}))"

    def collect_sorted(self, fields: dict[str, str], keys: list[str], where: str) -> str:
        # array_sort orders structs field by field: the sort keys lead, the fields follow
        leading = [f"'_k{i}', {k}" for i, k in enumerate(keys)]
        rest = [f"'{k}', {v}" for k, v in fields.items()]
        struct = f"named_struct({', '.join(leading + rest)})"
        return f"array_sort(collect_list({struct}) FILTER (WHERE {where}))"

    def sum_pairs(self, items: str, term: Callable[[str, str], str]) -> str:
        body = term("_e", f"try_element_at({items}, _i + 2)")
        return f"aggregate(transform({items}, (_e, _i) -> {body}), 0L, (_acc, _x) -> _acc + _x)"

    def int128(self, value: int) -> str:
        raise NotImplementedError("Spark SQL has no 128-bit integer: counts are not packed")


DUCKDB = Dialect()
SPARK = SparkDialect()
DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, SPARK)}

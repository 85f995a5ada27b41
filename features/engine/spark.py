"""The Spark backend: the same catalog, compiled by the same compiler, run by Spark SQL.

Contract:

* :class:`SparkBackend` is a :class:`~features.engine.protocol.Backend`:
  ``evaluate(session, rows, catalog, config)`` returns the features and cohort
  status the array engine returns, column for column and row for row (dtypes
  included: int32 counts and days, int8 flags, float64 sums). The query is
  :func:`features.engine.sql_backend.feature_query` in the
  :data:`~features.engine.dialect.SPARK` dialect and the events relation is
  :mod:`features.engine.sql_events`' three steps in the same dialect: no rule
  is written here.
* :func:`spark_features` is the job form for large inputs: persons and events
  are read by Spark from Parquet (a file or a folder of part files, e.g. one
  hive partition per person bucket), events are repartitioned by ``person_id``
  (so the point-in-time join and the per-row aggregates stay inside a
  partition), and the entity rows (everyone whose agreement spans each date, as
  :func:`features.jobs.entity_rows`) are built by Spark too. Nothing goes
  through the driver but the dates. It returns a Spark DataFrame: person_id,
  as_of, the catalog's columns, for rows in the cohort.
* :func:`spark_session` starts (or reuses) a session with what the dialect
  needs: session time zone UTC (naive local times stay naive), ANSI mode,
  Parquet timestamps without a zone read as ``TIMESTAMP_NTZ``; no UI; the
  driver bound to ``SPARK_LOCAL_IP`` (default 127.0.0.1).

Times. The contract's times are naive local (Asia/Shanghai) timestamps. A
zoned timestamp column is turned into local wall-clock time on reading, as the
array engine does (:func:`features.engine.records.load_events`). Sources given as
pandas frames are written to Parquet first (a temporary folder), so both paths
read the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import Catalog, load_catalog
from features.config import LabelConfig, load_label_config
from features.contract import LOCAL_TZ
from features.engine.codes import DAY_US
from features.engine.dialect import SPARK
from features.engine.protocol import CHUNK_ROWS, Evaluated
from features.engine.session import EntityRows, Session, Source
from features.engine.sql_backend import feature_query
from features.engine.sql_events import SUP_QUERY, ev_query, raw_query

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_MASTER = "local[2]"
#: What the Spark dialect relies on (set on every session, also a reused one).
SQL_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.legacy.sizeOfNull": "false",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
#: Quiet defaults for a new session (no UI, no progress bars, few shuffle partitions).
START_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}


def spark_session(
    master: str = DEFAULT_MASTER,
    *,
    app_name: str = "sunflower-features",
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """A Spark session with :data:`SQL_CONF` (``getOrCreate``: reused when running)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in (START_CONF | SQL_CONF | (conf or {})).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in SQL_CONF.items():  # a reused session gets them too
        spark.conf.set(key, value)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_parquet(spark: SparkSession, path: str | Path) -> DataFrame:
    """A Parquet file or folder, zoned timestamps turned into naive local time."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    frame = spark.read.parquet(str(path))
    for field in frame.schema.fields:
        if isinstance(field.dataType, TimestampType):  # zoned: an instant -> local wall clock
            local = F.from_utc_timestamp(F.col(field.name), LOCAL_TZ).cast("timestamp_ntz")
            frame = frame.withColumn(field.name, local)
    return frame


def register_sources(spark: SparkSession, persons: DataFrame, events: DataFrame) -> None:
    """Temp views ``per`` and ``ev`` (cached, events partitioned by person)."""
    persons.createOrReplaceTempView("persons_src")
    spark.sql("SELECT * FROM persons_src").cache().createOrReplaceTempView("per")
    events.repartition("person_id").createOrReplaceTempView("events_src")
    raw = spark.sql(raw_query("events_src", SPARK)).cache()
    raw.createOrReplaceTempView("ev_raw")
    sup = spark.sql(SUP_QUERY).cache()
    sup.createOrReplaceTempView("sup")
    corrections = sup.limit(1).count() > 0
    spark.sql(ev_query(SPARK, corrections=corrections)).cache().createOrReplaceTempView("ev")


def _as_parquet(source: Source, folder: Path, name: str) -> Path:
    if isinstance(source, pd.DataFrame):
        path = folder / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(source, preserve_index=False), path)
        return path
    return Path(source)


def _evaluated(frame: pd.DataFrame, catalog: Catalog, cohort_only: bool) -> Evaluated:
    status = frame["_status"].to_numpy(dtype=object)
    if cohort_only:
        return Evaluated(pd.DataFrame(index=pd.RangeIndex(len(frame))), status)
    names = [c for c in frame.columns if c not in {"row_id", "person_id", "as_of"}]
    features = frame[[c for c in names if not c.startswith("_")]]
    return Evaluated(features.reset_index(drop=True), status)


class SparkBackend:
    """The catalog on Spark SQL, behind :class:`features.engine.protocol.Backend`."""

    name = "spark"

    def __init__(self, master: str = DEFAULT_MASTER, spark: SparkSession | None = None) -> None:
        self.master = master
        self._spark = spark
        self._session_id: int | None = None  # the engine Session whose sources are registered
        self._tmp: Path | None = None

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            self._spark = spark_session(self.master)
        return self._spark

    def _register(self, session: Session) -> None:
        if self._session_id == id(session):
            return
        self.close()
        self._tmp = Path(tempfile.mkdtemp(prefix="sunflower-spark-"))
        persons = read_parquet(self.spark, _as_parquet(session.persons_src, self._tmp, "persons"))
        events = read_parquet(self.spark, _as_parquet(session.events_src, self._tmp, "events"))
        register_sources(self.spark, persons, events)
        self._session_id = id(session)

    def evaluate(
        self,
        session: Session,
        rows: EntityRows,
        catalog: Catalog,
        config: LabelConfig,
        *,
        cohort_only: bool = False,
        chunk_rows: int = CHUNK_ROWS,
    ) -> Evaluated:
        """:func:`feature_query` (Spark dialect) over the session's sources; rows in order."""
        from pyspark.sql.types import LongType, StringType, StructField, StructType

        self._register(session)
        sql = feature_query(
            catalog,
            exclude_transferred_out=config.cohort.exclude_transferred_out,
            cohort_only=cohort_only,
            dialect=SPARK,
        )
        schema = StructType(
            [
                StructField("row_id", LongType(), False),
                StructField("person_id", StringType(), False),
                StructField("as_us", LongType(), False),
            ]
        )
        parts = []
        for lo in range(0, max(len(rows), 1), chunk_rows):
            part = rows.take(slice(lo, lo + chunk_rows))
            ent = pd.DataFrame(
                {
                    "row_id": np.arange(lo, lo + len(part), dtype="int64"),
                    "person_id": part.person.astype(str),
                    "as_us": part.as_us.astype("int64"),
                }
            )
            self.spark.createDataFrame(ent, schema).createOrReplaceTempView("ent")
            parts.append(self.spark.sql(sql).toPandas())
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return _evaluated(frame, catalog, cohort_only)

    def close(self) -> None:
        """Drop the registered sources' caches and temporary files (the Spark session stays)."""
        if self._session_id is not None and self._spark is not None:
            for view in ("per", "ev_raw", "sup", "ev"):
                if self._spark.catalog.tableExists(view):
                    self._spark.catalog.uncacheTable(view)
        self._session_id = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def spark_features(
    spark: SparkSession,
    persons: str | Path,
    events: str | Path,
    dates: Iterable[pd.Timestamp],
    *,
    catalog: Catalog | None = None,
    config: LabelConfig | None = None,
) -> DataFrame:
    """Features of everyone in the cohort on each date, read and computed by Spark.

    Entity rows are the persons whose agreement spans the date (programme start
    on or before it, planned end on or after the day before), as the embedded
    job's; rows whose cohort status is not ``active`` are left out. Columns:
    person_id, as_of (naive timestamp), then the catalog's features.
    """
    catalog, config = catalog or load_catalog(), config or load_label_config()
    register_sources(spark, read_parquet(spark, persons), read_parquet(spark, events))
    days = sorted({pd.Timestamp(d).normalize().value // 1000 for d in dates})
    spark.createDataFrame(
        pd.DataFrame({"as_us": np.asarray(days, dtype="int64")})
    ).createOrReplaceTempView("dates")
    start = SPARK.epoch_us("p.program_start")
    end = f"({SPARK.epoch_us('p.program_end')} + {DAY_US})"
    spark.sql(f"""
SELECT monotonically_increasing_id() AS row_id, CAST(p.person_id AS STRING) AS person_id, d.as_us
FROM per p CROSS JOIN dates d
WHERE {start} <= d.as_us AND d.as_us < {end}
""").repartition("person_id").createOrReplaceTempView("ent")
    sql = feature_query(
        catalog, exclude_transferred_out=config.cohort.exclude_transferred_out, dialect=SPARK
    )
    result = spark.sql(sql)
    features = [c for c in result.columns if c not in {"row_id"} and not c.startswith("_")]
    from pyspark.sql import functions as F

    return (
        result.where(F.col("_in_cohort"))
        .select(*features)
        .withColumn("as_of", F.col("as_of").cast("timestamp_ntz"))
    )


def write_features(frame: DataFrame, out: Path) -> Path:
    """Write :func:`spark_features`' rows as ``out/features.parquet`` (a folder of parts)."""
    path = out / "features.parquet"
    frame.sortWithinPartitions("as_of", "person_id").write.mode("overwrite").parquet(str(path))
    return path


def read_features(path: Path) -> pd.DataFrame:
    """A written features folder as one frame, by as_of then person_id."""
    frame = pq.read_table(str(path)).to_pandas()
    return frame.sort_values(["as_of", "person_id"], kind="stable").reset_index(drop=True)


def describe(spark: SparkSession) -> dict[str, Any]:
    """Version and master of a Spark session (for manifests)."""
    return {"spark": spark.version, "master": spark.sparkContext.master}

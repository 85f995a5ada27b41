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
* :func:`spark_labels` gives both labels of such rows with the one label rule
  (:func:`features.labels.compute_labels`) run per person bucket in
  ``cogroup(...).applyInPandas``; :func:`run_spark_features_job` writes the
  embedded job's columns (features, then ``label_<outcome>``) as a folder of
  Parquet parts plus a manifest (``sunflower features --engine spark``).
* :func:`spark_session` starts (or reuses) a session with what the dialect
  needs: session time zone UTC (naive local times stay naive), ANSI mode,
  Parquet timestamps without a zone read as ``TIMESTAMP_NTZ``; no UI; the
  driver bound to ``SPARK_LOCAL_IP`` (default 127.0.0.1); with a ``local``
  master the Python workers run this interpreter (``PYSPARK_PYTHON``). On a
  cluster the executors need the project installed (or shipped with
  ``--archives``) for the label step; the feature step is SQL only.

Times. The contract's times are naive local (Asia/Shanghai) timestamps. A
zoned timestamp column is turned into local wall-clock time on reading, as the
array engine does (:func:`features.engine.records.code_events`). Sources given as
pandas frames are written to Parquet first (a temporary folder), so both paths
read the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import AlertSettings, Catalog, load_catalog
from features.config import OUTCOMES, LabelConfig, config_record, load_label_config
from features.contract import LOCAL_TZ, PERSON_COLUMN_NAMES
from features.engine.alert_rules import raise_alerts
from features.engine.codes import DAY_US
from features.engine.dialect import SPARK
from features.engine.protocol import CHUNK_ROWS, Alerts, Evaluated
from features.engine.session import EntityRows, Session, Source
from features.engine.sql_backend import alert_inputs, alert_query, feature_query
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
    if master.startswith("local"):  # local workers run this interpreter (cluster: its own)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
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


def _evaluated(
    frame: pd.DataFrame, catalog: Catalog, cohort_only: bool, alerts: Alerts | None = None
) -> Evaluated:
    status = frame["_status"].to_numpy(dtype=object)
    if cohort_only:
        return Evaluated(pd.DataFrame(index=pd.RangeIndex(len(frame))), status, alerts)
    names = [c for c in frame.columns if c not in {"row_id", "person_id", "as_of"}]
    features = frame[[c for c in names if not c.startswith("_")]]
    return Evaluated(features.reset_index(drop=True), status, alerts)


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
        alerts: AlertSettings | None = None,
    ) -> Evaluated:
        """:func:`feature_query` (Spark dialect) over the session's sources; rows in order.

        Given ``alerts``, :func:`alert_query` (Spark dialect) gives each chunk's
        aggregates and the one set of rules (:func:`raise_alerts`) raises them.
        """
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
        alert_sql = None if alerts is None else alert_query(catalog, alerts, SPARK)
        parts, raised = [], []
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
            if alerts is not None and alert_sql is not None:
                got = alert_inputs(catalog, self.spark.sql(alert_sql).toPandas())
                raised.append((raise_alerts(catalog, alerts, got), lo))
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        found = Alerts.concat(raised, [a.name for a in catalog.alerts]) if raised else None
        return _evaluated(frame, catalog, cohort_only, found)

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
        catalog,
        exclude_transferred_out=config.cohort.exclude_transferred_out,
        dialect=SPARK,
        ordered=False,
    )
    result = spark.sql(sql)
    features = [c for c in result.columns if c not in {"row_id"} and not c.startswith("_")]
    from pyspark.sql import functions as F

    return (
        result.where(F.col("_in_cohort"))
        .select(*features)
        .withColumn("as_of", F.col("as_of").cast("timestamp_ntz"))
    )


def _label_schema(outcomes: Sequence[str]) -> str:
    return ", ".join(
        ["person_id string", "as_us bigint"] + [f"label_{o} tinyint" for o in outcomes]
    )


def spark_labels(
    spark: SparkSession,
    rows: DataFrame,
    *,
    config: LabelConfig | None = None,
    horizon_days: int | None = None,
    buckets: int | None = None,
) -> DataFrame:
    """Both labels of ``rows`` (person_id, as_us), computed where the person's events are.

    Needs :func:`register_sources`' views. Rows and events are grouped by person
    bucket (``buckets`` groups, default the shuffle partitions) and each group
    runs the one label rule (:func:`features.labels.compute_labels`, final
    versions of events) on its own persons, with the data snapshot time of the
    whole input (the latest ``recorded_at`` of a known person's event): nothing
    about a label is written here. Returns person_id, as_us, ``label_<outcome>``
    (1, 0, or null = unknown).
    """
    from pyspark.sql import functions as F

    config = config or load_label_config()
    horizon = int(horizon_days or config.horizon_days)
    outcomes = [o for o in OUTCOMES if o in config.outcomes]
    observed = spark.sql(
        "SELECT max(rec_us) FROM ev_raw e LEFT SEMI JOIN per p ON p.person_id = e.person_id"
    ).first()[0]  # type: ignore[index]
    observed_us = int(observed or 0)
    n = int(buckets or int(spark.conf.get("spark.sql.shuffle.partitions") or 8))
    bucket = F.pmod(F.hash("person_id"), F.lit(n)).alias("_bucket")
    person_cols = [c for c in spark.table("per").columns if c in PERSON_COLUMN_NAMES]
    left = rows.join(spark.table("per").select(*person_cols), "person_id").select(bucket, "*")
    right = spark.table("events_src").select(bucket, "*")
    schema = _label_schema(outcomes)

    def label_group(ent: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        from features.labels import compute_labels

        out = pd.DataFrame(
            {"person_id": ent["person_id"].astype(str), "as_us": ent["as_us"].astype("int64")}
        )
        if ent.empty:
            return out.assign(**{f"label_{o}": pd.Series(dtype="Int8") for o in outcomes})
        persons = ent[person_cols].drop_duplicates("person_id").reset_index(drop=True)
        entities = pd.DataFrame(
            {"person_id": out["person_id"], "as_of": out["as_us"].astype("datetime64[us]")}
        )
        with Session.open(persons, events.drop(columns="_bucket")) as session:
            rows_ = session.rows(entities)
            for o in outcomes:
                out[f"label_{o}"] = compute_labels(
                    session, rows_, config, o, horizon, observed_us
                ).to_numpy()
        return out

    return (
        left.groupBy("_bucket").cogroup(right.groupBy("_bucket")).applyInPandas(label_group, schema)
    )


def run_spark_features_job(
    persons: str | Path,
    events: str | Path,
    *,
    out: Path,
    dates: list[pd.Timestamp],
    spark: SparkSession | None = None,
    master: str = DEFAULT_MASTER,
    horizon_days: int | None = None,
    catalog: Catalog | None = None,
    config: LabelConfig | None = None,
) -> dict[str, Any]:
    """``sunflower features --engine spark``: features and labels of the cohort rows.

    Writes ``out/features.parquet`` (a folder of Parquet parts; the embedded
    job's columns: person_id, as_of, the catalog's features, ``label_<outcome>``)
    and ``out/manifest.json`` (engine, Spark version and master, dates,
    versions, rows by as_of, label rates, seconds). Returns the manifest.
    """
    from pyspark.sql import functions as F

    started = time.perf_counter()
    catalog, config = catalog or load_catalog(), config or load_label_config()
    horizon = int(horizon_days or config.horizon_days)
    spark = spark or spark_session(master)
    features = spark_features(spark, persons, events, dates, catalog=catalog, config=config)
    features = features.withColumn(
        "_as_us", F.unix_micros(F.col("as_of").cast("timestamp"))
    ).cache()
    labels = spark_labels(
        spark,
        features.select("person_id", F.col("_as_us").alias("as_us")),
        config=config,
        horizon_days=horizon,
    ).withColumnRenamed("as_us", "_as_us")
    outcomes = [o for o in OUTCOMES if o in config.outcomes]
    frame = features.join(labels, ["person_id", "_as_us"], "left").drop("_as_us")
    frame = frame.select(
        *[c for c in features.columns if c != "_as_us"], *[f"label_{o}" for o in outcomes]
    )
    out.mkdir(parents=True, exist_ok=True)
    path = write_features(frame, out)
    written = spark.read.parquet(str(path))
    per_date = {
        str(r["as_of"].date()): int(r["n"])
        for r in written.groupBy("as_of").agg(F.count("*").alias("n")).orderBy("as_of").collect()
    }
    rates = {}
    for o in outcomes:
        row = written.agg(
            F.count(f"label_{o}").alias("known"), F.sum(f"label_{o}").alias("positive")
        ).first()
        known, positive = int(row["known"]), int(row["positive"] or 0)  # type: ignore[index]
        rates[o] = {
            "known": known,
            "positive": positive,
            "rate": positive / known if known else None,
        }
    features.unpersist()
    manifest = {
        "job": "features",
        "engine": "spark",
        **describe(spark),
        "as_of_dates": [str(pd.Timestamp(d).date()) for d in dates],
        "catalog_version": catalog.catalog_version,
        "label_config_version": config.config_version,
        "label_config": {**config_record(config), "values": config.model_dump(mode="json")},
        "horizon_days": horizon,
        "rows": sum(per_date.values()),
        "rows_by_as_of": per_date,
        "label_rates": rates,
        "features": [f.name for f in catalog.features()],
        "output": path.name,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    return manifest


def write_features(frame: DataFrame, out: Path) -> Path:
    """Write :func:`spark_features`' rows as ``out/features.parquet`` (a folder of parts)."""
    path = out / "features.parquet"
    frame.sortWithinPartitions("as_of", "person_id").write.mode("overwrite").parquet(str(path))
    return path


def read_features(path: Path) -> pd.DataFrame:
    """A written features folder as one frame, by as_of then person_id."""
    frame: pd.DataFrame = pq.read_table(str(path)).to_pandas()
    return frame.sort_values(["as_of", "person_id"], kind="stable").reset_index(drop=True)


def describe(spark: SparkSession) -> dict[str, Any]:
    """Version and master of a Spark session (for manifests)."""
    return {"spark": spark.version, "master": spark.sparkContext.master}

"""Champions on Spark: probabilities with ``mlflow.pyfunc.spark_udf``, drivers in ``mapInPandas``.

Contract:

* :func:`spark_probabilities` adds ``p_<outcome>`` to a Spark frame of features
  (:func:`features.engine.spark.spark_features`' columns; extra columns ride
  along) by applying the logged model as MLflow's Spark UDF. The model is the
  self-contained pyfunc (:mod:`models.pyfunc`: its code and pinned
  requirements travel with it), so ``env_manager="local"`` runs it in the
  executors' own interpreter and ``"virtualenv"``/``"uv"`` in an environment
  MLflow builds from the model's ``requirements.txt`` alone. The values are
  the champion's :meth:`~models.champion.Champion.predict`, row for row.
* :func:`spark_explanations` adds, per row, the probability, the top-k drivers
  (JSON, as :func:`models.champion.drivers_json`) and the plan item ids (JSON
  list) with :meth:`DataFrame.mapInPandas`: each batch is explained by the
  champion's explainer on the TreeSHAP tables
  (:meth:`models.predictor.CalibratedBooster.batch_contributions`), the same
  numbers and words as the embedded job.

Spark is imported only when these run; nothing here writes to the service
database (publishing a Spark run is issue 18's item 2, not done here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.champion import Champion, drivers_json

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Columns :func:`spark_explanations` adds (``<outcome>`` filled in).
EXPLANATION_COLUMNS = ("p_{o}", "drivers_{o}", "plan_items_{o}")


def model_features(model_uri: str) -> list[str]:
    """The logged model's input columns, in order (its signature)."""
    from mlflow.models import Model

    signature = Model.load(model_uri).signature  # reads MLmodel (downloads it when remote)
    if signature is None:
        raise ValueError(f"{model_uri}: the model has no signature; log it with models.pyfunc")
    return list(signature.inputs.input_names())


def spark_probabilities(
    spark: SparkSession,
    features: DataFrame,
    model_uri: str,
    outcome: str,
    *,
    env_manager: str = "local",
) -> DataFrame:
    """``features`` with ``p_<outcome>``: the logged model applied by ``spark_udf``."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    names = model_features(model_uri)
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager=env_manager)
    columns = [F.col(n).cast("double").alias(n) for n in names]
    return features.withColumn(f"p_{outcome}", udf(F.struct(*columns)))


def explain_frame(champion: Champion, frame: pd.DataFrame, top_k: int = 5) -> pd.DataFrame:
    """Probability, drivers (JSON) and plan items (JSON) of each row of ``frame``."""
    o = champion.outcome
    if frame.empty:
        return pd.DataFrame({c.format(o=o): pd.Series(dtype=t) for c, t in zip(
            EXPLANATION_COLUMNS, ("float64", "string", "string"), strict=True
        )})  # fmt: skip
    X = np.ascontiguousarray(frame[champion.feature_names].to_numpy(dtype=np.float64))
    contributions = champion.predictor.batch_contributions(X)
    drivers = champion.explainer.explain(X, contributions, top_k)
    return pd.DataFrame(
        {
            f"p_{o}": champion.predict(X),
            f"drivers_{o}": [drivers_json(d) for d in drivers],
            f"plan_items_{o}": [json.dumps(champion.plan_items(d)) for d in drivers],
        }
    )


def spark_explanations(
    features: DataFrame, champion: Champion, *, keys: tuple[str, ...] = ("person_id", "as_of"),
    top_k: int = 5,
) -> DataFrame:  # fmt: skip
    """``keys`` plus :data:`EXPLANATION_COLUMNS` for every row, explained batch by batch."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    o = champion.outcome
    fields = [features.schema[k] for k in keys]
    schema = StructType(
        [
            *fields,
            StructField(f"p_{o}", DoubleType()),
            StructField(f"drivers_{o}", StringType()),
            StructField(f"plan_items_{o}", StringType()),
        ]
    )
    wanted = [*keys, *champion.feature_names]

    def explain_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            out = explain_frame(champion, batch, top_k)
            yield pd.concat([batch[list(keys)].reset_index(drop=True), out], axis=1)

    return features.select(*wanted).mapInPandas(explain_batches, schema)

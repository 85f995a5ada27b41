"""``sunflower features``: write point-in-time features (+ labels) and a manifest.

Contract: thin wiring over :func:`features.jobs.run_features_job`. Inputs are
Parquet files (``--data DIR`` with persons.parquet / events.parquet, default
``$SUNFLOWER_HOME/district``); output goes to ``--out`` (default
``$SUNFLOWER_HOME/features/<as_of or panel>``). ``--engine spark`` runs the
same catalog and label rule on Spark (:func:`features.engine.spark.run_spark_features_job`,
``--master``, default ``local[2]``); features.parquet is then a folder of parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``features`` command to the console app."""

    @app.command("features")
    def features_cmd(
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="One date: everyone in the cohort.")
        ] = None,
        panel: Annotated[
            tuple[str, str] | None,
            typer.Option("--panel", help="START END: a training panel of dates."),
        ] = None,
        every: Annotated[str, typer.Option("--every", help="Panel step: 1M, 2W, 7D, 1Y.")] = "1M",
        data: Annotated[
            Path | None, typer.Option("--data", help="Folder with persons/events Parquet.")
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Output folder.")] = None,
        labels: Annotated[
            Path | None,
            typer.Option("--labels", help="Label config YAML; default the home's, else shipped."),
        ] = None,
        engine: Annotated[
            str,
            typer.Option(
                "--engine", help="embedded (one machine) or spark (the same catalog on Spark)."
            ),
        ] = "embedded",
        master: Annotated[
            str, typer.Option("--master", help="Spark master with --engine spark.")
        ] = "local[2]",
    ) -> None:
        """Write features.parquet and manifest.json for one as_of or a panel."""
        from common.settings import get_settings
        from features.config import use_label_file
        from features.jobs import run_features_job

        if labels is not None:
            use_label_file(labels)

        if (as_of is None) == (panel is None):
            raise typer.BadParameter("give exactly one of --as-of DATE or --panel START END")
        home = get_settings().home
        data = data or home / "district"
        tag = as_of if as_of else f"panel-{panel[0]}-{panel[1]}-{every}"  # type: ignore[index]
        out = out or home / "features" / str(tag)
        if engine not in {"embedded", "spark"}:
            raise typer.BadParameter("--engine: embedded or spark")
        if engine == "spark":
            import pandas as pd

            from features.engine.spark import run_spark_features_job
            from features.jobs import panel_dates

            dates = panel_dates(*panel, every) if panel else [pd.Timestamp(str(as_of))]
            manifest = run_spark_features_job(
                data / "persons.parquet",
                data / "events.parquet",
                out=out,
                dates=[d.normalize() for d in dates],
                master=master,
            )
        else:
            manifest = run_features_job(
                data / "persons.parquet",
                data / "events.parquet",
                out=out,
                as_of=as_of,
                panel=(panel[0], panel[1], every) if panel else None,
            )
        summary = {k: manifest[k] for k in ("rows", "label_rates", "seconds")}
        typer.echo(json.dumps({"out": str(out), **summary}, ensure_ascii=False))

"""``sunflower features``: write point-in-time features (+ labels) and a manifest.

Contract: thin wiring over :func:`features.jobs.run_features_job`. Inputs are
Parquet files (``--data DIR`` with persons.parquet / events.parquet, default
``$SUNFLOWER_HOME/district``); output goes to ``--out`` (default
``$SUNFLOWER_HOME/features/<as_of or panel>``). The lead adds
``cli_features.register(app)`` to :mod:`sunflower.cli`.
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
    ) -> None:
        """Write features.parquet and manifest.json for one as_of or a panel."""
        from features.config import use_label_file
        from features.jobs import run_features_job
        from features.settings import get_settings

        if labels is not None:
            use_label_file(labels)

        if (as_of is None) == (panel is None):
            raise typer.BadParameter("give exactly one of --as-of DATE or --panel START END")
        home = get_settings().home
        data = data or home / "district"
        tag = as_of if as_of else f"panel-{panel[0]}-{panel[1]}-{every}"  # type: ignore[index]
        out = out or home / "features" / str(tag)
        manifest = run_features_job(
            data / "persons.parquet",
            data / "events.parquet",
            out=out,
            as_of=as_of,
            panel=(panel[0], panel[1], every) if panel else None,
        )
        summary = {k: manifest[k] for k in ("rows", "label_rates", "seconds")}
        typer.echo(json.dumps({"out": str(out), **summary}, ensure_ascii=False))

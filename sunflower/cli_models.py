"""Model subcommands: ``train --outcome ...`` and ``retrain --as-of DATE``.

Contract: parse options, load the inputs (``--data DIR`` in the input contract,
or the service database), call :func:`models.retrain.train_and_decide` per
outcome and print the fold metrics, the model/oracle ratios and the decision.
``train`` uses everything known now; ``retrain`` only what was known before
``--as-of``. Both register a new version and move ``champion`` only if the
gates pass. Exit 0 on success (promoted or not), 1 on an input error.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from common.settings import get_settings
from features.config import OUTCOMES

if TYPE_CHECKING:
    from features.config import Outcome
    from models.panel import InputData
    from models.retrain import Decision

console = Console()
err = Console(stderr=True)
CONFIG_HELP = "Model config YAML; default SUNFLOWER_HOME/config/models.yaml, else the shipped one."
LABELS_HELP = "Label config YAML; default SUNFLOWER_HOME/config/labels.yaml, else the shipped one."
SHOWN = {
    "roc_auc": "AUC",
    "pr_auc": "PR-AUC",
    "brier": "Brier",
    "ece": "ECE",
    "precision_at_10pct": "P@10%",
    "recall_at_10pct": "R@10%",
    "precision_at_2_per_worker": "P@2/wk",
}


def _inputs(data: Path | None, truth: Path | None) -> InputData:
    from models.panel import load_dir, load_store

    settings = get_settings()
    if data is not None:
        return load_dir(data, truth)
    default_truth = settings.home / "district" / "truth.parquet"
    return load_store(settings.db_url, truth or (default_truth if default_truth.exists() else None))


def _show(decision: Decision) -> None:
    result = decision.result
    if result is not None:
        table = Table(title=f"{decision.outcome}: test folds (latest first)")
        for col in ("fold", "model", *SHOWN.values()):
            table.add_column(col, justify="left" if col == "model" else "right")
        for f in result.folds:
            for model, m in f.metrics.items():
                table.add_row(str(f.fold.index), model, *[f"{m[k]:.3f}" for k in SHOWN])
        console.print(table)
        for f in result.folds:
            periods = f.fold.describe()
            console.print(
                f"fold {f.fold.index}: train {periods['train']}, "
                f"valid {periods['valid']}, test {periods['test']}, {f.trees} trees"
            )
        if result.fold_note:
            console.print(f"[yellow]note:[/yellow] {result.fold_note}")
        latest = result.latest
        if latest.ratios:
            ratios = ", ".join(f"{k} {v:.3f}" for k, v in latest.ratios.items())
            console.print(f"latest fold model/oracle: {ratios}")
        beats = all(f.beats_baselines() for f in result.folds)
        console.print(f"LightGBM beats both baselines on every fold: {beats}")
    verdict = "[green]promoted[/green]" if decision.promoted else "[yellow]not promoted[/yellow]"
    console.print(
        f"{decision.outcome}: version {decision.version} {verdict} "
        f"(champion before: {decision.champion_before or 'none'})"
    )
    for reason in decision.reasons:
        console.print(f"  - {reason}")


def _run(
    outcomes: tuple[str, ...],
    data: Path | None,
    truth: Path | None,
    config: Path | None,
    as_of: datetime | None,
    labels: Path | None = None,
    debug: bool = False,
) -> None:
    """Train; any failure is one sentence on stderr and exit 1 (the traceback with --debug)."""
    try:
        _train(outcomes, data, truth, config, as_of, labels)
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if debug:
            raise
        what = str(exc) if isinstance(exc, ValueError | FileNotFoundError) else (
            f"{type(exc).__name__}: {exc}"
        )  # fmt: skip
        err.print(f"[red]error:[/red] {what} (run with --debug for the traceback)")
        raise typer.Exit(1) from None


def _train(
    outcomes: tuple[str, ...],
    data: Path | None,
    truth: Path | None,
    config: Path | None,
    as_of: datetime | None,
    labels: Path | None,
) -> None:
    import pandas as pd
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

    from features.config import load_label_config, use_label_file
    from models import registry
    from models.config import load_config
    from models.retrain import train_and_decide

    if labels is not None:
        use_label_file(labels)
    load_label_config()  # a bad label file stops here, before any work
    cfg = load_config(config)
    inputs = _inputs(data, truth)
    client = registry.connect()
    cutoff = pd.Timestamp(as_of) if as_of else None
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    for outcome in outcomes:
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task(outcome, total=None)

            def step(msg: str, bar: Progress = bar, task: TaskID = task) -> None:
                bar.update(task, description=msg)

            decision = train_and_decide(
                inputs, cast("Outcome", outcome), cfg, client, as_of=cutoff, progress=step
            )
        _show(decision)


def train(
    outcome: Annotated[str, typer.Option(help="relapse or loss_of_contact")],
    data: Annotated[Path | None, typer.Option(help="Input folder; default the database.")] = None,
    config: Annotated[Path | None, typer.Option(help=CONFIG_HELP)] = None,
    truth: Annotated[Path | None, typer.Option(help="truth.parquet for oracle metrics.")] = None,
    labels: Annotated[Path | None, typer.Option(help=LABELS_HELP)] = None,
    debug: Annotated[bool, typer.Option(help="Show the traceback of a failure.")] = False,
) -> None:
    """Train one outcome's model on all data, evaluate it, register it, gate the champion."""
    if outcome not in OUTCOMES:
        err.print(f"[red]error:[/red] --outcome must be one of {', '.join(OUTCOMES)}")
        raise typer.Exit(1)
    _run((outcome,), data, truth, config, None, labels, debug)


def retrain(
    as_of: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Use data known before.")],
    data: Annotated[Path | None, typer.Option(help="Input folder; default the database.")] = None,
    config: Annotated[Path | None, typer.Option(help=CONFIG_HELP)] = None,
    truth: Annotated[Path | None, typer.Option(help="truth.parquet for oracle metrics.")] = None,
    labels: Annotated[Path | None, typer.Option(help=LABELS_HELP)] = None,
    debug: Annotated[bool, typer.Option(help="Show the traceback of a failure.")] = False,
) -> None:
    """Train challengers for both outcomes on data known at a date; promote if gates pass."""
    _run(OUTCOMES, data, truth, config, as_of, labels, debug)


def register(app: typer.Typer) -> None:
    """Add the model subcommands to the ``sunflower`` app."""
    app.command()(train)
    app.command()(retrain)

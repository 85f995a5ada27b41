"""Data subcommands: ``simulate`` (a synthetic district) and ``ingest DIR``.

Contract: parse options, call :func:`simulator.simulate` or
:func:`features.ingest.ingest_dir` (with a :mod:`features.mapping` for
``--mapping FILE``), and print what happened. ``ingest`` exits 0
when every row was stored or already there, 3 when some rows were rejected
(the good ones are still stored), and 1 on an error that stored nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from common.settings import get_settings

if TYPE_CHECKING:
    from features.mapping import MappingReport

console = Console()
err = Console(stderr=True)

EXIT_REJECTED = 3


def _date(text: str) -> date:
    return datetime.strptime(text, "%Y-%m-%d").date()


def simulate(
    persons: Annotated[int, typer.Option(help="How many people enter over the period.")] = 3000,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2023-01-01",
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")] = "2025-12-31",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 1,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("var/district"),
    truth: Annotated[bool, typer.Option(help="Write truth.parquet (true probabilities).")] = True,
    report: Annotated[bool, typer.Option(help="Print the realism report afterwards.")] = False,
) -> None:
    """Simulate a district's caseload in the input contract, plus its ground truth."""
    from rich.progress import Progress

    from simulator import realism_report
    from simulator import simulate as run_simulation

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("simulating", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = run_simulation(
            persons=persons,
            start=_date(start),
            end=_date(end),
            seed=seed,
            out=out,
            truth=truth,
            progress=tick,
        )
    console.print(f"[green]simulated[/green] {summary}")
    console.print(
        f"wrote {out}/persons.parquet, {out}/events.parquet"
        + (f", {out}/truth.parquet" if truth else "")
    )
    if report:
        console.print(realism_report(out))


def ingest(
    directory: Annotated[
        Path,
        typer.Argument(help="Folder with persons.* and events.* (or the files --mapping names)"),
    ],
    show: Annotated[int, typer.Option(help="Rejection lines to print.")] = 20,
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="YAML mapping a source's file names, columns and codes to the contract "
            "(docs/data-contract.md).",
        ),
    ] = None,
) -> None:
    """Validate and store persons and events (CSV or Parquet) in the service database.

    A ``placement.yaml`` in the folder (the district's placement bases, as the
    simulator writes it) is checked and installed in SUNFLOWER_HOME/config first.
    """
    from features.ingest import ingest_dir
    from features.mapping import load_mapping
    from features.placement import install_placement_config
    from features.store import make_engine

    settings = get_settings()
    try:
        source_mapping = load_mapping(mapping) if mapping is not None else None
        bases = directory / "placement.yaml"
        if bases.exists():  # the district's placement bases (docs/duties.md)
            installed, placement = install_placement_config(bases)
            console.print(f"placement bases: {len(placement.bases)} installed in {installed}")
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    engine = make_engine(settings.db_url)
    try:
        with err.status("ingesting…") as status:
            result = ingest_dir(
                engine,
                directory,
                settings.reports_dir,
                progress=lambda msg: status.update(msg),
                mapping=source_mapping,
                mapping_path=mapping,
            )
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table(title=f"ingest run {result.run_id} ({result.seconds:.1f} s)")
    for col in (
        "table",
        "received",
        "stored",
        "already stored",
        "rejected rows",
        "exact duplicates",
    ):
        table.add_column(col, justify="right" if col != "table" else "left")
    for name, c in (("persons", result.persons), ("events", result.events)):
        table.add_row(
            name,
            f"{c.received:,}",
            f"{c.stored:,}",
            f"{c.already:,}",
            f"{c.rejected:,}",
            f"{c.duplicates_dropped:,}",
        )
    console.print(table)
    if result.mapping is not None:
        _print_mapping(result.mapping, show)
    if not result.ok:
        shown = result.rejections.head(show)
        rej = Table(title=f"rejected ({len(result.rejections):,} lines; first {len(shown)})")
        for col in ("file", "row", "column", "code", "reason"):
            rej.add_column(col)
        for line in shown.itertuples(index=False):
            rej.add_row(*(str(v) for v in line))
        err.print(rej)
    if result.mapping is None:  # with a mapping, its report names the unused columns
        for name, cols in result.ignored_columns.items():
            console.print(f"{name}: columns not in the contract, not stored: {', '.join(cols)}")
    console.print(f"report: {result.report_path}")
    if not result.ok:
        raise typer.Exit(EXIT_REJECTED)


def _print_mapping(report: MappingReport, show: int) -> None:
    """The mapping used, and the values it had no entry for."""
    console.print(f"mapping: {report.name} {report.version} ({report.fingerprint})")
    for t in report.tables:
        if t.ignored_columns:
            console.print(f"{t.file}: columns not used: {', '.join(t.ignored_columns)}")
        if t.missing_columns:
            err.print(f"{t.file}: mapped columns not in the file: {', '.join(t.missing_columns)}")
    unmapped = report.unmapped
    if not unmapped:
        return
    shown = unmapped[:show]
    more = f"; first {len(shown)}" if len(shown) < len(unmapped) else ""
    table = Table(title=f"not in the mapping ({len(unmapped):,}{more})")
    for col in ("file", "column", "value", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for file, u in shown:
        table.add_row(file, u.column, u.value, f"{u.rows:,}")
    err.print(table)


def register(app: typer.Typer) -> None:
    """Add the data subcommands to the ``sunflower`` app."""
    app.command()(simulate)
    app.command()(ingest)

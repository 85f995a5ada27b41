"""Serving subcommands: ``score``, ``serve`` and ``users`` (accounts and tokens).

Contract: parse options, build :func:`serving.settings.get_settings`, call one
function of :mod:`serving`, print what happened. ``score`` exits 1 when no
champion model can be loaded; ``users token`` prints the token once (only its
hash is stored).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

console = Console()
err = Console(stderr=True)

users_app = typer.Typer(help="Accounts and bearer tokens.", no_args_is_help=True)


def _engine() -> Engine:
    from features.store import make_engine
    from serving.db import migrate
    from serving.settings import get_settings

    engine = make_engine(get_settings().db_url)
    migrate(engine)
    return engine


def score(
    day: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD; default today.")] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Label config YAML (cohort rules); default the home's."),
    ] = None,
) -> None:
    """Score everyone in the cohort on DATE with both champions and publish the lists."""
    from features.config import use_label_file
    from serving.champions import ChampionSet, registry_loader

    if labels is not None:
        use_label_file(labels)
    from serving.daily.job import score_date
    from serving.settings import get_settings

    settings = get_settings()
    as_of = datetime.strptime(day, "%Y-%m-%d").date() if day else date.today()
    champions = ChampionSet(registry_loader(settings.tracking_uri))
    loaded = champions.reload()
    if not champions.ready:
        for outcome, why in loaded.errors.items():
            err.print(f"[red]error:[/red] {outcome}: {why}")
        err.print("train and promote champions first: `sunflower train --outcome ...`")
        raise typer.Exit(1)
    engine = _engine()
    try:
        with err.status("scoring…") as status:
            summary = score_date(
                engine, as_of, loaded.champions, progress=lambda m: status.update(m)
            )
    except Exception as exc:
        _record_failure(engine, as_of, exc)
        raise
    console.print(
        f"[green]published[/green] run {summary.run_id} for {summary.as_of}: "
        f"{summary.n_persons:,} persons × {len(summary.models)} outcomes in "
        f"{summary.seconds:.1f} s"
        + (f" (replaced run {', '.join(map(str, summary.replaced))})" if summary.replaced else "")
    )
    console.print(f"models: {summary.models}")
    console.print(f"alerts: {summary.alerts or 'none'}")
    console.print(f"timings (s): {summary.timings}")
    from sunflower.cli_monitor import monitor_day, show

    try:  # the lists are published: a monitor failure is reported, never fatal
        with err.status("monitoring…") as status:
            show(monitor_day(_engine(), as_of, lambda m: status.update(m)))
    except Exception as exc:  # noqa: BLE001
        err.print(f"[yellow]monitor:[/yellow] {type(exc).__name__}: {exc}")


def _record_failure(engine: Engine, as_of: date, exc: BaseException) -> None:
    """One row in ``score_failures`` (its own transaction: the run rolled back)."""
    from features.contract import local_now
    from serving.db import score_failures

    try:
        with engine.begin() as conn:
            conn.execute(
                score_failures.insert().values(
                    as_of=as_of,
                    at=local_now().replace(microsecond=0),
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                )
            )
    except Exception as again:  # noqa: BLE001 - the scoring error is the one to show
        err.print(f"[yellow]could not record the failure:[/yellow] {again}")


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the API (docs at /docs). SIGHUP reloads the champion models."""
    import uvicorn

    from serving.app import create_app

    # uvloop + httptools: uvicorn's fast path (pinned dependencies); no access log on the
    # busiest path — requests are counted in /metrics and person reads are in the audit log.
    uvicorn.run(
        create_app(),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Account name (never a real name).")],
    role: Annotated[str, typer.Option(help="worker, supervisor, model_owner, integrator, admin")],
    worker_id: Annotated[str | None, typer.Option(help="worker: the persons' worker_id")] = None,
    district: Annotated[str | None, typer.Option(help="supervisor: district (区)")] = None,
    town: Annotated[str | None, typer.Option(help="supervisor: one town (街镇) of it")] = None,
    token: Annotated[bool, typer.Option(help="Also issue a token and print it.")] = True,
) -> None:
    """Create an account."""
    from serving.auth import add_user, issue_token

    engine = _engine()
    try:
        add_user(engine, username, role, worker_id=worker_id, district=district, town=town)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"created {username} ({role})")
    if token:
        console.print(f"token (shown once): {issue_token(engine, username)}")


@users_app.command("token")
def users_token(
    username: str,
    days: Annotated[
        int | None, typer.Option(help="Expire after N days (1-365; default 90).")
    ] = None,
) -> None:
    """Issue a new bearer token (printed once; only its hash is stored)."""
    from serving.auth import issue_token

    try:
        console.print(issue_token(_engine(), username, days=days))
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@users_app.command("revoke")
def users_revoke(username: str) -> None:
    """Revoke every token of an account."""
    from serving.auth import revoke_tokens

    try:
        console.print(f"revoked {revoke_tokens(_engine(), username)} token(s)")
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@users_app.command("list")
def users_list() -> None:
    """List accounts and their scope."""
    from serving.auth import list_users

    table = Table()
    for col in ("username", "role", "worker_id", "district", "town", "active"):
        table.add_column(col)
    for u in list_users(_engine()):
        table.add_row(
            *(
                str(u[c] or "")
                for c in ("username", "role", "worker_id", "district", "town", "active")
            )
        )
    console.print(table)


@users_app.command("demo")
def users_demo(
    host: Annotated[str, typer.Option(help="Host the server will listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the server will listen on.")] = 8000,
) -> None:
    """Create one demo account per role and print their tokens (for `make run`)."""
    from serving.demo import create_demo_accounts

    try:
        accounts = create_demo_accounts(_engine())
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print("demo accounts (tokens valid 30 days; shown once):")
    for a in accounts:
        console.print(f"  {a.username:<17} {a.role:<12} {a.token}  ({a.scope})", soft_wrap=True)
    worker = accounts[0]
    base = f"http://{host}:{port}"
    console.print(f"API docs: {base}/docs", soft_wrap=True)
    console.print(
        f"Pages (网页): open {base}/ and sign in with a user name and token above, "
        f"e.g. {worker.username} (my list) or demo-town (town view)",
        soft_wrap=True,
    )
    console.print(
        f"A worker opens their list: curl -H 'Authorization: Bearer {worker.token}' "
        f"{base}/api/v1/risk-lists/me",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the serving subcommands to the ``sunflower`` app."""
    app.command()(score)
    app.command()(serve)
    app.add_typer(users_app, name="users")

"""Configuration subcommands: ``config init`` and ``config show``.

Contract: ``init`` copies the shipped label and model configuration files
(``features/labels.yaml``, ``models/config/default.yaml``) to
``SUNFLOWER_HOME/config/labels.yaml`` and ``models.yaml``, where a district
edits its own rules; it never overwrites an existing file unless ``--force``.
``show`` prints the files in force (explicit ``SUNFLOWER_LABELS``, the home's,
or the shipped default), their versions and the sha256 of their parsed values,
after validating them. Exit 1 when a file in force is invalid.
"""

from __future__ import annotations

import shutil
from typing import Annotated

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)
config_app = typer.Typer(help="District configuration under SUNFLOWER_HOME/config.")


@config_app.command()
def init(
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Copy the shipped labels.yaml and models.yaml into SUNFLOWER_HOME/config to edit."""
    from features.config import LABELS_PATH, home_config_dir
    from models.config import DEFAULT_CONFIG

    target = home_config_dir()
    target.mkdir(parents=True, exist_ok=True)
    for source, name in ((LABELS_PATH, "labels.yaml"), (DEFAULT_CONFIG, "models.yaml")):
        dest = target / name
        if dest.exists() and not force:
            console.print(f"kept {dest} (exists; --force overwrites)")
            continue
        shutil.copyfile(source, dest)
        console.print(f"wrote {dest}")


@config_app.command()
def show() -> None:
    """Which label and model files are in force, their versions and fingerprints."""
    from features.config import config_record, load_label_config
    from models.config import load_config

    try:
        records = {
            "labels": config_record(load_label_config()),
            "models": config_record(load_config()),
        }
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for kind, r in records.items():
        console.print(
            f"{kind}: {r['source']}  version {r['config_version']}  sha256 {r['sha256'][:16]}"
        )


def register(app: typer.Typer) -> None:
    """Add ``sunflower config`` to the app."""
    app.add_typer(config_app, name="config")

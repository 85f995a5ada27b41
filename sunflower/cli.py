"""The ``sunflower`` console command (DESIGN §6).

Contract: a thin wiring layer. Each subcommand parses its options, builds
settings with :func:`common.settings.get_settings` and calls one function of
a layer; no domain logic lives here. Heavy imports happen inside commands so
``sunflower --help`` stays fast.
"""

from __future__ import annotations

import typer

from sunflower import cli_config, cli_data, cli_features, cli_models, cli_monitor, cli_serving

app = typer.Typer(
    name="sunflower",
    help="Sunflower (向阳花): relapse and loss-of-contact early warning.",
    no_args_is_help=True,
    add_completion=False,
)
cli_config.register(app)
cli_data.register(app)
cli_features.register(app)
cli_models.register(app)
cli_serving.register(app)
cli_monitor.register(app)


if __name__ == "__main__":
    app()

"""The ``astrojepa`` console app: parses arguments, calls the library, prints. No science here."""

from __future__ import annotations

from typing import Annotated

import typer

from astrojepa_cli import __version__
from astrojepa_cli.commands import evaluate, export, fetch, inspect, pretrain, similar
from astrojepa_cli.commands.common import Settings

app = typer.Typer(
    name="astrojepa",
    help="Self-supervised representation learning (LeJEPA, I-JEPA, SIGReg, SimCLR) for astronomical images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"astrojepa {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """astrojepa: pretrain, probe and explore encoders for astronomical images from the command line."""
    Settings.debug = Settings.debug or debug


app.command("fetch-data")(fetch.fetch_data)
app.command("pretrain")(pretrain.pretrain)
app.command("embed")(evaluate.embed)
app.command("probe")(evaluate.probe)
app.command("anomalies")(evaluate.anomalies)
app.command("plot")(evaluate.plot)
app.command("similar")(similar.similar)
app.command("export")(export.export)
app.command("plugins")(inspect.plugins)
app.add_typer(inspect.runs_app, name="runs")


def main() -> None:
    app()

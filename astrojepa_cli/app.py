"""The ``astrojepa`` console app: parses arguments, calls the library, prints. No science here.

The command modules import their library modules (torch, timm, scikit-learn, h5py, matplotlib)
inside the command functions, so ``astrojepa --help`` and every ``--help`` start in well under a second.
"""

from __future__ import annotations

from typing import Annotated

import typer

from astrojepa_cli import __version__
from astrojepa_cli.commands import anomalies, embed, export, fetch, plot, plugins, pretrain, probe, runs, similar
from astrojepa_cli.commands.common import Settings
from astrojepa_cli.commands.explore import explore

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


app.add_typer(fetch.fetch_app, name="fetch-data")
app.command("pretrain")(pretrain.pretrain)
app.command("embed")(embed.embed)
app.command("probe")(probe.probe)
app.command("anomalies")(anomalies.anomalies)
app.add_typer(plot.plot_app, name="plot")
app.command("similar")(similar.similar)
app.command("explore")(explore)
app.command("export")(export.export)
app.command("plugins")(plugins.plugins)
app.add_typer(runs.runs_app, name="runs")

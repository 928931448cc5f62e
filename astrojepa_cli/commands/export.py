"""``astrojepa export``: a run's encoder in a format other tools load without astrojepa."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astrojepa_cli.commands.common import JsonOption, RootOption, RunArgument, cli_command, report
from astrojepa_cli.commands.evaluated_run import warn_if_unfinished
from astrojepa_cli.console import stderr
from astrojepa_cli.errors import UserError

FORMATS = ("timm",)


@cli_command
def export(
    run_ref: RunArgument,
    out: Annotated[Path, typer.Option(help="Folder to write model.safetensors and config.json into.")],
    fmt: Annotated[str, typer.Option("--format", help="Export format: timm.")] = "timm",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Export a run's encoder for plain timm: safetensors weights plus a config.json.

    Load it without astrojepa:

      timm.create_model("local-dir:OUT", pretrained=True)

      timm.create_model(cfg["architecture"], pretrained=True,
      pretrained_cfg_overlay=dict(file="OUT/model.safetensors"), **cfg["model_args"])

    Example: astrojepa export latest --format timm --out my-encoder
    """
    from astrojepa_cli import runs
    from astrojepa_cli.runs.timm_export import export_timm

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)} (got {fmt})")
    run = runs.open_run(run_ref, root)
    warn_if_unfinished(run)
    result = export_timm(run, out)
    report(result, json_output, lambda: stderr.print(
        f"wrote {result['weights']} and {result['config']} ({result['architecture']})", highlight=False, soft_wrap=True))

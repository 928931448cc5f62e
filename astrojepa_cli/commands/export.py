"""``astrojepa export``: a run's encoder (timm) or whole embedding (ONNX) for tools without astrojepa."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astrojepa_cli.commands.common import JsonOption, RootOption, RunArgument, cli_command, report
from astrojepa_cli.commands.evaluated_run import warn_if_unfinished
from astrojepa_cli.console import stderr
from astrojepa_cli.errors import UserError

FORMATS = ("timm", "onnx")


@cli_command
def export(
    run_ref: RunArgument,
    out: Annotated[Path, typer.Option(help="Folder to write the export into (created if needed).")],
    fmt: Annotated[str, typer.Option("--format", help="timm (weights + config for plain timm) or onnx (one model computing the run's embedding; needs the onnx extra).")] = "timm",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Export a run's encoder, with embedding.json and a README.md stating how the run's embedding
    (its normalisation, input size and pooling) is computed, with Python that reproduces `embed`.

    --format timm: model.safetensors and config.json for plain timm; load them without astrojepa:

      timm.create_model("local-dir:OUT", pretrained=True)

      timm.create_model(cfg["architecture"], pretrained=True,
      pretrained_cfg_overlay=dict(file="OUT/model.safetensors"), **cfg["model_args"])

    --format onnx: embedding.onnx, the whole embedding in one model: input "images", (N, H, W, C)
    float32 store pixels in the store's scale; output "embedding", (N, D). Checked with onnxruntime.

    Examples:

      astrojepa export latest --format timm --out my-encoder

      astrojepa export latest --format onnx --out my-embedding
    """
    from astrojepa_cli import runs

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)} (got {fmt})")
    run = runs.open_run(run_ref, root)
    warn_if_unfinished(run)
    if fmt == "onnx":
        from astrojepa_cli.evaluate.onnx_export import export_onnx

        result = export_onnx(run, out)
        message = (f"wrote {result['model']} ({result['embedding_pool']} embedding, {result['output']['shape'][1]}-d; "
                   f"largest difference from PyTorch {result['max_abs_difference']:.1e}) and {result['readme']}")
    else:
        from astrojepa_cli.runs.timm_export import export_timm

        result = export_timm(run, out)
        message = f"wrote {result['weights']} and {result['config']} ({result['architecture']}), and {result['readme']}"
    report(result, json_output, lambda: stderr.print(message, highlight=False, soft_wrap=True))

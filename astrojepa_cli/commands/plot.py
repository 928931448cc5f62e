"""``astrojepa plot RUN`` (figures of one run) and ``astrojepa plot compare RUN RUN...`` (runs overlaid)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from astrojepa_cli.commands.common import (
    DataOption, DeviceOption, JsonOption, RootOption, RunArgument, cli_command, report,
)
from astrojepa_cli.commands.default_command import group_with_default
from astrojepa_cli.commands.evaluated_run import frozen_features, open_with_data
from astrojepa_cli.console import stderr
from astrojepa_cli.errors import UserError

plot_app = typer.Typer(
    cls=group_with_default("run"), no_args_is_help=True,
    help="Figures of a run, or of runs overlaid. 'plot RUN' is short for 'plot run RUN'.\n\n"
         "Examples:\n\n  astrojepa plot latest --latent tsne --pdf\n\n  astrojepa plot compare RUN_A RUN_B RUN_C",
)
PdfOption = Annotated[bool, typer.Option("--pdf", help="Write a PDF beside every PNG.")]


def _report_files(files: list[Path], json_output: bool) -> None:
    report({"files": [str(f) for f in files]}, json_output,
           lambda: stderr.print("\n".join(f"wrote {f}" for f in files), highlight=False, soft_wrap=True))


@plot_app.command("run")
@cli_command
def plot_run(
    run_ref: RunArgument,
    data: DataOption = None,
    latent: Annotated[Optional[str], typer.Option(help="Also draw a latent map: pca, tsne or umap.")] = None,
    patches: Annotated[Optional[str], typer.Option(help="Also draw I-JEPA patch heatmaps for the image with this id.")] = None,
    title: Annotated[Optional[str], typer.Option(
        help="A line above every figure's own title, e.g. the run id or 'Figure 2' (default: none).")] = None,
    pdf: PdfOption = False,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the figures (default: RUN/plots).")] = None,
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Figures of a run: loss terms, monitors per epoch, and every recorded evaluation
    (confusion matrices, few-shot and label-fraction curves, anomaly mosaics);
    optionally a latent map and I-JEPA patch heatmaps.

    Examples:

      astrojepa plot latest --latent tsne --pdf

      astrojepa plot RUN --patches obj12

      astrojepa plot RUN --json | jq -r '.files[]'
    """
    from astrojepa_cli.data import store
    from astrojepa_cli.evaluate.figures import run_figures as figures
    from astrojepa_cli.evaluate.figures.plotting import save_figure
    from astrojepa_cli.train.distributed import resolve_device

    resolved = resolve_device(device)
    if latent is not None:
        from astrojepa_cli.evaluate.explore.latent import check_method

        check_method(latent)
    run, data_name, store_path = open_with_data(run_ref, data, root)
    out_dir = out or run.dir / "plots"
    files = figures.training_figures(run, out_dir, pdf, title) + figures.evaluation_figures(run, out_dir, pdf, title)
    if latent is not None:
        features = frozen_features(run, store_path, device, "none")[0]
        files += figures.latent_map(features, store.read_info(store_path).classes, latent,
                                    out_dir / f"latent-{data_name}-{latent}.png", pdf,
                                    f"map of {data_name} embeddings", title)
    if patches is not None:
        from astrojepa_cli.evaluate.explore.patch_heatmaps import patch_heatmap_figure

        figure = patch_heatmap_figure(run, store_path, patches, resolved, title=title)
        files += save_figure(figure, out_dir / f"patches-{data_name}-{patches}.png", pdf)
    _report_files(files, json_output)


@plot_app.command("compare")
@cli_command
def plot_compare(
    run_refs: Annotated[list[str], typer.Argument(help="Two or more runs (id, name, folder or 'latest').")],
    pdf: PdfOption = False,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the figure (default: ROOT/plots).")] = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Overlay the training curves of several runs in one figure (a new file each time).

    Examples:

      astrojepa plot compare RUN_A RUN_B RUN_C

      astrojepa plot compare RUN_A RUN_B --pdf --json | jq -r '.files[]'
    """
    from astrojepa_cli import paths, runs
    from astrojepa_cli.evaluate.figures.plotting import save_figure, unused_path
    from astrojepa_cli.evaluate.figures.training import compare_figure
    from astrojepa_cli.evaluate.run_compare import run_labels

    if len(run_refs) < 2:
        raise UserError("'plot compare' needs at least two runs")
    compared = [runs.open_run(ref, root) for ref in run_refs]
    target = unused_path((out or paths.home(root) / "plots") / "compare.png")
    _report_files(save_figure(compare_figure(compared, run_labels(compared), f"{len(compared)} runs"), target, pdf),
                  json_output)

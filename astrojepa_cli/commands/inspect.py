"""``astrojepa plugins`` and ``astrojepa runs list|show|compare``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

import registry
from astrojepa_cli import runs as run_store
from astrojepa_cli.commands.common import JsonOption, RootOption, cli_command, report
from astrojepa_cli.console import stderr
from astrojepa_cli.evaluate import run_compare as comparison_tools
from astrojepa_cli.run_summary import run_summary

runs_app = typer.Typer(help="List and inspect runs.", no_args_is_help=True)


@cli_command
def plugins(json_output: JsonOption = False) -> None:
    """List the registered encoders, losses and maskers, with a one-line description each,
    and any third-party plugin that failed to load.

    Examples:

      astrojepa plugins

      astrojepa plugins --json | jq '.loss | keys'
    """
    listing = {kind: registry.describe(kind) for kind in registry.KINDS}
    listing["broken"] = registry.broken()

    def human() -> None:
        for kind, described in listing.items():
            if described:
                table = Table("name", "description" if kind in registry.KINDS else "why it did not load",
                              title=f"{kind} plugins")
                for name, description in described.items():
                    table.add_row(name, description)
                stderr.print(table)

    report(listing, json_output, human)


@runs_app.command("list")
@cli_command
def list_runs(root: RootOption = None, json_output: JsonOption = False) -> None:
    """List runs with their status, data and final loss.

    Example: astrojepa runs list --json | jq -r '.runs[].run_id'
    """
    found = run_store.list_runs(root)

    def part(run: run_store.Run, section: str) -> dict:
        value = run.manifest.get(section)
        return value if isinstance(value, dict) else {}

    rows = [{"run_id": r.id, "status": r.status, "data": part(r, "dataset").get("name"),
             "arch": part(r, "config").get("arch"), "loss": part(r, "config").get("loss"),
             "steps": r.manifest.get("steps"), "final_loss": part(r, "result").get("final_loss")}
            for r in found]

    def human() -> None:
        table = Table(*rows[0].keys()) if rows else Table("run_id")
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        stderr.print(table)

    report({"runs": rows}, json_output, human)


@runs_app.command("show")
@cli_command
def show_run(
    run_ref: Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")],
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """A run in brief: status, method, data, result, last epoch's monitors and each evaluation's score.
    --json prints the whole manifest (config, data, environment, status, metrics and evaluations).

    Example: astrojepa runs show latest --json | jq .evaluations
    """
    run = run_store.open_run(run_ref, root)
    report(run.manifest, json_output, lambda: stderr.print(run_summary(run), highlight=False))


@runs_app.command("compare")
@cli_command
def compare_runs(
    run_refs: Annotated[list[str], typer.Argument(help="Two or more runs (id, folder or 'latest').")],
    spearman: Annotated[bool, typer.Option("--spearman", help="Spearman's rho between final training loss and a probe metric across the runs.")] = False,
    evaluation: Annotated[Optional[str], typer.Option(help="Evaluation key for --spearman (default: DATASET/linear of each run).")] = None,
    metric: Annotated[str, typer.Option(help="Metric of that evaluation for --spearman.")] = "accuracy",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Table of the config values that differ between runs, their final losses and their evaluation results.

    Examples:

      astrojepa runs compare RUN_A RUN_B RUN_C

      astrojepa runs compare RUN_A RUN_B RUN_C --spearman --json | jq .spearman.rho
    """
    runs = [run_store.open_run(ref, root) for ref in run_refs]
    comparison = comparison_tools.compare_runs(runs)
    if spearman:
        comparison["spearman"] = comparison_tools.loss_metric_spearman(runs, evaluation, metric)

    def human() -> None:
        table = Table("", *comparison["runs"], title="run comparison")
        for key, values in comparison["config_differences"].items():
            table.add_row(f"config {key}", *(str(v) for v in values))
        table.add_row("final loss", *(f"{v:.4g}" if v is not None else "-" for v in comparison["final_loss"]))
        for key, found in comparison["evaluations"].items():
            table.add_row(f"{key} ({found['metric']})", *(f"{v:.4f}" if v is not None else "-" for v in found["values"]))
        stderr.print(table)
        if spearman:
            result = comparison["spearman"]
            stderr.print(f"Spearman rho(final loss, {result['metric']}) = {result['rho']:.3f} over {result['n']} runs "
                         f"(p = {result['p_value']})", highlight=False)

    report(comparison, json_output, human)

"""``astrojepa runs list|show|compare|rm|tag|cache``: inspect, compare, delete and name runs, and
list or clear their cached embeddings."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from astrojepa_cli.commands.common import JsonOption, RootOption, RunArgument, cli_command, report
from astrojepa_cli.commands.render import comparison_table, fitting_rows_table, rows_table
from astrojepa_cli.commands.run_summary import latest_evaluation, run_summary
from astrojepa_cli.console import significant, stderr
from astrojepa_cli.errors import UserError

runs_app = typer.Typer(help="List, inspect, compare, delete and name runs.", no_args_is_help=True)
CACHE_PARTS = ["pool", "tta", "stretch"]  # the feature options an embedding cache entry is kept for
LIST_COLUMNS = ["run_id", "name", "status", "data", "arch", "loss", "steps", "final_loss", "latest_evaluation",
                "latest_score"]
# The columns a narrow terminal leaves out of 'runs list', first to last ('--json' has them all).
LIST_DROPPED_FIRST = ["latest_evaluation", "name", "data", "loss", "steps"]


@runs_app.command("list")
@cli_command
def list_runs(root: RootOption = None, json_output: JsonOption = False) -> None:
    """List runs with their name, status, data, method, final loss and latest evaluation's score.

    Example: astrojepa runs list --json | jq -r '.runs[].run_id'
    """
    from astrojepa_cli import runs

    def part(manifest: dict, section: str) -> dict:
        value = manifest.get(section)
        return value if isinstance(value, dict) else {}

    rows = []
    for run in runs.list_runs(root):
        config, evaluation = part(run.manifest, "config"), latest_evaluation(run.manifest)
        rows.append({"run_id": run.id, "name": run.manifest.get("name"), "status": run.status,
                     "data": part(run.manifest, "dataset").get("name"), "arch": config.get("arch"),
                     "loss": config.get("loss"), "steps": run.manifest.get("steps"),
                     "final_loss": part(run.manifest, "result").get("final_loss"),
                     "latest_evaluation": evaluation[0], "latest_score": evaluation[1]})
    report({"runs": rows}, json_output, lambda: stderr.print(
        fitting_rows_table(LIST_COLUMNS, rows, stderr, LIST_DROPPED_FIRST, whole=("run_id",),
                           formats={"final_loss": significant}), highlight=False))


@runs_app.command("show")
@cli_command
def show_run(run_ref: RunArgument, root: RootOption = None, json_output: JsonOption = False) -> None:
    """A run in brief: status, method, data, result, last epoch's monitors and each evaluation's score.
    --json prints the whole manifest (config, data, environment, status, metrics and evaluations).

    Example: astrojepa runs show latest --json | jq .evaluations
    """
    from astrojepa_cli import runs

    run = runs.open_run(run_ref, root)
    report(run.manifest, json_output, lambda: stderr.print(run_summary(run), highlight=False))


@runs_app.command("compare")
@cli_command
def compare_runs(
    run_refs: Annotated[list[str], typer.Argument(help="Two or more runs (id, name, folder or 'latest').")],
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
    from astrojepa_cli import runs
    from astrojepa_cli.evaluate import run_compare

    compared = [runs.open_run(ref, root) for ref in run_refs]
    comparison = run_compare.compare_runs(compared)
    if spearman:
        comparison["spearman"] = run_compare.loss_metric_spearman(compared, evaluation, metric)

    def human() -> None:
        stderr.print(comparison_table(comparison, stderr.width), highlight=False)
        if spearman:
            result = comparison["spearman"]
            stderr.print(f"Spearman rho(final loss, {result['metric']}) = {result['rho']:.3f} over {result['n']} runs "
                         f"(p = {result['p_value']})", highlight=False)

    report(comparison, json_output, human)


@runs_app.command("rm")
@cli_command
def remove_runs(
    run_refs: Annotated[list[str], typer.Argument(help="Runs to delete (id, name, folder or 'latest').")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete runs: their folders, weights, evaluations and figures. A run still training is refused.

    Examples:

      astrojepa runs rm RUN

      astrojepa runs rm RUN_A RUN_B --yes --json | jq -r '.deleted[]'
    """
    from astrojepa_cli import runs

    doomed = list({run.dir: run for run in (runs.open_run(ref, root) for ref in run_refs)}.values())
    for run in doomed:
        if run.status == "running":
            raise UserError(f"run {run.id} is still training; delete it when it has finished")
    if not yes:
        listing = "\n".join(f"  {run.id}  ({run.dir})" for run in doomed)
        try:
            confirmed = typer.confirm(f"Delete {len(doomed)} run{'s' if len(doomed) > 1 else ''}?\n{listing}\n",
                                      err=True)
        except typer.Abort:
            stderr.print()  # end the prompt's line
            raise UserError("no answer to the confirmation; pass --yes to delete without asking") from None
        if not confirmed:
            doomed = []
    for run in doomed:
        runs.delete_run(run)
    deleted = [run.id for run in doomed]
    report({"deleted": deleted}, json_output,
           lambda: stderr.print(f"deleted {', '.join(deleted)}" if deleted else "nothing deleted", highlight=False))


@runs_app.command("cache")
@cli_command
def run_cache(
    run_ref: RunArgument,
    clear: Annotated[bool, typer.Option("--clear", help="Delete the run's cached embeddings.")] = False,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """The run's cached embeddings: one entry per dataset, pooling, test-time views and stretch, kept by
    embed, similar, anomalies, probe and plot --latent so that the next command does not embed again.
    Entries of older weights or an older copy of a dataset are never read. --clear deletes them all.

    Examples:

      astrojepa runs cache latest

      astrojepa runs cache RUN --clear --json | jq -r '.removed[]'
    """
    from astrojepa_cli import runs
    from astrojepa_cli.runs import embedding_cache

    run = runs.open_run(run_ref, root)
    listed = [{"key": entry["key"], "dataset": entry.get("dataset"), **{k: entry["parts"].get(k) for k in CACHE_PARTS},
               "n": entry.get("n"), "dim": entry.get("dim"), "bytes": entry["bytes"], "created": entry.get("created"),
               "parts": entry["parts"]}
              for entry in embedding_cache.entries(run.dir)]
    removed = embedding_cache.clear(run.dir) if clear else []

    def human() -> None:
        stderr.print(rows_table(["key", "dataset", *CACHE_PARTS, "n", "dim", "bytes", "created"], listed)
                     if listed else f"run {run.id} has no cached embeddings", highlight=False)
        if clear:
            stderr.print(f"deleted {len(removed)} cached embedding{'' if len(removed) == 1 else 's'}", highlight=False)

    report({"run_id": run.id, "entries": listed, "removed": removed}, json_output, human)


@runs_app.command("tag")
@cli_command
def tag_run(
    run_ref: RunArgument,
    name: Annotated[str, typer.Argument(help="The name: a letter, then letters, digits, '.', '_' or '-'.")],
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Name a run, so every command accepts the name in place of its id (a name moves from any other run).

    Examples:

      astrojepa runs tag latest baseline

      astrojepa probe baseline --knn 20
    """
    from astrojepa_cli import runs

    run = runs.open_run(run_ref, root)
    moved_from = runs.name_run(run, name, root)
    report({"run_id": run.id, "name": name, "moved_from": moved_from}, json_output,
           lambda: stderr.print(f"run {run.id} is named {name}" + (f" (moved from {moved_from})" if moved_from else ""),
                                highlight=False))

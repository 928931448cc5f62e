"""``astrojepa anomalies``: the most unusual objects in a run's embedding space."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from astrojepa_cli.commands.common import (
    DataOption, DeviceOption, JsonOption, PoolOption, RootOption, RunArgument, TtaOption, cli_command, report,
)
from astrojepa_cli.commands.evaluated_run import frozen_features, open_with_data, record_evaluation
from astrojepa_cli.commands.render import anomaly_report
from astrojepa_cli.console import stderr


@cli_command
def anomalies(
    run_ref: RunArgument,
    data: DataOption = None,
    top: Annotated[int, typer.Option(help="How many of the most unusual objects to show.")] = 25,
    scorer: Annotated[str, typer.Option(help="knn (mean distance to k neighbours), gaussian (Mahalanobis), iforest or lof.")] = "knn",
    k: Annotated[int, typer.Option(help="Neighbours for the knn and lof scores.")] = 10,
    eval_class: Annotated[Optional[str], typer.Option(help="Treat this class as the anomaly: report ROC-AUC and precision@TOP.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the iforest score.")] = 0,
    tta: TtaOption = "none",
    pool: PoolOption = None,
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Rank the most unusual objects in embedding space; write a ranked CSV/JSON and a mosaic of the top.

    Examples:

      astrojepa anomalies latest --top 25

      astrojepa anomalies RUN --data gz1 --scorer gaussian --eval-class merger --json | jq .evaluation

      astrojepa anomalies RUN --json | jq -r '.top[].id'
    """
    from astrojepa_cli import runs
    from astrojepa_cli.data import store
    from astrojepa_cli.evaluate.explore.anomalies import find_anomalies
    from astrojepa_cli.evaluate.features import tta_suffix
    from astrojepa_cli.evaluate.probes.context import pool_suffix

    run, data_name, store_path = open_with_data(run_ref, data, root)
    pool = pool or runs.run_pool(run.manifest)
    features, encoder = frozen_features(run, store_path, device, tta, pool)
    variant = f"{scorer}{pool_suffix(pool)}{tta_suffix(tta)}"  # named like probe's keys: knn-last2-d4
    result = find_anomalies(features, store_path, store.read_info(store_path).classes, scorer, k, top,
                            run.dir / "anomalies" / f"{data_name}-{variant}", eval_class, seed)
    record_evaluation(run, f"{data_name}/anomalies-{variant}", {**result, "top": len(result["top"])},
                      encoder.saved_step)
    report(result, json_output, lambda: stderr.print(anomaly_report(data_name, scorer, result), highlight=False))

"""``astrojepa probe``: score a run's encoder on labels, recorded in the run's manifest."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from astrojepa_cli.commands.common import (
    DataOption, DeviceOption, JsonOption, PoolOption, RootOption, RunArgument, TtaOption, cli_command, report,
)
from astrojepa_cli.commands.evaluated_run import open_with_data, record_evaluation
from astrojepa_cli.commands.run_summary import test_split_seen
from astrojepa_cli.commands.render import probe_table, snapshot_table
from astrojepa_cli.console import stderr
from astrojepa_cli.evaluate.probes.context import collapse_warning, convergence_warning
from astrojepa_cli.evaluate.probes.finetune_config import FinetuneConfig
from astrojepa_cli.evaluate.probes.scratch_training import ScratchTraining


@cli_command
def probe(
    run_ref: RunArgument,
    data: DataOption = None,
    random_init: Annotated[bool, typer.Option("--random-init", help="Probe the same architecture with random weights (a baseline).")] = False,
    seed: Annotated[int, typer.Option(help="First seed of the probe (and of --random-init weights).")] = 0,
    seeds: Annotated[int, typer.Option(help="Repeat over this many seeds and report mean ± std.")] = 1,
    knn: Annotated[Optional[int], typer.Option("--knn", help="Cosine-similarity weighted kNN with K neighbours instead of the linear probe.")] = None,
    shots: Annotated[Optional[str], typer.Option(help="Few-shot curve: labelled images per class, e.g. 1,10,100.")] = None,
    scratch: Annotated[bool, typer.Option("--scratch", help="With --shots: also train the same architecture from scratch, end to end with augmentations, on the same labelled images, and report it beside the probe.")] = False,
    scratch_steps: Annotated[int, typer.Option(help="Full-batch training steps of --scratch (AdamW, cosine decay).")] = ScratchTraining.steps,
    fractions: Annotated[Optional[str], typer.Option(help="Label-fraction curve, e.g. 0.25,0.5,1.0.")] = None,
    finetune: Annotated[bool, typer.Option("--finetune", help="Fine-tune encoder + head, next to the same architecture from scratch.")] = False,
    finetune_epochs: Annotated[int, typer.Option(help="Maximum epochs of --finetune (early stopping on validation loss).")] = FinetuneConfig.epochs,
    finetune_lr: Annotated[float, typer.Option(help="AdamW learning rate of --finetune, both models.")] = FinetuneConfig.lr,
    finetune_labels: Annotated[float, typer.Option(help="Share of the labelled train (and valid) images --finetune learns from, stratified and seeded, e.g. 0.1; the test split stays whole.")] = FinetuneConfig.label_fraction,
    target: Annotated[Optional[str], typer.Option(help="Regress this store target (e.g. m0) instead of classifying.")] = None,
    snapshots: Annotated[bool, typer.Option("--snapshots", help="Probe every encoder kept by 'pretrain --keep-encoders' and rank-correlate its training loss with balanced accuracy.")] = False,
    max_snapshots: Annotated[Optional[int], typer.Option(help="With --snapshots: probe at most this many, evenly spaced.")] = None,
    tta: TtaOption = "none",
    pool: PoolOption = None,
    feature_norm: Annotated[str, typer.Option(
        help="standard (per feature) or layernorm (each image's features standardised first).")] = "standard",
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Evaluate a run's encoder on labels: linear probe (default), kNN, few-shot or label-fraction
    curves, fine-tuning against training from scratch, or regression of a target.

    Results are recorded in the run's manifest under evaluations["DATA/PROTOCOL"].

    Examples:

      astrojepa probe latest --data gz1 --seeds 3

      astrojepa probe RUN --knn 20 --json | jq .balanced_accuracy

      astrojepa probe RUN --shots 1,10,100 --seeds 5

      astrojepa probe RUN --shots 10 --seeds 5 --scratch --tta d4

      astrojepa probe RUN --finetune --finetune-epochs 20

      astrojepa probe RUN --finetune --finetune-labels 0.1   # 10 % of the labels, pretrained against scratch

      astrojepa probe RUN --data jets --target m0

      astrojepa probe RUN --tta d4 --snapshots

      astrojepa probe RUN --tta d4 --pool last2 --feature-norm layernorm
    """
    from astrojepa_cli.evaluate.probes.label_efficiency import parse_list
    from astrojepa_cli.evaluate.probes.probe_run import FeatureChoice, check_options, probe_run
    from astrojepa_cli.evaluate.probes.protocols import ProbeRequest
    from astrojepa_cli.train.distributed import resolve_device

    request = ProbeRequest(
        seeds=seeds, first_seed=seed, knn=knn, target=target, random_init=random_init, finetune=finetune,
        scratch=scratch, scratch_training=ScratchTraining(steps=scratch_steps),
        shots=parse_list(shots, int, "--shots") if shots is not None else None,
        fractions=parse_list(fractions, float, "--fractions") if fractions is not None else None,
        finetune_config=FinetuneConfig(epochs=finetune_epochs, lr=finetune_lr, label_fraction=finetune_labels),
    )
    features = FeatureChoice(pool, feature_norm, tta)
    check_options(request, features, snapshots)
    run, data_name, store_path = open_with_data(run_ref, data, root)
    outcome = probe_run(run, data_name, store_path, request, features, resolve_device(device), snapshots,
                        max_snapshots)
    for key, result in outcome.records:
        record_evaluation(run, key, result, outcome.encoder_step)
    warnings = [collapse_warning(run.manifest), *(convergence_warning(key, result) for key, result in outcome.records),
                test_split_seen(run.manifest, data_name)]
    for warning in filter(None, warnings):
        stderr.print(f"[yellow]warning:[/] {warning}", highlight=False)
    payload = {"run_id": run.id, "data": data_name, "protocol": outcome.protocol, **outcome.result, **outcome.context}
    title = f"{outcome.protocol} probe of {run.id} on {data_name}"
    table = snapshot_table(title, outcome.result) if snapshots else probe_table(title, outcome.result)
    report(payload, json_output, lambda: stderr.print(table, *([outcome.verdict] if outcome.verdict else []),
                                                      highlight=False))

"""``astrojepa pretrain``: self-supervised pretraining into a new run folder."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from astrojepa_cli import paths
from astrojepa_cli.commands.common import (
    EXIT_INTERRUPTED, EXIT_TRAINING_FAILED, JsonOption, RootOption, cli_command, fail, report,
)
from astrojepa_cli.console import images_per_second, significant, stderr
from astrojepa_cli.errors import UserError
from astrojepa_cli.train.config import PretrainConfig, read_config_file
from astrojepa_cli.train.presets import UNMEASURED, machine_preset, resolve_config

_D = PretrainConfig()


@cli_command
def pretrain(
    ctx: typer.Context,
    data: Annotated[str, typer.Option(help="Store name (see 'fetch-data list').")] = _D.data,
    arch: Annotated[str, typer.Option(help="Encoder plugin (see 'astrojepa plugins').")] = _D.arch,
    loss: Annotated[str, typer.Option(help="Objective plugin: lejepa, ...")] = _D.loss,
    masker: Annotated[Optional[str], typer.Option(help="Masker plugin for I-JEPA-style objectives.")] = None,
    pred_loss: Annotated[Optional[str], typer.Option(help="I-JEPA prediction loss: l2 or smooth-l1.")] = None,
    lam: Annotated[float, typer.Option(help="SIGReg weight λ: loss = (1-λ)·pred + λ·SIGReg.")] = _D.lam,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = _D.epochs,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many optimiser steps.")] = None,
    batch_size: Annotated[int, typer.Option(help="Global batch size (images per step, all processes).")] = _D.batch_size,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = _D.lr,
    weight_decay: Annotated[Optional[float], typer.Option(
        help="AdamW weight decay (default per method: 0.05 for LeJEPA, 5e-4 with a ResNet; "
             "0.04 ramped to 0.4 for I-JEPA).")] = None,
    weight_decay_end: Annotated[Optional[float], typer.Option(
        help="Final weight decay of a cosine ramp (default: per method, else constant).")] = None,
    warmup_epochs: Annotated[float, typer.Option(help="Linear warm-up length in epochs.")] = _D.warmup_epochs,
    ema: Annotated[float, typer.Option(
        help="Initial EMA momentum of a target encoder (I-JEPA), ramped to 1; 0: no EMA, the target is the "
             "encoder itself under stop-gradient.")] = _D.ema,
    img_size: Annotated[Optional[int], typer.Option(help="Encoder input size (default: the store's).")] = None,
    patch_size: Annotated[int, typer.Option(help="ViT patch size.")] = _D.patch_size,
    global_views: Annotated[int, typer.Option(help="Global views per image (LeJEPA).")] = _D.global_views,
    local_views: Annotated[Optional[int], typer.Option(
        help="Local views per image (LeJEPA; default 6 with a ViT, none with other encoders).")] = None,
    global_size: Annotated[Optional[int], typer.Option(help="Global view size (default: --img-size).")] = None,
    local_size: Annotated[Optional[int], typer.Option(help="Local view size (default: half the image).")] = None,
    global_scale: Annotated[Optional[tuple[float, float]], typer.Option(
        help="Area fraction range of global crops, e.g. --global-scale 0.3 1.0 (default: the loss's).")] = None,
    local_scale: Annotated[Optional[tuple[float, float]], typer.Option(
        help="Area fraction range of local crops (LeJEPA; default 0.05 0.3).")] = None,
    view_noise: Annotated[float, typer.Option(help="Std of Gaussian noise added to views (normalised units).")] = _D.view_noise,
    rotation: Annotated[str, typer.Option(
        help="View rotation: quarter (multiples of 90°) or continuous (any angle).")] = _D.rotation,
    translate: Annotated[float, typer.Option(
        help="Largest shift of a view's centre, as a fraction of the image side (e.g. 0.05).")] = _D.translate,
    blur: Annotated[float, typer.Option(
        help="Largest std in pixels of a PSF-like Gaussian blur of views, drawn from [0, BLUR].")] = _D.blur,
    flux_scale: Annotated[Optional[tuple[float, float]], typer.Option(
        help="Range of a log-uniform factor on each view's flux above the sky, e.g. --flux-scale 0.7 1.4.")] = None,
    reddening: Annotated[float, typer.Option(
        help="Largest colour excess E(B-V) of a random dust screen per view, drawn from [0, REDDENING], e.g. 0.3.")
    ] = _D.reddening,
    extinction_coefficients: Annotated[Optional[str], typer.Option(
        help="Extinction A/E(B-V) of each channel for --reddening, a comma list (default for 3 channels: SDSS "
             "i,r,g as an RGB composite holds them, 1.698,2.285,3.303).", show_default=False)] = None,
    band_gain: Annotated[float, typer.Option(
        help="Std of the log of a random gain on each band's flux above the sky, per view, e.g. 0.1.")] = _D.band_gain,
    drop_bands: Annotated[float, typer.Option(
        help="Probability that a view keeps one random band, copied into every channel.")] = _D.drop_bands,
    crop_ratio: Annotated[Optional[tuple[float, float]], typer.Option(
        help="Range of crop aspect ratios, log-uniform; the default 1 1 keeps axis ratios "
             "(0.75 1.333 was the old jitter).", show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option(
        help="SimCLR: a fixed NT-Xent temperature, e.g. 0.2 (default: learnt, starting at 0.07).")] = None,
    proj_dim: Annotated[Optional[int], typer.Option(
        help="Projector output dimension (LeJEPA, SimCLR, VICReg; default: the loss's).")] = None,
    proj_hidden: Annotated[Optional[int], typer.Option(help="Projector hidden width (default: the loss's).")] = None,
    proj_depth: Annotated[Optional[int], typer.Option(
        help="Projector linear layers: 1 is a linear map, 3 the default MLP.")] = None,
    budget: Annotated[Optional[str], typer.Option(
        help="Wall-clock budget, e.g. 30m or 1h: a short calibration sets the step count so the schedule ends "
             "on time (replaces --epochs; --max-steps still caps it).")] = None,
    stretch: Annotated[str, typer.Option(help="Intensity stretch at load time: none, asinh or zscore.")] = _D.stretch,
    embedding_pool: Annotated[str, typer.Option(
        help="The run's embedding, which probe, embed, anomalies, similar and plot use unless given --pool: "
             "mean (the encoder's pooled output) or last2 (the last two stages' means, concatenated).")
    ] = _D.embedding_pool,
    train_splits: Annotated[Optional[str], typer.Option(
        help="Store splits to pretrain on, a comma list such as train,valid, or all (default: every split but a "
             "labelled store's test split, which probes score).", show_default=False)] = None,
    precision: Annotated[str, typer.Option(
        help="auto, bf16 or fp32. auto: bf16 on CUDA; on a CPU the faster of the two, timed by the --budget "
             "calibration or else by the machine's cached matmul/convolution peak.")] = _D.precision,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, batch order and augmentations.")] = _D.seed,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = _D.device,
    log_every: Annotated[int, typer.Option(help="Steps between rows of metrics.jsonl.")] = _D.log_every,
    save_every: Annotated[int, typer.Option(help="Steps between checkpoints (0: epoch ends only).")] = _D.save_every,
    keep_encoders: Annotated[bool, typer.Option(
        "--keep-encoders", help="Also keep the encoder of every checkpoint (RUN/encoders/), e.g. for 'probe --snapshots'.")] = False,
    keep_state: Annotated[bool, typer.Option(
        "--keep-state", help="Keep the optimiser state when the run completes, so that it can train further with "
                             "--resume (the folder is then about twice the size).")] = False,
    nan_policy: Annotated[str, typer.Option(help="stop (mark the run failed) or skip the step.")] = _D.nan_policy,
    log: Annotated[Optional[list[str]], typer.Option(
        help="Also send the metrics, config and epoch monitors to a live dashboard: tensorboard, mlflow or wandb "
             "(repeatable; each needs its extra, e.g. pip install 'astrojepa[mlflow]'; docs/training.md).",
        metavar="TRACKER", show_default=False)] = None,
    mlflow_uri: Annotated[Optional[str], typer.Option(
        help="MLflow tracking URI for --log mlflow, e.g. http://127.0.0.1:5000 (default: $MLFLOW_TRACKING_URI, "
             "else sqlite under the root: ROOT/mlflow.db).", metavar="URI", show_default=False)] = None,
    preset: Annotated[Optional[str], typer.Option(
        help="Named recipe (see docs/results.md): small-cpu, lejepa-cpu or gpu (unmeasured). The config file and flags override "
             "it. Without a preset or any recipe option, the machine's preset is used.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML or JSON file of the same keys; flags override it.")] = None,
    resume: Annotated[Optional[str], typer.Option(help="Continue run RUN (id, folder or 'latest') from its checkpoint.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Pretrain an encoder without labels and write a run folder.

    Examples:

      astrojepa pretrain --data first-radio --arch vit-t --loss lejepa --epochs 5

      astrojepa pretrain --arch vit-s --loss lejepa --lam 0.6 --json | jq -r .run_id

      astrojepa pretrain --data gz1 --preset small-cpu

      astrojepa pretrain --data gz1 --loss simclr --arch resnet18-w32 --img-size 32 --budget 30m

      astrojepa pretrain --resume latest
    """
    # torch and the engine load here, not at import, so that 'astrojepa --help' stays fast.
    from astrojepa_cli.train.distributed import gpu_available, launched_as_secondary_rank
    from astrojepa_cli.train.loop import pretrain as run_pretraining
    from astrojepa_cli.train.resume import resume_flags

    # Typer vendors its own click, so compare the source by name rather than importing click's enum.
    explicit = {k: v for k, v in ctx.params.items() if ctx.get_parameter_source(k).name != "DEFAULT"}
    if "log" in explicit:
        explicit["log"] = tuple(explicit["log"])
    if "train_splits" in explicit:
        explicit["train_splits"] = _split_list(train_splits)
    if "extinction_coefficients" in explicit:
        explicit["extinction_coefficients"] = _number_list(extinction_coefficients, "--extinction-coefficients")
    known = {f.name for f in fields(PretrainConfig)}
    resume_changes = resume_flags({k: v for k, v in explicit.items() if k in known | {"config"}}) if resume else {}
    file_values = read_config_file(config) if config else {}
    flag_values = {k: v for k, v in explicit.items() if k in known}
    default = None if resume else machine_preset(file_values, flag_values, has_gpu=gpu_available(device))
    if default:
        flag_values["preset"] = default
    values = resolve_config(file_values, flag_values)
    if not resume and not launched_as_secondary_rank():
        paths.existing_store(values.get("data", PretrainConfig.data), root)  # bad input first, before any note
        if default:
            stderr.print(f"no recipe given: using preset {default} for this machine "
                         f"({'a GPU' if default == 'gpu' else 'no GPU'} found; docs/results.md)",
                         highlight=False, soft_wrap=True)
        if values.get("preset") in UNMEASURED:
            stderr.print(f"warning: preset {values['preset']} has not been measured yet (docs/results.md)",
                         highlight=False, soft_wrap=True)
    result = run_pretraining(PretrainConfig(**values), root=root, resume=resume, progress=not quiet,
                             resume_changes=resume_changes)
    payload = {"run_id": result.run_id, "run_dir": result.run_dir, "status": result.status, "steps": result.steps,
               "images_per_second": result.images_per_second, "final_loss": result.final_loss}
    if not launched_as_secondary_rank():
        report(payload, json_output, lambda: stderr.print(finished_line(result), highlight=False))
    if result.status == "interrupted":
        raise fail(f"interrupted; resume with 'astrojepa pretrain --resume {result.run_id}'", EXIT_INTERRUPTED)
    if result.status == "failed":
        kept = (f"the checkpoint at step {result.checkpoint_step} is kept" if result.checkpoint_step is not None
                else "no checkpoint had been saved yet")
        raise fail(f"training failed: the loss became NaN or Inf at step {result.steps}; {kept}", EXIT_TRAINING_FAILED)


def finished_line(result) -> str:
    """``run ID completed after 2 steps (0.06 epoch, ...), final loss 5.236, 41 img/s → FOLDER``."""
    from astrojepa_cli import runs
    from astrojepa_cli.commands.run_summary import epochs_text, epochs_trained

    epochs = epochs_trained(runs.open_run(Path(result.run_dir)).manifest)
    trained = f"{result.steps:,} steps" + (f" ({epochs_text(epochs)})" if epochs is not None else "")
    return (f"run [bold]{result.run_id}[/] {result.status} after {trained}, final loss {significant(result.final_loss)}, "
            f"{images_per_second(result.images_per_second)} → {result.run_dir}")


def _split_list(text: str) -> tuple[str, ...]:
    """``train,valid`` -> ("train", "valid"); an empty list is an error."""
    splits = tuple(name.strip() for name in text.split(",") if name.strip())
    if not splits:
        raise UserError("--train-splits needs at least one split name, e.g. --train-splits train,valid")
    return splits


def _number_list(text: str, flag: str) -> tuple[float, ...]:
    """``1.698,2.285,3.303`` -> (1.698, 2.285, 3.303); anything else is an error naming ``flag``."""
    try:
        numbers = tuple(float(item) for item in text.split(","))
    except ValueError:
        raise UserError(f"{flag} takes a comma list of numbers, e.g. 1.698,2.285,3.303; got '{text}'") from None
    return numbers

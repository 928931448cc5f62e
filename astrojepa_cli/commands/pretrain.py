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
from astrojepa_cli.console import stderr
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
        help="AdamW weight decay (default per method: 0.05 for LeJEPA; 0.04 ramped to 0.4 for I-JEPA).")] = None,
    weight_decay_end: Annotated[Optional[float], typer.Option(
        help="Final weight decay of a cosine ramp (default: per method, else constant).")] = None,
    warmup_epochs: Annotated[float, typer.Option(help="Linear warm-up length in epochs.")] = _D.warmup_epochs,
    ema: Annotated[float, typer.Option(help="Initial EMA momentum of a target encoder (I-JEPA).")] = _D.ema,
    img_size: Annotated[Optional[int], typer.Option(help="Encoder input size (default: the store's).")] = None,
    patch_size: Annotated[int, typer.Option(help="ViT patch size.")] = _D.patch_size,
    global_views: Annotated[int, typer.Option(help="Global views per image (LeJEPA).")] = _D.global_views,
    local_views: Annotated[int, typer.Option(help="Local views per image (LeJEPA).")] = _D.local_views,
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
        help="Store splits to pretrain on, a comma list such as train,valid (default: every split; "
             "pretraining reads no labels).", show_default=False)] = None,
    precision: Annotated[str, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU), bf16 or fp32.")] = _D.precision,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, batch order and augmentations.")] = _D.seed,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = _D.device,
    log_every: Annotated[int, typer.Option(help="Steps between rows of metrics.jsonl.")] = _D.log_every,
    save_every: Annotated[int, typer.Option(help="Steps between checkpoints (0: epoch ends only).")] = _D.save_every,
    keep_encoders: Annotated[bool, typer.Option(
        "--keep-encoders", help="Also keep the encoder of every checkpoint (RUN/encoders/), e.g. for 'probe --snapshots'.")] = False,
    nan_policy: Annotated[str, typer.Option(help="stop (mark the run failed) or skip the step.")] = _D.nan_policy,
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
    if "train_splits" in explicit:
        explicit["train_splits"] = _split_list(train_splits)
    known = {f.name for f in fields(PretrainConfig)}
    resume_changes = resume_flags({k: v for k, v in explicit.items() if k in known | {"config"}}) if resume else {}
    if resume_changes and not launched_as_secondary_rank():
        stderr.print("resuming with " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in resume_changes.items()),
                     highlight=False)
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
        report(payload, json_output, lambda: stderr.print(
            f"run [bold]{result.run_id}[/] {result.status} after {result.steps} steps, final loss {result.final_loss}, "
            f"{result.images_per_second:.1f} images/s → {result.run_dir}", highlight=False))
    if result.status == "interrupted":
        raise fail(f"interrupted; resume with 'astrojepa pretrain --resume {result.run_id}'", EXIT_INTERRUPTED)
    if result.status == "failed":
        kept = (f"the checkpoint at step {result.checkpoint_step} is kept" if result.checkpoint_step is not None
                else "no checkpoint had been saved yet")
        raise fail(f"training failed: the loss became NaN or Inf at step {result.steps}; {kept}", EXIT_TRAINING_FAILED)


def _split_list(text: str) -> tuple[str, ...]:
    """``train,valid`` -> ("train", "valid"); an empty list is an error."""
    splits = tuple(name.strip() for name in text.split(",") if name.strip())
    if not splits:
        raise UserError("--train-splits needs at least one split name, e.g. --train-splits train,valid")
    return splits

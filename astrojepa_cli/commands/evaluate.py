"""``embed``, ``probe``, ``anomalies`` and ``plot``: turn a run into numbers and figures."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Iterable, Iterator, Optional

import torch
import typer
from rich.progress import Progress
from rich.table import Table

from astrojepa_cli import paths, runs
from astrojepa_cli.atomic import atomic_path
from astrojepa_cli.commands.common import JsonOption, RootOption, cli_command, report
from astrojepa_cli.console import stderr
from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.explore import anomalies as anomaly_search
from astrojepa_cli.evaluate.explore import embedding_files
from astrojepa_cli.evaluate.figures import run_figures as figures
from astrojepa_cli.evaluate.probes import context
from astrojepa_cli.evaluate import features as feature_extraction
from astrojepa_cli.evaluate.probes.finetune import FinetuneConfig
from astrojepa_cli.evaluate.probes.label_efficiency import parse_list
from astrojepa_cli.evaluate.explore.latent import check_method
from astrojepa_cli.evaluate.figures.plotting import save_figure, unused_path
from astrojepa_cli.evaluate.probes.linear import finite
from astrojepa_cli.evaluate.probes.protocols import ProbeRequest, run_protocol
from astrojepa_cli.evaluate.run_compare import run_labels
from astrojepa_cli.evaluate.probes.snapshots import probe_snapshots
from astrojepa_cli.evaluate.figures.training import compare_figure
from astrojepa_cli.train.distributed import resolve_device

RunArgument = Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")]
DataOption = Annotated[Optional[str], typer.Option("--data", help="Store name (default: the run's training data).")]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
PoolOption = Annotated[str, typer.Option("--pool", help="mean (every encoder) or cls (ViTs with a class token).")]
TtaOption = Annotated[str, typer.Option("--tta", help="none, or d4: average the embeddings of the 8 rotations/flips of each image.")]


def _open(run_ref: str, data: str | None, root: Path | None) -> tuple[runs.Run, str, Path]:
    run = runs.open_run(run_ref, root)
    data_name = data or run.manifest["dataset"]["name"]
    return run, data_name, paths.existing_store(data_name, root)


def _run_features(run_ref: str, data: str | None, root: Path | None, device: str, tta: str):
    """The run, its data and the frozen features of its encoder (which is returned too)."""
    run, data_name, store_path = _open(run_ref, data, root)
    encoder = runs.load_encoder(run)
    features = finite(feature_extraction.extract(encoder, store_path, resolve_device(device),
                                                 stretch=runs.run_stretch(run.manifest), tta=tta))
    return run, data_name, store_path, features, encoder


def _record(run: runs.Run, key: str, result: dict, encoder: torch.nn.Module) -> None:
    """Record an evaluation in the run's manifest; warn when it is not of the run's final encoder."""
    recorded = run.add_evaluation(key, result, encoder.saved_step)
    if recorded["run_status"] == "running":
        stderr.print(f"[yellow]warning:[/] run {run.id} is still training; this evaluated its encoder at step "
                     f"{encoder.saved_step} and is recorded as such", highlight=False)


def _with_progress(chunks: Iterable, total: int, description: str) -> Iterator:
    with Progress(console=stderr, transient=True) as progress:
        task = progress.add_task(description, total=total)
        for chunk in chunks:
            yield chunk
            progress.advance(task)


@cli_command
def embed(
    run_ref: RunArgument,
    data: DataOption = None,
    out: Annotated[Optional[str], typer.Option(help="Output file, or '-' for stdout (default: RUN/embeddings/DATA.FORMAT).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="safetensors, npy, parquet, csv, fits or votable (default: from --out's suffix, else safetensors).")] = None,
    pool: PoolOption = "mean",
    tta: TtaOption = "none",
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write the frozen embeddings of every image of a dataset, in store order, streaming in chunks.

    safetensors holds embeddings, labels, targets and catalog columns (ids in its metadata); npy the
    (N, D) float32 matrix; parquet, csv, fits and votable one row per object: id, split, label,
    label_name, targets, the store's catalog columns (e.g. ra, dec), e0..e{D-1}. A file's suffix
    must match its format.

    Examples:

      astrojepa embed latest --data gz1

      astrojepa embed RUN --out gz1.parquet

      astrojepa embed RUN --out gz1.fits

      astrojepa embed RUN --format npy --out - > embeddings.npy
    """
    fmt = embedding_files.resolve_format(fmt, out)
    if out == "-" and json_output:
        raise UserError("--json and --out - both write to stdout; choose one")
    run, data_name, store_path = _open(run_ref, data, root)
    encoder = runs.load_encoder(run)
    feature_extraction.check_pool(encoder, pool)
    feature_extraction.check_tta(tta)
    meta = store.load(store_path, with_images=False)
    n, dim = len(meta.ids), encoder.embed_dim
    embeddings = feature_extraction.iter_embeddings(encoder, store_path, resolve_device(device), pool,
                                                    runs.run_stretch(run.manifest), tta=tta)
    chunks = _with_progress(embeddings,
                            math.ceil(n / feature_extraction.CHUNK), f"embedding {n} images")
    arguments = (fmt, chunks, meta, store.read_info(store_path).classes, dim)
    metadata = {"run_id": run.id, "dataset": data_name, "pool": pool, "tta": tta}
    if out == "-":
        embedding_files.write_embeddings(*arguments, sys.stdout.buffer, metadata)
        sys.stdout.buffer.flush()
        path = "-"
    else:
        path = Path(out) if out else run.dir / "embeddings" / f"{data_name}.{fmt}"
        with atomic_path(path) as tmp, open(tmp, "wb") as stream:
            embedding_files.write_embeddings(*arguments, stream, metadata)
    report({"path": str(path), "n": int(n), "dim": int(dim), "format": fmt, "pool": pool, "tta": tta}, json_output,
           lambda: stderr.print(f"wrote {n} embeddings of dimension {dim} ({fmt}) to {path}", highlight=False))


def _mean_std(result: dict, key: str) -> str:
    if isinstance(result[key], int):
        return str(result[key])
    spread = result.get(f"{key}_std")
    return f"{result[key]:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")


def _probe_table(title: str, result: dict) -> Table:
    """The human rendering of any protocol's result."""
    if "curve" in result:
        axis = "shots" if "shots" in result["curve"][0] else "fraction"
        table = Table(axis, "accuracy", "balanced accuracy", "macro F1", "n train", title=title)
        for point in result["curve"]:
            table.add_row(str(point[axis]), _mean_std(point, "accuracy"), _mean_std(point, "balanced_accuracy"),
                          _mean_std(point, "macro_f1"), f"{point['n_train']:.0f}")
        return table
    if "pretrained" in result:
        metrics = [k for k in ("accuracy", "balanced_accuracy", "macro_f1", "mse", "rmse", "mae", "r2")
                   if k in result["pretrained"]]
        table = Table("metric", "fine-tuned pretrained", "trained from scratch", title=title)
        for key in metrics + ["best_epoch"]:
            table.add_row(key, _mean_std(result["pretrained"], key), _mean_std(result["scratch"], key))
        return table
    table = Table("metric", "value", title=title)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "mse", "rmse", "mae", "r2"):
        if key in result:
            table.add_row(key.replace("_", " "), _mean_std(result, key))
    if "baseline" in result:
        table.add_row("rmse of the train mean", f"{result['baseline']['rmse']:.4f}")
    for name, recall in result.get("per_class_recall", {}).items():
        table.add_row(f"recall {name}", f"{recall:.4f}")
    return table


def _snapshot_table(title: str, result: dict) -> Table:
    correlation = result["spearman"]
    caption = (f"Spearman rho = {correlation['rho']:.3f} over {correlation['n']} checkpoints"
               if correlation["rho"] is not None else f"Spearman rho undefined: {correlation['reason']}")
    table = Table("step", "training loss", result["metric"].replace("_", " "), title=title, caption=caption)
    for row in result["snapshots"]:
        table.add_row(str(row["step"]), f"{row['loss']:.4f}", f"{row[result['metric']]:.4f}")
    return table


@cli_command
def probe(
    run_ref: RunArgument,
    data: DataOption = None,
    random_init: Annotated[bool, typer.Option("--random-init", help="Probe the same architecture with random weights (a baseline).")] = False,
    seed: Annotated[int, typer.Option(help="First seed of the probe (and of --random-init weights).")] = 0,
    seeds: Annotated[int, typer.Option(help="Repeat over this many seeds and report mean ± std.")] = 1,
    knn: Annotated[Optional[int], typer.Option("--knn", help="Cosine-similarity weighted kNN with K neighbours instead of the linear probe.")] = None,
    shots: Annotated[Optional[str], typer.Option(help="Few-shot curve: labelled images per class, e.g. 1,10,100.")] = None,
    fractions: Annotated[Optional[str], typer.Option(help="Label-fraction curve, e.g. 0.25,0.5,1.0.")] = None,
    finetune: Annotated[bool, typer.Option("--finetune", help="Fine-tune encoder + head, next to the same architecture from scratch.")] = False,
    finetune_epochs: Annotated[int, typer.Option(help="Maximum epochs of --finetune (early stopping on validation loss).")] = FinetuneConfig.epochs,
    finetune_lr: Annotated[float, typer.Option(help="AdamW learning rate of --finetune (both models).")] = FinetuneConfig.lr,
    target: Annotated[Optional[str], typer.Option(help="Regress this store target (e.g. m0) instead of classifying.")] = None,
    snapshots: Annotated[bool, typer.Option("--snapshots", help="Probe every encoder kept by 'pretrain --keep-encoders' and rank-correlate its training loss with balanced accuracy.")] = False,
    max_snapshots: Annotated[Optional[int], typer.Option(help="With --snapshots: probe at most this many, evenly spaced.")] = None,
    tta: TtaOption = "none",
    pool: Annotated[str, typer.Option(
        "--pool", help="mean (the encoder's embedding), cls (ViTs with a class token) or last2 (the last two "
                       "stages' means, concatenated).")] = "mean",
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

      astrojepa probe RUN --finetune --finetune-epochs 20

      astrojepa probe RUN --data jets --target m0

      astrojepa probe RUN --tta d4 --snapshots

      astrojepa probe RUN --tta d4 --pool last2 --feature-norm layernorm
    """
    request = ProbeRequest(
        seeds=seeds, first_seed=seed, knn=knn, target=target, random_init=random_init, finetune=finetune,
        shots=parse_list(shots, int, "--shots") if shots is not None else None,
        fractions=parse_list(fractions, float, "--fractions") if fractions is not None else None,
        finetune_config=FinetuneConfig(epochs=finetune_epochs, lr=finetune_lr),
    )
    request.validate()
    feature_extraction.check_tta(tta)
    feature_extraction.check_feature_norm(feature_norm)
    if snapshots and request.protocol not in ("linear", f"knn-{knn}"):
        raise UserError("--snapshots works with the linear or --knn probe only")
    run, data_name, store_path = _open(run_ref, data, root)
    encoder = runs.load_encoder(run)

    def fresh_encoder(init_seed: int) -> torch.nn.Module:
        torch.manual_seed(init_seed)
        fresh = runs.rebuild_encoder(encoder.timm_spec)
        fresh.input_size = encoder.input_size  # evaluated at the size the run trained at
        return fresh

    resolved, stretch = resolve_device(device), runs.run_stretch(run.manifest)
    classes = store.read_info(store_path).classes

    def features_of(probed: torch.nn.Module) -> feature_extraction.Features:
        feature_extraction.check_pool(probed, pool)
        features = finite(feature_extraction.extract(probed, store_path, resolved, pool=pool, stretch=stretch,
                                                     tta=tta))
        return feature_extraction.layer_normed(features) if feature_norm == "layernorm" else features

    def score(probed: torch.nn.Module) -> dict:
        return run_protocol(request, lambda: features_of(probed), classes, probed, fresh_encoder, store_path,
                            resolved, stretch)

    protocol = (request.protocol + ("" if pool == "mean" else f"-{pool}")
                + ("" if feature_norm == "standard" else f"-{feature_norm}") + feature_extraction.tta_suffix(tta))
    if snapshots:
        protocol += "-snapshots"
        result = probe_snapshots(run, score, "balanced_accuracy", max_snapshots)
    else:
        result = score(fresh_encoder(seed) if random_init else encoder)
    _record(run, f"{data_name}/{protocol}", result, encoder)
    payload = {"run_id": run.id, "data": data_name, "protocol": protocol, **result}
    sentence = None
    if not (snapshots or random_init) and "balanced_accuracy" in result:
        twin = context.random_init_key(f"{data_name}/{protocol}", request.protocol)
        baseline, fresh = context.random_weights_score(run.manifest.get("evaluations", {}), twin,
                                                       lambda: score(fresh_encoder(seed)))
        if fresh:
            _record(run, twin, baseline, encoder)
        chance = 1.0 / len(result.get("per_class_recall") or classes)
        payload.update(random_weights_balanced_accuracy=baseline["balanced_accuracy"], chance_balanced_accuracy=chance)
        sentence = context.verdict(result["balanced_accuracy"], baseline["balanced_accuracy"], chance)
    warning = context.collapse_warning(run.manifest)
    if warning:
        stderr.print(f"[yellow]warning:[/] {warning}", highlight=False)
    title = f"{protocol} probe of {run.id} on {data_name}"
    report(payload, json_output, lambda: stderr.print(
        _snapshot_table(title, result) if snapshots else _probe_table(title, result),
        *([sentence] if sentence else []), highlight=False))


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
    run, data_name, store_path, features, encoder = _run_features(run_ref, data, root, device, tta)
    result = anomaly_search.find_anomalies(features, store_path, store.read_info(store_path).classes, scorer, k, top,
                                           run.dir / "anomalies" / f"{data_name}-{scorer}", eval_class, seed)
    _record(run, f"{data_name}/anomalies-{scorer}{feature_extraction.tta_suffix(tta)}",
            {**result, "top": len(result["top"])}, encoder)

    def human() -> None:
        table = Table("rank", "id", "score", "label", title=f"most unusual objects in {data_name} ({scorer})")
        for record in result["top"]:
            table.add_row(str(record["rank"]), record["id"], f"{record['score']:.4g}", record["label"])
        stderr.print(table)
        if "evaluation" in result:
            measured = result["evaluation"]
            stderr.print(f"class '{measured['class']}' as the anomaly: ROC-AUC {measured['roc_auc']:.4f}, "
                         f"precision@{measured['k']} {measured['precision_at_k']:.4f} "
                         f"(base rate {measured['base_rate']:.4f})", highlight=False)
        stderr.print(f"mosaic: {result['mosaic']}\nranked list: {result['csv']}", highlight=False)

    report(result, json_output, human)


@cli_command
def plot(
    run_refs: Annotated[list[str], typer.Argument(help="A run (id, folder or 'latest'), or 'compare' followed by runs.")],
    data: DataOption = None,
    latent: Annotated[Optional[str], typer.Option(help="Also draw a latent map: pca, tsne or umap.")] = None,
    patches: Annotated[Optional[str], typer.Option(help="Also draw I-JEPA patch heatmaps for the image with this id.")] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Write a PDF beside every PNG.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the figures (default: RUN/plots; for compare, ROOT/plots).")] = None,
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Figures of a run: loss terms, monitors per epoch, and every recorded evaluation
    (confusion matrices, few-shot and label-fraction curves, anomaly mosaics);
    optionally a latent map and I-JEPA patch heatmaps. 'plot compare RUN RUN...' overlays runs.

    Examples:

      astrojepa plot latest --latent tsne --pdf

      astrojepa plot RUN --patches obj12

      astrojepa plot compare RUN_A RUN_B RUN_C

      astrojepa plot RUN --json | jq -r '.files[]'
    """
    resolve_device(device)
    if run_refs[0] == "compare":
        compared = [runs.open_run(ref, root) for ref in run_refs[1:]]
        if len(compared) < 2:
            raise UserError("'plot compare' needs at least two runs")
        target = unused_path((out or paths.home(root) / "plots") / "compare.png")
        files = save_figure(compare_figure(compared, run_labels(compared), f"{len(compared)} runs"), target, pdf)
    else:
        if len(run_refs) > 1:
            raise UserError("plot takes one run; to overlay several, use: astrojepa plot compare RUN RUN ...")
        files = _run_figures(run_refs[0], data, latent, patches, pdf, out, device, root)
    report({"files": [str(f) for f in files]}, json_output,
           lambda: stderr.print("\n".join(f"wrote {f}" for f in files), highlight=False))


def _run_figures(run_ref: str, data: str | None, latent: str | None, patches: str | None, pdf: bool,
                 out: Path | None, device: str, root: Path | None) -> list[Path]:
    if latent is not None:
        check_method(latent)
    run, data_name, store_path = _open(run_ref, data, root)
    out_dir = out or run.dir / "plots"
    files = figures.training_figures(run, out_dir, pdf) + figures.evaluation_figures(run, out_dir, pdf)
    if latent is not None:
        features = _run_features(run_ref, data, root, device, "none")[3]
        files += figures.latent_map(features, store.read_info(store_path).classes, latent,
                                    out_dir / f"latent-{data_name}-{latent}.png", pdf,
                                    f"map of {data_name} embeddings ({run.id})")
    if patches is not None:
        from astrojepa_cli.evaluate.explore.patch_heatmaps import patch_heatmap_figure

        figure = patch_heatmap_figure(run, store_path, patches, resolve_device(device))
        files += save_figure(figure, out_dir / f"patches-{data_name}-{patches}.png", pdf)
    return files
